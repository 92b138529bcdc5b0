//go:build wasmer

package wasmer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	wasmer "github.com/wasmerio/wasmer-go/wasmer"

	"github.com/covedata/cove/runtime/internal/abi"
	"github.com/covedata/cove/runtime/wasm"
)

// trapKinds maps wasmer's trap messages to the fixed trap kinds the wazero
// engine names, so that an operator reads the same words on both engines
// and nothing a guest chose reaches the message.
var trapKinds = []struct{ wasmer, kind string }{
	{"unreachable", "unreachable"},
	{"out of bounds memory access", "out of bounds memory access"},
	{"call stack exhausted", "stack overflow"},
	{"integer divide by zero", "integer divide by zero"},
	{"integer overflow", "integer overflow"},
	{"invalid conversion to integer", "invalid conversion to integer"},
	{"out of bounds table access", "invalid table access"},
	{"uninitialized element", "invalid table access"},
	{"indirect call type mismatch", "indirect call type mismatch"},
	{"misaligned memory access", "unaligned atomic"},
	{"unaligned atomic", "unaligned atomic"},
}

func ctxError(phase string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return wasm.NewGuestError(wasm.KindDeadline, phase, "guest stopped at the deadline")
	}
	return wasm.NewGuestError(wasm.KindCanceled, phase, "guest stopped: the run was canceled")
}

// classify turns the error of a guest call into a wasm.GuestError, as the
// wazero engine does: the state's Failure first (a refused host call, or
// the emit callback's error returned unchanged), then proc_exit, the
// context, a full memory, and last the trap.
func (i *instance) classify(ctx context.Context, phase string, err error) error {
	e := i.m.e
	debug := e.debug != nil
	if f := i.state.Failure; f != nil {
		var ae *abi.Error
		if !errors.As(f, &ae) {
			return f
		}
		msg := ae.Msg
		if debug && ae.Detail != "" {
			msg += ": " + ae.Detail
		}
		if ae.Kind == abi.KindLimit {
			return wasm.NewGuestError(wasm.KindLimit, phase, "guest exceeded a limit: "+msg)
		}
		return wasm.NewGuestError(wasm.KindABI, phase, "guest broke the ABI: "+msg)
	}
	if i.exit != nil {
		if e.memoryFull(i.mem) {
			return wasm.NewGuestError(wasm.KindMemory, phase, e.memoryMsg())
		}
		if debug {
			return wasm.NewGuestError(wasm.KindExit, phase, fmt.Sprintf("guest exited with code %d", *i.exit))
		}
		return wasm.NewGuestError(wasm.KindExit, phase, "guest exited")
	}
	if i.stop != nil {
		return ctxError(phase, i.stop)
	}
	var trap *wasmer.TrapError
	isTrap := errors.As(err, &trap)
	if cerr := ctx.Err(); cerr != nil && (errors.Is(err, errStopped) || !isTrap) {
		return ctxError(phase, cerr)
	}
	var ge *wasm.GuestError
	if errors.As(err, &ge) {
		return ge
	}
	if e.memoryFull(i.mem) {
		return wasm.NewGuestError(wasm.KindMemory, phase, e.memoryMsg())
	}
	text := err.Error()
	kind := "unknown"
	if isTrap {
		for _, k := range trapKinds {
			if strings.Contains(text, k.wasmer) {
				kind = k.kind
				break
			}
		}
	}
	msg := "guest trapped: " + kind
	if !isTrap {
		msg = "guest failed to start: " + kind // instantiation: link or allocation error
	}
	if debug {
		msg += "\n" + text
	}
	return wasm.NewGuestError(wasm.KindTrap, phase, msg)
}

func (e *Engine) memoryMsg() string {
	return fmt.Sprintf("guest ran out of memory (limit %d MiB)", uint64(e.lim.MemoryLimitPages)*65536>>20)
}

// memoryFull reports whether the guest's memory is within 1/8 of the limit
// (at least 4 MiB), the wazero engine's heuristic for a failed grow.
func (e *Engine) memoryFull(mem *wasmer.Memory) bool {
	if mem == nil {
		return false
	}
	limit := uint64(e.lim.MemoryLimitPages) * 65536
	margin := max(limit/8, 4<<20)
	return uint64(mem.DataSize())+margin >= limit
}
