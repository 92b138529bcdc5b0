package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/covedata/cove"
	"github.com/covedata/cove/policy"
)

// Transport error codes, beside cove.Code's categories.
const (
	CodeUnauthenticated = "unauthenticated" // no valid token where one is needed, or a bad one
	CodeForbidden       = "forbidden"       // the token's role may not call this route
)

var (
	errUnauthenticated = errors.New(CodeUnauthenticated)
	errForbidden       = errors.New(CodeForbidden)
)

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Code       string             `json:"code"`
	Message    string             `json:"message"`
	Job        string             `json:"job,omitempty"`
	Violations []policy.Violation `json:"violations,omitempty"`
}

// codeOf is cove.Code extended with the transport codes.
func codeOf(err error) string {
	switch {
	case errors.Is(err, errUnauthenticated):
		return CodeUnauthenticated
	case errors.Is(err, errForbidden):
		return CodeForbidden
	}
	return cove.Code(err)
}

// statusOf maps a code to an HTTP status.
func statusOf(code string) int {
	switch code {
	case "invalid":
		return http.StatusBadRequest
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case "not_found":
		return http.StatusNotFound
	case "exists", "in_review", "cancelled", "grant_inactive":
		return http.StatusConflict
	case "limit_exceeded":
		return http.StatusRequestEntityTooLarge
	case "out_of_scope", "budget_exceeded", "privacy_refused":
		return http.StatusUnprocessableEntity
	case "guest_failed", "deadline_exceeded":
		return http.StatusUnprocessableEntity
	case "ledger_failure":
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// apiError is an error with an explicit status (415, 405...).
type apiError struct {
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func withStatus(status int, err error) error { return &apiError{status: status, err: err} }

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{cove.ErrInvalid}, a...)...)
}

// writeError answers err. Internal errors are logged with their detail and
// answered with a fixed message: a message reaching a client must name what
// is at fault, never a value or a stack.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := codeOf(err)
	status := statusOf(code)
	var ae *apiError
	if errors.As(err, &ae) {
		status = ae.status
	}
	body := ErrorBody{Code: code, Message: err.Error()}
	if code == "internal" {
		s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		body.Message = "internal error; the service log has the detail"
	}
	var rej *policy.Rejection
	if errors.As(err, &rej) {
		body.Violations = rej.Violations
		if status == http.StatusInternalServerError {
			status = http.StatusUnprocessableEntity
		}
	}
	var je *jobError
	if errors.As(err, &je) {
		body.Job = je.job
	}
	writeJSON(w, status, body)
}

// jobError names the job an error is about (a rejection's job id).
type jobError struct {
	job string
	err error
}

func (e *jobError) Error() string { return e.err.Error() }
func (e *jobError) Unwrap() error { return e.err }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// Not indented: that would re-indent ledger entries' bodies, whose
	// exact bytes are hashed.
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("writing response", "err", err)
	}
}
