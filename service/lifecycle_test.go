package service_test

import (
	"testing"

	"github.com/covedata/cove/service"
	"github.com/covedata/cove/store"
)

// checkLifecycle checks a job's states, as its events list them, against
// the state machine. The running state is not a ledger entry: admitted →
// released or failed passes through it.
func checkLifecycle(t *testing.T, states []string) {
	t.Helper()
	for i := 1; i < len(states); i++ {
		from, to := states[i-1], states[i]
		if from == store.StateAdmitted && (to == store.StateReleased || to == store.StateFailed) {
			from = store.StateRunning
		}
		if !service.CanMove(from, to) {
			t.Errorf("transition %s → %s in %v is not in the state machine", states[i-1], to, states)
		}
	}
	if len(states) > 0 && !service.Final(states[len(states)-1]) {
		t.Errorf("job did not end: %v", states)
	}
}

func TestStateMachineClosed(t *testing.T) {
	for from, tos := range service.Transitions {
		for _, to := range tos {
			if _, ok := service.Transitions[to]; !ok {
				t.Errorf("%s → %s: %s is not a state", from, to, to)
			}
		}
	}
	for _, s := range []string{store.StateReleased, store.StateFailed, store.StateRejected, store.StateCancelled} {
		if !service.Final(s) {
			t.Errorf("%s should be final", s)
		}
	}
}

func serviceOptions() service.Options { return service.Options{Workers: 2} }
