// Package snapshot makes a guest module restorable: it rewrites the
// module's binary once so that every write to linear memory is bounds-checked
// and recorded in a dirty map, and it restores the guest's whole state to a
// snapshot at a cost proportional to what the guest dirtied. Per-unit and
// block modes (docs/privacy.md) restore before every privacy unit or block,
// so that nothing a unit's rows caused can reach the next unit.
//
// The package is engine-neutral: it works on module bytes and on linear
// memory as a []byte; runtime/wasm binds it to wazero.
//
// # API
//
//	m, err := snapshot.Instrument(wasm, guestPages) // once per (module, M); errors wrap cove.ErrInvalid
//	// compile and instantiate m.Wasm; run _initialize, cove_abi_version, cove_features
//	snap := snapshot.Take(mem, m.Layout)            // copy of mem[:GuestBytes]; clears the map
//	// save every m.Globals[i] (exported as m.Globals[i].Name), $vs included
//	// per unit: host writes → snapshot.Mark(mem, m.Layout, off, n); call the guest; then
//	pages := snapshot.Restore(mem, snap, m.Layout)  // copies back dirty pages, clears the map
//	// set every saved global back
//
// mem is the instance's whole linear memory (m.Layout.Pages pages; it never
// grows, so the slice stays valid). Host calls must see only
// mem[:m.Layout.GuestBytes], so that no host write reaches the map, and
// every host function that writes guest memory (the ABI's, WASI's) must
// Mark what it writes. Instrument does not fully validate a module: compile
// the original with the engine first.
//
// # The rewrite
//
// For a guest of M pages (the caller's choice, at least the module's
// declared initial) Instrument changes the module thus, and nothing else:
// function indices, export names and the code of every instruction not
// listed stay as they are.
//
//   - Memory. The one defined memory (an imported memory is refused) gets
//     initial = maximum = M + mapPages, where the map holds one byte per
//     4 KiB page of the guest's M pages (M·16 bytes) and ends where memory
//     ends (Layout.MapOffset; padding lies between the guest's pages and
//     the map). Physical memory never grows, so the host's view of it never
//     moves.
//   - Memory size. A mutable i32 global $vs, starting at the declared
//     initial pages, is the size the guest sees: memory.size reads it;
//     memory.grow n adds n when $vs + n stays within M (and the module's
//     declared maximum), returning the old size, and returns −1 otherwise.
//   - Stores. Every store (scalar, narrow, v128, store-lane) saves its
//     operands in added locals, sets the map bytes of the first and the last
//     4 KiB page it touches (a byte store at MapOffset + ea>>12), and then
//     stores. The marks are the bounds check too: since the map ends with
//     memory, the mark of any byte at or beyond M·65536 lies beyond memory,
//     so a store reaching past the guest's pages traps on its last mark
//     before it writes anything (having perhaps marked its first page,
//     which only costs Restore a clean copy). A store whose offset alone
//     passes M·65536 becomes unreachable.
//   - Bulk memory. memory.fill and memory.copy call helper functions appended
//     to the module, which check the ranges against M, mark every page of
//     the destination range (a memory.fill on the map) and then perform the
//     instruction. data.drop becomes nop.
//   - Refused. memory.init, table.set, table.grow, table.fill, table.copy,
//     table.init, elem.drop, atomics, exception handling, shared or 64-bit
//     memories, more than one memory, imported mutable globals, mutable
//     v128 or reference globals, and any opcode this package does not know,
//     each with an error naming it and the function.
//   - Globals. Every mutable global and $vs is exported as
//     cove$g<index> so that the host can save and set it.
//   - Data segments. Active segments must have constant offsets and lie
//     within the declared initial memory: in the larger rewritten memory a
//     segment beyond it would be written where the original module fails to
//     instantiate.
//
// Custom sections other than "name" are dropped: debugging information
// points at code offsets that the rewrite moves.
//
// # Why each piece is needed
//
// A guest must never be able to leave anything to the next unit. Its state
// is its linear memory, its globals, its memory size and its tables.
//
//   - Memory: any page the guest wrote and the host did not copy back
//     would carry data across units. The only ways to write memory are
//     stores, memory.fill, memory.copy and memory.init (refused), and the
//     host's own writes (marked by the host with Mark). Each marks every page
//     it writes, so Restore finds every changed page. Marking the first and
//     last page suffices for a store: a store touches at most 16 bytes, so
//     at most two 4 KiB pages.
//   - The map itself: a guest that could write the map could clear the
//     marks of the pages it wrote. A store past the guest's pages traps on
//     its own mark and bulk destinations are checked against M·65536, so the
//     map (and the padding before it) is out of the guest's reach; loads may
//     read it, but it holds only marks of the current unit (Restore clears
//     it). Host calls see only the guest's pages.
//   - Memory size: the grown size is state too (a unit could signal one bit
//     by growing). It lives in $vs, which the host restores like any global;
//     physical memory does not change size at all.
//   - Globals: a mutable global a module does not export could carry a
//     value across units; exporting all of them lets the host set each back.
//   - Tables: table contents are state that the host cannot read back
//     cheaply; the instructions that change them are refused, so tables stay
//     as instantiation left them. Whether a passive segment was dropped is
//     state too: table.init and elem.drop are refused with the tables, and
//     memory.init is refused, after which no one can observe a data.drop,
//     so it becomes a no-op.
//   - Traps: a unit that traps half-way has marked every page before writing
//     it, so Restore undoes whatever it managed to write.
//
// Between $vs and M the guest's loads and stores do not trap as they would
// in the original module; they reach ordinary guest pages, marked and
// restored like any other, so this changes no isolation property. Loads
// past M do not trap either (they read padding or the map) as long as they
// stay within physical memory.
//
// # Cost
//
// A store becomes about a dozen instructions (two local sets, two byte
// stores into the map with their address arithmetic; one mark for a byte
// store); memory.grow and memory.size a few. Restore scans the map 32
// bytes at a time (128 strides for 16 MiB) and copies 4 KiB per dirty page,
// a run of dirty pages at once. BenchmarkRestore, BenchmarkUnit and
// BenchmarkStoreLoop measure both.
//
// # Concurrency
//
// Instrument is safe for concurrent use. Restore, Mark and Take work on the
// memory they are given; an instance's memory must not be used by a guest
// call while they run.
package snapshot
