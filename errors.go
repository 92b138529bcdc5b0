package cove

import "errors"

// Category sentinels. Each has one stable code (see Code); the codes are
// listed once, in docs/errors.md.
var (
	// ErrInvalid: a manifest, module, dataset or request is malformed.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: a named dataset, grant, job or release does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a registration collides with an existing one.
	ErrExists = errors.New("already exists")
	// ErrOutOfScope: a job asks for a dataset, column or purpose its grant does not cover.
	ErrOutOfScope = errors.New("out of scope")
	// ErrBudgetExceeded: the privacy budget left cannot pay for the job.
	ErrBudgetExceeded = errors.New("budget exceeded")
	// ErrGrantInactive: the grant is expired, not yet valid, or revoked.
	ErrGrantInactive = errors.New("grant inactive")
	// ErrGuest: the guest module trapped, exited, ran out of memory or broke the ABI.
	ErrGuest = errors.New("guest failed")
	// ErrDeadline: the job ran past its deadline and was stopped.
	ErrDeadline = errors.New("deadline exceeded")
	// ErrLimit: an input exceeded a configured size or count limit.
	ErrLimit = errors.New("limit exceeded")
	// ErrLedger: the ledger could not be written or does not verify. The
	// action and its ledger entry stand or fall together: normally neither
	// happened; if the commit's fsync failed and the process then crashed,
	// SQLite's recovery may keep both. Never one without the other.
	ErrLedger = errors.New("ledger failure")
	// ErrPrivacy: the privacy mechanism refused the release (bad parameters, library error).
	ErrPrivacy = errors.New("privacy mechanism refused")
	// ErrInReview: the job waits for the authority's review before it runs.
	ErrInReview = errors.New("waiting for review")
	// ErrCancelled: the job was cancelled (by its operator, or by revocation).
	ErrCancelled = errors.New("cancelled")
	// ErrUnavailable: a data source (object store) could not be reached or
	// refused access; the job did not release.
	ErrUnavailable = errors.New("source unavailable")
)

// codes pairs each sentinel with the stable code a client sees.
var codes = []struct {
	err  error
	code string
}{
	{ErrInvalid, "invalid"},
	{ErrNotFound, "not_found"},
	{ErrExists, "exists"},
	{ErrOutOfScope, "out_of_scope"},
	{ErrBudgetExceeded, "budget_exceeded"},
	{ErrGrantInactive, "grant_inactive"},
	{ErrGuest, "guest_failed"},
	{ErrDeadline, "deadline_exceeded"},
	{ErrLimit, "limit_exceeded"},
	{ErrLedger, "ledger_failure"},
	{ErrPrivacy, "privacy_refused"},
	{ErrInReview, "in_review"},
	{ErrCancelled, "cancelled"},
	{ErrUnavailable, "source_unavailable"},
}

// Code returns the stable client code of err's category, or "internal" for an
// error that wraps none of the sentinels.
func Code(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}
