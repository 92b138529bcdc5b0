// Package wasmer is the optional second engine: Cove guest ABI v1
// (docs/abi.md) on wasmer 2.0 through github.com/wasmerio/wasmer-go v1.0.4,
// behind the same wasm.Runtime interface as the default wazero engine
// (runtime/wasm).
//
// # Build tag
//
// The engine needs cgo and the libwasmer that wasmer-go ships prebuilt
// (linux-amd64, linux-aarch64, darwin), so it is compiled only with the
// build tag wasmer:
//
//	CGO_ENABLED=1 go test -tags wasmer ./runtime/...
//
// Without the tag this package holds only this documentation and a pure-Go
// helper; everything else in Cove builds and runs without cgo. wazero
// stays the default: wasmer-go's last release is from 2021, pinned to
// wasmer 2.0, with open leak reports and no way to interrupt a running
// guest (docs/abi.md, "Engines").
//
// # Use
//
//	eng, _ := wasmer.NewEngine(ctx, wasm.NewConfig().Limits())
//	var rt wasm.Runtime = eng
//
// In production run it inside the sandbox process, where the watchdog
// bounds it: isolate.NewConfig(cfg).WithEngine("wasmer") in a binary built
// with the tag.
//
// # The same ABI
//
// Every host call of module "cove" goes to runtime/internal/abi's State,
// the code the wazero engine uses: the same pointer, length, row, key,
// output and emit-limit checks, the same kernels, the same errors
// (*wasm.GuestError with the same kinds and messages; wasmer's trap
// messages are mapped onto the wazero engine's fixed trap names). Compile
// refuses the same imports and lists them. The WASI subset is implemented
// here with the wazero engine's semantics: no arguments, environment or
// preopens, a fake clock (wall time from 2022-01-01, monotonic from 0, 1 ms
// per reading), sleeps that return at once, random bytes from wazero's
// fixed seed (a guest sees the same bytes on both engines), stdout and
// stderr discarded unless debug output is on.
//
// # Gaps
//
//   - Deadline: wasmer-go has no context cancellation (only gas metering,
//     not exposed by the C API it uses). The context is checked before and
//     after each guest call and at every host call (a guest that calls the
//     host, emit or a WASI function, stops there), but a guest that loops
//     without calling the host runs until the process ends. Run this
//     engine under runtime/isolate, whose watchdog SIGKILLs the sandbox at
//     deadline + grace: that is the only deadline for such a guest.
//   - Memory limit: wasmer-go 1.0.4 cannot set limits on a memory the
//     module defines (wasmer.NewLimits only types memories the host
//     creates, and ABI v1 forbids imported memory). Compile writes the
//     limit into the module's memory section instead (the maximum becomes
//     min(declared, limit)), so memory.grow past it returns -1 as on
//     wazero; the size is also checked after every guest call.
//   - Address space: wasmer reserves 6 GiB of virtual memory per linear
//     memory (4 GiB plus a 2 GiB guard), whatever the limit: the sandbox's
//     RLIMIT_AS grows by that much for this engine.
//   - Compilation cache: modules serialized by wasmer in a subdirectory of
//     the configured cache directory (keyed by the sha256 of the module as
//     compiled, after the memory cap).
//   - A module's start section (not used by Go or C guests) runs inside
//     instantiation, before the context can be checked at all.
//   - Host functions made for an instance stay registered in wasmer-go for
//     the life of the process (a wasmer-go leak): another reason to run the
//     engine in short-lived sandbox processes.
//
// # Concurrency
//
// Engine and Module are safe for concurrent use. An Instance processes one
// batch at a time (its methods serialize). Emission slices are views into
// guest memory valid only during the callback.
package wasmer
