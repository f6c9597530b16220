// Package errors holds the console error page.
package errors
