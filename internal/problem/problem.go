// Package problem carries user-facing errors from the control plane's
// services to the HTTP layer: an API error (code, message, details) and the
// HTTP status that goes with it.
package problem

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/berth-ml/berth/api"
)

// Error is an API error with its HTTP status.
type Error struct {
	Status int
	Body   api.Error
}

func (e *Error) Error() string { return e.Body.Error() }

// Unwrap exposes the API error.
func (e *Error) Unwrap() error { return &e.Body }

// New makes an error with a status, code and message.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Body: api.Error{Code: code, Message: sprintf(format, args...)}}
}

// Detail is one problem of a request: its code, the field it concerns and
// a sentence a person can act on.
func Detail(code, target, format string, args ...any) api.ErrorDetail {
	return api.ErrorDetail{Code: code, Target: target, Message: sprintf(format, args...)}
}

// MaxEcho is how much of a value a message repeats back.
const MaxEcho = 200

// Shorten cuts a value a message repeats back to MaxEcho characters,
// saying how long it was, so a huge input does not make a huge error.
func Shorten(s string) string {
	if len(s) <= MaxEcho {
		return s
	}
	r := []rune(s)
	if len(r) <= MaxEcho {
		return s
	}
	return fmt.Sprintf("%s… (%d characters)", string(r[:MaxEcho/2]), len(r))
}

// sprintf formats a message with every string argument shortened.
func sprintf(format string, args ...any) string {
	for i, a := range args {
		if v, ok := a.(string); ok {
			args[i] = Shorten(v)
		}
	}
	return fmt.Sprintf(format, args...)
}

// Validation reports every problem of a request at once (400).
func Validation(message string, details []api.ErrorDetail) *Error {
	code := api.CodeValidation
	if len(details) == 1 || allSameCode(details) {
		code = details[0].Code
	}
	if message == "" {
		message = fmt.Sprintf("the request has %d problems; nothing was changed", len(details))
		if len(details) == 1 {
			message = details[0].Message
		}
	}
	return &Error{Status: http.StatusBadRequest, Body: api.Error{Code: code, Message: message, Details: details}}
}

func allSameCode(d []api.ErrorDetail) bool {
	if len(d) == 0 {
		return false
	}
	for _, x := range d {
		if x.Code != d[0].Code {
			return false
		}
	}
	return true
}

// NotFound is a 404.
func NotFound(format string, args ...any) *Error {
	return New(http.StatusNotFound, api.CodeNotFound, format, args...)
}

// Conflict is a 409.
func Conflict(code, format string, args ...any) *Error {
	return New(http.StatusConflict, code, format, args...)
}

// Forbidden is a 403.
func Forbidden(format string, args ...any) *Error {
	return New(http.StatusForbidden, api.CodeForbidden, format, args...)
}

// As finds a *Error in err's chain.
func As(err error) (*Error, bool) { return errors.AsType[*Error](err) }
