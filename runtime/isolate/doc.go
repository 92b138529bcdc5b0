// Package isolate runs each guest instance in a sandbox process of its own:
// the second wall around untrusted WebAssembly, behind the same
// wasm.Runtime interface as the in-process engine (runtime/wasm), so a
// caller switches by the value it is given.
//
// # The sandbox
//
// A sandbox is this program started again (by default os.Executable() with
// the argument "sandbox" and the environment variable EnvChild=1; the cove
// binary serves it as the hidden subcommand `cove sandbox`, test binaries
// through ServeIfChild in TestMain). It receives the module and, per batch,
// the guest's columns as an Arrow IPC stream over its stdin, and returns
// only newly interned keys, emissions (listed: output, rows, key ids,
// values; ranged, from host kernels: output, selection bitmap, values by
// row, key runs, which the parent checks against the batch) and a status
// over its stdout. The parent keeps everything else, the privacy
// unit columns included, and attributes units from the rows as before.
//
// Inside, before it reads an untrusted byte, the sandbox sets its own
// resource limits: RLIMIT_AS (guest memory limit + 2 GiB by default),
// RLIMIT_CPU (the instance deadline + grace, lowered per call to the time
// the call's deadline leaves), no core dumps, no file over 1 GiB, 64
// descriptors. It runs wazero with close-on-context-done, the memory limit,
// no file system, network, real clock or host randomness (runtime/wasm).
// Config.WithEngine(EngineWasmer) runs wasmer instead (runtime/wasmer, in
// binaries built with -tags wasmer): it cannot interrupt a guest, so the
// watchdog's SIGKILL is its deadline, and RLIMIT_AS grows by the 6 GiB
// wasmer reserves per linear memory.
//
// The process inherits no descriptor but its three pipes (stdin, stdout,
// and stderr, which the parent discards unless debug output is on: mock
// runs), dies with its parent (PDEATHSIG), and starts in a new network
// namespace where the OS allows it: CLONE_NEWNET (needs CAP_SYS_ADMIN),
// else CLONE_NEWUSER|CLONE_NEWNET (unprivileged user namespaces), else the
// host's namespace, with a notice logged once per Engine
// (Engine.Isolation says which). Without a namespace a sandbox still has
// no network import to call: the namespace only matters for a guest that
// escapes WebAssembly. It is Linux only; elsewhere sandboxes share the
// host's network.
//
// # The watchdog
//
// Each exchange with a sandbox runs under the caller's context. When it is
// done, the parent sends SIGTERM (the sandbox cancels the guest, which
// wazero stops at its next loop head or call) and SIGKILL a grace period
// later (750 ms by default) if no answer came: a guest that outruns wazero's
// own checks (a loop-free exponential call tree) cannot outrun the kill.
// A sandbox that dies (killed, out of memory, SIGXCPU) fails its instance
// with a *wasm.GuestError; the Engine and other instances are unaffected.
//
// # Costs
//
// A sandbox per Compile (to check the module without compiling untrusted
// bytes in the host process) and per Instantiate, and one copy of each
// batch through the pipe. Compiled code is shared through wazero's
// compilation cache (keyed by the module's sha256), a temporary directory
// per Engine when the configuration names none. With the cache warm, a
// sandbox for a 2 MB Go guest costs about 40 ms on a small machine: about
// 1 ms to fork and exec, 3 to 9 ms for the Go runtime to start (the larger
// the binary, the longer), 1 ms to set limits and make the engine, about
// 30 ms for wazero to decode and validate the module and load its compiled
// code from the cache, 5 to 15 ms to instantiate, 2 ms to end. A cold
// compile (the first sandbox to see a module) adds hundreds of ms.
//
// # The pool
//
// The Engine keeps Config.WithPool idle sandboxes (none by default: see
// DefaultPool) started ahead, which takes the process start, the Go runtime's start and the
// configuration (limits, engine) off a job's path; the module's compile and
// the instance are not started ahead. A pooled sandbox has read only its
// configuration, the same for every sandbox of the Engine, when it is
// taken; it then serves exactly one Compile or Instantiate and ends with
// it, like a sandbox started on demand: it never returns to the pool and is
// never shared between jobs. Its limits, descriptors and namespace are those
// of any sandbox, and the watchdog covers every exchange after it is taken.
// A replacement starts in the background each time one is taken; one that
// died while idle is discarded when found (one that dies as it is taken
// fails that Compile or Instantiate like any sandbox that dies). Close
// kills the idle sandboxes and those still starting. WithPool(0) starts
// each sandbox when it is needed.
//
// # Reuse within a scope
//
// A caller may name the scope an instance runs for (wasm.WithScope); jobs
// names the operator, the dataset and the columns the guest is given. With
// Config.WithReuse (on by default: 8 sandboxes, 10 s, 64 uses), a sandbox
// whose instance closed cleanly asks its process to close the instance and
// waits for the next instance of the same module and the same scope, which
// then starts in it without a process start, a Go runtime start or a module
// load. The argument is that of the scope: a guest that escaped
// WebAssembly and left something behind in the process could hand it only
// to a later instance of the same operator's same module over the same
// data, which that instance is given anyway; different scopes, unscoped
// instances and mock runs (debug output) never share a process. A sandbox
// whose instance failed, was canceled or passed its deadline is killed as
// before; when the limit of waiting sandboxes is reached, a sandbox that
// would wait ends instead. The limits stay per instance: each call carries its deadline and
// watchdog, the soft CPU limit follows each deadline (the hard limit is one
// instance's worth per use), the address-space limit is the guest's cap
// plus the slack as before, and a new instance gets fresh linear memory and
// a fresh key table. Close kills the waiting sandboxes.
//
// # The planning call and per-unit and block modes
//
// Module.Plan runs in a sandbox of its own: the parent sends the schema (an
// Arrow IPC stream with no record) and gets the plan back (at most 64 KiB);
// the sandbox ends with the call. Module.InstantiateGroups starts a sandbox
// that serves one GroupInstance and nothing else: it is never reused, in
// any scope. For each RunGroups the parent sends the record (Arrow IPC)
// and the group bounds once; the sandbox runs the loop over groups itself
// (runtime/wasm, snapshot and restore included) and streams back, group by
// group, the new key names, the group's contributions or vectors, or that
// it failed. The parent checks them again: groups in order, nothing of a
// failed group, rows within their group, keys the sandbox sent, outputs
// that take contributions (or vectors of a block output's dimension, once
// per group, finite), the per-group contribution limit. The watchdog
// covers the whole exchange like any other: a guest that outruns the
// per-group CPU limit inside (a loop-free call tree) is killed at the
// caller's deadline + grace, and the run fails. On wasmer sandboxes the
// planning call works and InstantiateGroups is refused.
//
// # Concurrency
//
// Engine and modules are safe for concurrent use; an instance's methods
// serialize.
package isolate
