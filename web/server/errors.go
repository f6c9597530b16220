package server

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Error is an HTTP error whose Code and Message are public: it renders as
// the protocol's envelope {"error": Code, "message": Message, ...Extra}.
// Err, the cause, is logged and never shown.
type Error struct {
	Status  int
	Code    string
	Message string
	Extra   map[string]any
	Header  map[string]string
	Err     error
}

// NewError returns an Error with public text.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// HandlerFunc is a gin handler that reports failure by returning an error.
type HandlerFunc func(c *gin.Context) error

// Handle adapts h. A returned *Error renders as is; any other error renders
// 500 with code failCode and a generic message, and its cause is logged once.
func Handle(failCode string, h HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			Abort(c, failCode, err)
		}
	}
}

// Abort renders err (see Handle) and stops the handler chain.
func Abort(c *gin.Context, failCode string, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: failCode,
			Message: "internal error; the request was not completed", Err: err}
	}
	if e.Status >= 500 && c.Request.Context().Err() != nil {
		// The client went away mid-request: nothing failed on our side and
		// nobody reads the answer.
		slog.DebugContext(c.Request.Context(), "client gone before the answer", "route", c.FullPath(), "err", err)
	} else if e.Status >= 500 {
		slog.ErrorContext(c.Request.Context(), "request failed",
			"method", c.Request.Method, "route", c.FullPath(), "status", e.Status, "code", e.Code,
			"request_id", c.GetString(requestIDKey), "err", e)
	}
	_ = c.Error(err)
	RenderError(c, e)
}

// ErrorCodeKey holds, on the request, the code of the error it answered
// (for metrics).
const ErrorCodeKey = "syncplane.error_code"

// ErrorMessageKey holds the public message of that error.
const ErrorMessageKey = "syncplane.error_message"

// RenderError writes e as the JSON error envelope.
func RenderError(c *gin.Context, e *Error) {
	c.Set(ErrorCodeKey, e.Code)
	c.Set(ErrorMessageKey, e.Message)
	for k, v := range e.Header {
		c.Header(k, v)
	}
	c.AbortWithStatusJSON(e.Status, errorBody(e))
}

// errorBody is e's JSON envelope.
func errorBody(e *Error) gin.H {
	body := gin.H{"error": e.Code, "message": e.Message}
	for k, v := range e.Extra {
		body[k] = v
	}
	return body
}
