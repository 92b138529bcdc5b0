package client

import (
	"errors"
	"fmt"

	"github.com/covedata/cove"
)

// Sentinels of the API's transport codes and of how a job ended.
var (
	// ErrUnauthenticated: no token, an unknown one, or a revoked one.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the token's role may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrJobFailed: the job ran and failed (refunded).
	ErrJobFailed = errors.New("job failed")
	// ErrRejected: admission or review rejected the job (refunded).
	ErrRejected = errors.New("job rejected")
)

// sentinels are the errors an API code may stand for.
var sentinels = []error{
	cove.ErrInvalid, cove.ErrNotFound, cove.ErrExists, cove.ErrOutOfScope, cove.ErrBudgetExceeded,
	cove.ErrGrantInactive, cove.ErrGuest, cove.ErrDeadline, cove.ErrLimit, cove.ErrLedger, cove.ErrPrivacy,
	cove.ErrInReview, cove.ErrCancelled,
}

// Violation is one reason admission refused a job.
type Violation struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is an error answer of the API.
type Error struct {
	Status     int         `json:"-"` // HTTP status
	Code       string      `json:"code"`
	Message    string      `json:"message"`
	Job        string      `json:"job,omitempty"` // a rejected job's id
	Violations []Violation `json:"violations,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("cove API: %s (%d %s)", e.Message, e.Status, e.Code)
}

// Is matches the sentinel of the error's code, or of any of its violations'.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthenticated:
		return e.Code == "unauthenticated"
	case ErrForbidden:
		return e.Code == "forbidden"
	case ErrRejected:
		return len(e.Violations) > 0
	}
	for _, s := range sentinels {
		if s != target {
			continue
		}
		code := cove.Code(s)
		if e.Code == code {
			return true
		}
		for _, v := range e.Violations {
			if v.Code == code {
				return true
			}
		}
	}
	return false
}

// JobError is a job that ended without a release.
type JobError struct {
	Job Job
}

func (e *JobError) Error() string {
	return fmt.Sprintf("job %s ended %s: %s", e.Job.ID, e.Job.State, e.Job.Reason)
}

// Is matches ErrJobFailed, ErrRejected or cove.ErrCancelled by the job's state.
func (e *JobError) Is(target error) bool {
	switch e.Job.State {
	case "failed":
		return target == ErrJobFailed
	case "rejected":
		return target == ErrRejected
	case "cancelled":
		return target == cove.ErrCancelled
	}
	return false
}
