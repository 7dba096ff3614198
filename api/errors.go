package api

import (
	"fmt"
	"strings"
)

// Error codes the API uses. Codes are stable; messages are for people.
const (
	CodeBadRequest          = "BadRequest"
	CodeInvalidJSON         = "InvalidJSON"
	CodeValidation          = "ValidationFailed"
	CodeInvalidComputeName  = "InvalidComputeName"
	CodeInvalidName         = "InvalidName"
	CodeNameInUse           = "NameInUse"
	CodeUnauthorized        = "Unauthorized"
	CodeForbidden           = "Forbidden"
	CodeNotFound            = "NotFound"
	CodeConflict            = "Conflict"
	CodeOperationInProgress = "OperationInProgress"
	CodeWorkspaceNotEmpty   = "WorkspaceNotEmpty"
	CodeUnsupportedType     = "UnsupportedComputeType"
	CodePayloadTooLarge     = "PayloadTooLarge"
	CodeMethodNotAllowed    = "MethodNotAllowed"
	CodeInternal            = "InternalError"
	CodeOperationFailed     = "OperationFailed"
)

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Error is a coded, human-readable error with optional details (one per
// problem found, so a user sees them all at once).
type Error struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details []ErrorDetail `json:"details,omitempty"`
}

// ErrorDetail is one problem of a request, or one failed check.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Target names the field or check the detail is about.
	Target string `json:"target,omitempty"`
}

func (e *Error) Error() string {
	if len(e.Details) == 0 || (len(e.Details) == 1 && e.Details[0].Message == e.Message) {
		return e.Message
	}
	var b strings.Builder
	b.WriteString(e.Message)
	for _, d := range e.Details {
		fmt.Fprintf(&b, "\n  - %s", d.Message)
	}
	return b.String()
}
