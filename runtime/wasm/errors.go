package wasm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/internal/abi"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// Kind classifies a guest failure.
type Kind string

// Guest failure kinds.
const (
	KindTrap     Kind = "trap"     // a WebAssembly trap (unreachable, out of bounds, stack overflow...)
	KindExit     Kind = "exit"     // the guest called proc_exit (a Go panic ends this way)
	KindFailed   Kind = "failed"   // cove_batch returned a nonzero code: the guest reported an error
	KindABI      Kind = "abi"      // the guest broke the ABI (bad pointer, undeclared output, bad row...)
	KindMemory   Kind = "memory"   // the guest failed with its memory at the limit
	KindLimit    Kind = "limit"    // the guest exceeded a configured limit (emits, keys); wraps cove.ErrLimit
	KindDeadline Kind = "deadline" // the context's deadline passed; wraps cove.ErrDeadline
	KindCanceled Kind = "canceled" // the context was canceled (revocation); wraps cove.ErrDeadline and context.Canceled
)

// GuestError is a guest's failure. Its message is safe to show an operator
// on real data: it names the kind, the phase, trap kinds and limits, never a
// byte the guest chose. Exit and return codes and guest-supplied names are
// added only when the Config has debug output (mock runs). It wraps
// cove.ErrGuest, or cove.ErrLimit / cove.ErrDeadline for those kinds.
type GuestError struct {
	Kind  Kind
	Phase string // "compile", "initialize" or "batch"
	msg   string
	wraps []error
}

func (e *GuestError) Error() string {
	return fmt.Sprintf("%v: %s (during %s)", e.wraps[0], e.msg, e.Phase)
}

// Unwrap returns the category sentinel (and the context's error for
// deadline and cancellation).
func (e *GuestError) Unwrap() []error { return e.wraps }

// NewGuestError makes a guest error of kind (a sandbox process's error,
// rebuilt in its parent). msg must hold no data.
func NewGuestError(kind Kind, phase, msg string) *GuestError { return newGuestError(kind, phase, msg) }

// Message is the error's message without the category and phase.
func (e *GuestError) Message() string { return e.msg }

func newGuestError(kind Kind, phase, msg string) *GuestError {
	e := &GuestError{Kind: kind, Phase: phase, msg: msg}
	switch kind {
	case KindLimit:
		e.wraps = []error{cove.ErrLimit}
	case KindDeadline:
		e.wraps = []error{cove.ErrDeadline, context.DeadlineExceeded}
	case KindCanceled:
		e.wraps = []error{cove.ErrDeadline, context.Canceled}
	default:
		e.wraps = []error{cove.ErrGuest}
	}
	return e
}

// trapKinds are the trap messages of the engine that may be named: a fixed
// set, so nothing a guest chose reaches the message.
var trapKinds = []string{
	"unreachable", "out of bounds memory access", "stack overflow", "integer divide by zero",
	"integer overflow", "invalid conversion to integer", "invalid table access",
	"indirect call type mismatch", "unaligned atomic", "uncaught exception", "null reference",
}

// classify turns the error of a guest call into a GuestError. The state's
// Failure, when set, is the host's own reason to stop the guest (a refused
// host call, or the emit callback's error, returned unchanged). mem is the
// guest's memory, nil when the engine dropped it.
func (e *Engine) classify(ctx context.Context, phase string, st *abi.State, mem api.Memory, err error) error {
	debug := e.cfg.debug != nil
	if f := st.Failure; f != nil {
		var ae *abi.Error
		if !errors.As(f, &ae) {
			return f
		}
		msg := ae.Msg
		if debug && ae.Detail != "" {
			msg += ": " + ae.Detail
		}
		if ae.Kind == abi.KindLimit {
			return newGuestError(KindLimit, phase, "guest exceeded a limit: "+msg)
		}
		return newGuestError(KindABI, phase, "guest broke the ABI: "+msg)
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		code := exit.ExitCode()
		// wazero closes a module with these codes when ctx is done; a guest
		// may exit with them too, so ctx decides.
		if ctxErr := ctx.Err(); ctxErr != nil && (code == sys.ExitCodeDeadlineExceeded || code == sys.ExitCodeContextCanceled) {
			if errors.Is(ctxErr, context.DeadlineExceeded) {
				return newGuestError(KindDeadline, phase, "guest stopped at the deadline")
			}
			return newGuestError(KindCanceled, phase, "guest stopped: the run was canceled")
		}
		if e.memoryFull(mem) {
			return newGuestError(KindMemory, phase, e.memoryMsg())
		}
		if debug {
			return newGuestError(KindExit, phase, fmt.Sprintf("guest exited with code %d", code))
		}
		return newGuestError(KindExit, phase, "guest exited")
	}
	if e.memoryFull(mem) {
		return newGuestError(KindMemory, phase, e.memoryMsg())
	}
	text := err.Error()
	kind := "unknown"
	if at := strings.Index(text, "wasm error: "); at >= 0 {
		for _, k := range trapKinds {
			if strings.HasPrefix(text[at+len("wasm error: "):], k) {
				kind = k
				break
			}
		}
	} else {
		// Some traps (stack overflow) come without the prefix. The kind is
		// still one of the fixed set, whatever else the text holds.
		first, _, _ := strings.Cut(text, "\n")
		for _, k := range trapKinds {
			if strings.Contains(first, k) {
				kind = k
				break
			}
		}
	}
	msg := "guest trapped: " + kind
	if debug {
		msg += "\n" + text // the engine's message with the wasm stack trace
	}
	return newGuestError(KindTrap, phase, msg)
}

func (e *Engine) memoryMsg() string {
	return fmt.Sprintf("guest ran out of memory (limit %d MiB)", uint64(e.cfg.memoryLimitPages)*65536>>20)
}

// memoryFull reports whether the guest's memory is within 1/8 of the limit
// (at least 4 MiB): a guest that fails there most likely failed to grow it.
// Engines do not report a failed memory.grow, so this is a heuristic; it
// only changes the kind of an error that is a failure anyway.
func (e *Engine) memoryFull(mem api.Memory) bool {
	if mem == nil {
		return false
	}
	limit := uint64(e.cfg.memoryLimitPages) * 65536
	margin := max(limit/8, 4<<20)
	return uint64(mem.Size())+margin >= limit
}
