package service

import (
	"encoding/json"
	"slices"

	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/store"
)

// Transitions is a job's state machine, as the store enforces it (each
// store call checks the state it moves from, in the transaction that moves
// it). "admitted" is what the API calls queued: waiting for a worker.
//
//	submitted ─▶ admitted ─▶ running ─▶ released
//	    │   ╲        │          ├─────▶ failed      (refunded)
//	    │    ▶ in_review ─▶ admitted    └─────▶ cancelled (refunded)
//	    ▼          ├──────▶ rejected   (refunded)
//	 rejected      └──────▶ cancelled  (refunded)
var Transitions = map[string][]string{
	store.StateSubmitted: {store.StateAdmitted, store.StateInReview, store.StateRejected},
	store.StateInReview:  {store.StateAdmitted, store.StateRejected, store.StateCancelled},
	store.StateAdmitted:  {store.StateRunning, store.StateFailed, store.StateCancelled},
	store.StateRunning:   {store.StateReleased, store.StateFailed, store.StateCancelled},
	store.StateReleased:  nil,
	store.StateFailed:    nil,
	store.StateRejected:  nil,
	store.StateCancelled: nil,
}

// Final reports whether a state is an end.
func Final(state string) bool { return len(Transitions[state]) == 0 }

// CanMove reports whether the state machine allows from → to.
func CanMove(from, to string) bool { return slices.Contains(Transitions[from], to) }

// Event is one step of a job's life, read from the ledger.
type Event struct {
	Seq   uint64 `json:"seq"`
	Time  string `json:"time"`
	Kind  string `json:"kind"`
	State string `json:"state"` // the state the job is in after the event
}

// stateAfter maps a job's ledger entry to the state it leaves the job in;
// "" for an entry that does not move it (job.ran precedes the release).
func stateAfter(e ledger.Entry) string {
	switch e.Kind {
	case ledger.JobSubmitted:
		return store.StateSubmitted
	case ledger.JobQueued:
		return store.StateInReview
	case ledger.JobAdmitted:
		return store.StateAdmitted
	case ledger.JobReviewed:
		if approved(e.Body) {
			return store.StateAdmitted
		}
		return store.StateRejected
	case ledger.JobRejected:
		return store.StateRejected
	case ledger.JobCancelled:
		return store.StateCancelled
	case ledger.JobFailed:
		return store.StateFailed
	case ledger.Released:
		return store.StateReleased
	}
	return ""
}

// approved reads a job.reviewed entry's decision.
func approved(body []byte) bool {
	var b struct {
		Approved bool `json:"approved"`
	}
	return json.Unmarshal(body, &b) == nil && b.Approved
}
