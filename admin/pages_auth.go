package admin

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/server"
	"github.com/syncplane/syncplane/web/ui/components"
	"github.com/syncplane/syncplane/web/ui/pages/endauth"
)

func (c *Console) authView(gc *gin.Context) (endauth.View, *tenant.AuthSettings, error) {
	a := accessFrom(gc)
	v := endauth.View{Page: c.tenantPage(gc, "End-user auth", "auth"), CanWrite: c.allows(a, ActAuthWrite),
		CanMint: c.allows(a, ActAuthMint)}
	s, updated, err := c.store.Auth(gc.Request.Context(), a.Tenant.ID)
	if errors.Is(err, tenant.ErrNotFound) {
		return v, nil, nil
	}
	if err != nil {
		return v, nil, err
	}
	fillAuthView(&v, s, v.CanWrite)
	v.Updated = updated
	return v, s, nil
}

func fillAuthView(v *endauth.View, s *tenant.AuthSettings, showSecrets bool) {
	v.Mode, v.JWKSURL, v.Issuer, v.Audience = string(s.Mode), s.JWKSURL, s.Issuer, s.Audience
	if showSecrets {
		v.Secrets = strings.Join(s.HS256Secrets, "\n")
	}
	v.PEM = strings.Join(s.PublicKeysPEM, "\n")
	if s.LeewaySeconds != 0 {
		v.Leeway = strconv.Itoa(s.LeewaySeconds)
	}
}

func (c *Console) authPage(gc *gin.Context) error {
	v, _, err := c.authView(gc)
	if err != nil {
		return err
	}
	return c.render(gc, http.StatusOK, endauth.Settings(v))
}

var pemBlock = regexp.MustCompile(`(?s)-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----`)

// authFromForm reads AuthSettings from the auth form; only the selected
// mode's fields are kept.
func authFromForm(get func(string) string) (tenant.AuthSettings, components.FieldErrors) {
	s := tenant.AuthSettings{Mode: tenant.AuthMode(get("mode")), Issuer: strings.TrimSpace(get("issuer")),
		Audience: strings.TrimSpace(get("audience"))}
	if l := strings.TrimSpace(get("leeway_seconds")); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return s, components.FieldErrors{"leeway_seconds": "enter a whole number of seconds"}
		}
		s.LeewaySeconds = n
	}
	switch s.Mode {
	case tenant.AuthHS256:
		for _, line := range strings.Split(strings.ReplaceAll(get("hs256_secrets"), "\r\n", "\n"), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				s.HS256Secrets = append(s.HS256Secrets, line)
			}
		}
	case tenant.AuthPublicKeys:
		s.PublicKeysPEM = pemBlock.FindAllString(get("public_keys_pem"), -1)
	case tenant.AuthJWKS:
		s.JWKSURL = strings.TrimSpace(get("jwks_url"))
	default:
		return s, components.FieldErrors{"auth": "choose how tokens are verified"}
	}
	return s, nil
}

// authFieldErrors places a SetAuth validation message ("hs256_secrets[0]:
// must be ...") next to its field.
func authFieldErrors(err error) components.FieldErrors {
	var ve *tenant.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	msg := ve.Message
	for _, f := range []string{"hs256_secrets", "public_keys_pem", "jwks_url", "issuer", "audience", "leeway_seconds"} {
		if strings.HasPrefix(msg, f) {
			return components.FieldErrors{f: msg}
		}
	}
	return components.FieldErrors{"auth": msg}
}

func (c *Console) authSave(gc *gin.Context) error {
	a := accessFrom(gc)
	s, errs := authFromForm(gc.PostForm)
	if errs == nil {
		err := c.store.SetAuth(gc.Request.Context(), a.Tenant.ID, s, c.actor(gc))
		if err == nil {
			c.flash(gc, "ok", "End-user auth saved. Tokens are verified with the new settings within a second.")
			return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/auth")
		}
		if errs = authFieldErrors(err); errs == nil {
			return err
		}
	}
	v, _, err := c.authView(gc)
	if err != nil {
		return err
	}
	// Keep what was typed.
	fillAuthView(&v, &s, true)
	v.Secrets, v.PEM = gc.PostForm("hs256_secrets"), gc.PostForm("public_keys_pem")
	v.Errors = errs
	return c.render(gc, http.StatusUnprocessableEntity, endauth.Settings(v))
}

// testToken explains whether the tenant's settings accept raw.
func (c *Console) testToken(ctx context.Context, s *tenant.AuthSettings, raw string) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ver, err := server.NewTokenVerifier(ctx, *s, c.opts.VerifierOptions...)
	if err != nil {
		var te *server.TokenError
		if errors.As(err, &te) {
			return false, "Refused: " + te.Reason
		}
		return false, "The settings cannot verify tokens right now (for JWKS: the key set could not be fetched)."
	}
	defer ver.Close()
	sub, err := ver.Verify(ctx, raw)
	if err != nil {
		var te *server.TokenError
		if errors.As(err, &te) {
			return false, "Refused: " + te.Reason
		}
		return false, "Refused: the token could not be checked"
	}
	return true, "Accepted: this token syncs as user " + strconv.Quote(sub) + "."
}

func (c *Console) authTest(gc *gin.Context) error {
	v, s, err := c.authView(gc)
	if err != nil {
		return err
	}
	if s == nil {
		return &pageError{http.StatusConflict, "Not configured", "Configure end-user auth before testing tokens."}
	}
	v.TestToken = gc.PostForm("token")
	v.TestOK, v.TestMsg = c.testToken(gc.Request.Context(), s, v.TestToken)
	return c.render(gc, http.StatusOK, endauth.Settings(v))
}

// mintToken signs a one-hour HS256 token for sub with the first secret.
func mintToken(s *tenant.AuthSettings, sub string, now time.Time) (string, error) {
	claims := jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), Issuer: s.Issuer}
	if s.Audience != "" {
		claims.Audience = jwt.ClaimStrings{s.Audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(s.HS256Secrets[0]))
}

func (c *Console) authMint(gc *gin.Context) error {
	a := accessFrom(gc)
	v, s, err := c.authView(gc)
	if err != nil {
		return err
	}
	if s == nil || s.Mode != tenant.AuthHS256 || len(s.HS256Secrets) == 0 {
		return &pageError{http.StatusConflict, "Not available", "Minting test tokens needs HS256 end-user auth."}
	}
	v.MintSub = strings.TrimSpace(gc.PostForm("sub"))
	if v.MintSub == "" || len(v.MintSub) > 200 {
		v.Errors = components.FieldErrors{"sub": "enter a user id of 1 to 200 characters"}
		return c.render(gc, http.StatusUnprocessableEntity, endauth.Settings(v))
	}
	if v.Minted, err = mintToken(s, v.MintSub, c.now()); err != nil {
		return err
	}
	if err := c.auditOnly(gc, a.Tenant.ID, "auth.mint", v.MintSub); err != nil {
		return err
	}
	return c.render(gc, http.StatusOK, endauth.Settings(v))
}

// auditOnly records an action that changes nothing else.
func (c *Console) auditOnly(gc *gin.Context, tenantID int64, action, target string) error {
	by := c.actor(gc)
	_, err := c.opts.Pool.Exec(gc.Request.Context(), `INSERT INTO syncplane.audit_log (tenant_id, actor, action, target, remote_addr)
		VALUES ($1, $2, $3, $4, $5)`, tenantID, by.Name, action, target, by.RemoteAddr)
	return err
}
