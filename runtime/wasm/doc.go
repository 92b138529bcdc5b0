// Package wasm runs Cove jobs: untrusted WebAssembly guests that read Arrow
// record batches and may output nothing but contributions to the aggregates
// their manifest declares. It is the wazero binding of Cove guest ABI v1
// (docs/abi.md); the ABI itself, engine-neutral, lives in
// runtime/internal/abi.
//
// # Use
//
//	eng, _ := wasm.NewEngine(ctx, wasm.NewConfig())
//	var rt wasm.Runtime = eng                        // or an isolate.Engine
//	mod, _ := rt.Compile(ctx, moduleBytes)           // refuses imports outside the ABI
//	inst, _ := mod.Instantiate(ctx, []string{"pm25_mean"}) // the manifest's outputs
//	err := inst.ProcessBatch(ctx, rec, func(em wasm.Emission) error {
//		// em.Rows[j] is the row whose privacy unit contributes em.Values[j]
//		// to key inst.KeyName(em.Keys[j]) of output em.Output.
//		return nil
//	})
//
// ProcessBatchRuns delivers the contributions of host kernels (import
// k_emit) in the ranged form instead: key runs over row ranges, a selection
// bitmap and the value column's Arrow buffer, with no row, key and value
// per contribution in memory; Emission.Each (or the fields) reads them.
// ProcessBatch expands them, for consumers of the listed form.
//
// # Modes
//
// Instantiate and ProcessBatch are batch mode: the guest sees whole batches
// and keeps its state between them, which is for mock data only (what it
// emits for one row may depend on every other row). On real data:
//
//   - Module.Plan makes the planning call: a fresh instance's cove_plan
//     gets a schema region (the columns' names and types, no rows) and
//     hands back a plan through import plan; during the call no import
//     that could reach data answers.
//   - Module.InstantiateGroups starts an instance of per-unit or block mode
//     (GroupInstance, configured by a GroupConfig): RunGroups calls
//     cove_batch once per group of rows (a privacy unit, or a block of
//     units), each time from the snapshot taken after initialization, and
//     hands each successful group's contributions (or block vectors,
//     import result) to a GroupSink before the next group starts; a group
//     that fails gives nothing and is reported failed.
//
// For example:
//
//	inst, _ := mod.InstantiateGroups(ctx, outputs, wasm.NewGroupConfig())
//	err := inst.RunGroups(ctx, rec, bounds, sink) // group g: rows [bounds[g], bounds[g+1])
//
// The module is instrumented once per guest memory size
// (runtime/internal/snapshot): its memory is fixed at that size plus a
// dirty map, every store is bounds-checked and marks its 4 KiB page, and
// every mutable global is exported. Restoring copies back the marked pages
// and sets the globals, so it costs what the group dirtied, not a new
// instance; the host's writes (the region, column, k_read, WASI results)
// mark their pages too, and host calls see only the guest's pages, never
// the map. The instance's WASI restarts for every group (clocks, random
// source) and keeps no other state; the key table, emit counter and
// kernel handles are reset. A group that runs past its CPU limit is
// stopped through wazero's close-on-context-done; a group that closed the
// instance (an exit, an overrun) leaves a new instance holding the
// snapshot for the next one. Emissions carry key ids of a host-side table
// stable for the instance's life (GroupInstance.KeyName).
//
// # What a guest can reach
//
// Only module "cove" (output, key, emit, the kernels, column, plan,
// result) and these WASI functions of
// wasi_snapshot_preview1, the ones Go's wasip1 runtime and os package import:
// args_get, args_sizes_get, environ_get, environ_sizes_get (no arguments, no
// environment), clock_time_get (wazero's fake clock: deterministic readings
// unrelated to real time), poll_oneoff and sched_yield (sleeping returns at
// once), random_get (wazero's deterministic source: the same bytes every
// run, never crypto randomness), fd_write (stdout and stderr, discarded
// unless Config.WithDebugOutput), fd_close, fd_fdstat_get,
// fd_fdstat_set_flags, fd_prestat_get, fd_prestat_dir_name (there are no
// preopened directories, so no file can be named), proc_exit. Compile
// refuses a module importing anything else and lists every offending
// import. There is no file system, network, stdin, real clock or host
// randomness.
//
// # Limits and failures
//
// Memory is capped (Config.WithMemoryLimitPages, 256 MiB by default) and
// every call into the guest runs under its context: at the deadline the
// guest is stopped (wazero's close-on-context-done, measured to stop a loop
// within about 2 ms) with cove.ErrDeadline. A trap, a proc_exit, a nonzero
// batch return, memory exhaustion or an ABI violation ends with a
// *GuestError wrapping cove.ErrGuest (limits: cove.ErrLimit); the instance is
// then closed, the Engine keeps working. Every pointer and length a guest
// passes is checked against its memory; rows against the batch, outputs
// against the manifest, keys against the interned ones, and contributions
// against Config.WithMaxEmits.
//
// A call tree with no loops can still run seconds past the deadline (wazero
// checks the context at loop heads and calls only); runtime/isolate puts a
// process wall around guests (SIGKILL at deadline + grace) behind the same
// Runtime interface.
//
// # Host kernels
//
// Module "cove" also offers kernels (k_filter, k_bucket, k_emit, k_select,
// k_len, k_read) that filter, group and emit natively over the batch's
// Arrow record on the host; runtime/internal/abi implements them.
//
// # No data in errors
//
// Guest errors are safe for operators on real data: they name the failure
// kind, phase, trap kind and limits, never a value a guest chose. Exit codes,
// batch return codes, guest-supplied names and guest stdout/stderr are shown
// only with Config.WithDebugOutput, which is for mock-data runs.
//
// # Concurrency
//
// Engine and Module are safe for concurrent use. An Instance processes one
// batch at a time (its methods serialize); run several instances for
// parallelism. Emission slices are views into guest memory valid only during
// the callback. A GroupInstance runs one RunGroups at a time; its KeyName
// may be called from its sink's methods.
package wasm
