package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/covedata/cove"
)

type op struct {
	fn   string
	args []uint64
}

func ops(fn string, args ...uint64) op { return op{fn, args} }

const testPages = 4 // guest pages of the ops module (declared: 2)

// TestInstrumentOps runs each instruction class on the original ops module
// and on its rewrite: (a) same results and memory, (b) the map marks exactly
// the touched pages, (c) Restore brings the memory back to the snapshot and
// clears the map, (d) stores beyond the guest's memory (the map included) trap.
func TestInstrumentOps(t *testing.T) {
	orig := load(t, "ops")
	mod := instrument(t, orig, testPages)
	rt := newRuntime(t)
	co, ci := compile(t, rt, orig), compile(t, rt, mod.Wasm)
	v := uint64(0x8877665544332211)
	const top = testPages * WasmPageSize
	mapAt := mod.Layout.MapOffset
	for _, c := range []struct {
		name  string
		ops   []op
		pages []int // dirtied 4 KiB pages
		trap  bool
	}{
		{"i32.store", []op{ops("i32.store", 0, 0xdeadbeef)}, []int{0}, false},
		{"i32.store across pages", []op{ops("i32.store", 4094, v)}, []int{0, 1}, false},
		{"i32.store with offset across pages", []op{ops("i32.store_off", 0, v)}, []int{0, 1}, false},
		{"i32.store8 last byte of a page", []op{ops("i32.store8", 8191, v)}, []int{1}, false},
		{"i32.store16 across pages", []op{ops("i32.store16", 12287, v)}, []int{2, 3}, false},
		{"i64.store across pages", []op{ops("i64.store", 4092, v)}, []int{0, 1}, false},
		{"i64.store8 second wasm page", []op{ops("i64.store8", 70000, v)}, []int{17}, false},
		{"i64.store16 across wasm pages", []op{ops("i64.store16", 65535, v)}, []int{15, 16}, false},
		{"i64.store32 last bytes", []op{ops("i64.store32", 2*WasmPageSize-5, v)}, []int{31}, false},
		{"f32.store", []op{ops("f32.store", 100, uint64(math.Float32bits(1.25)))}, []int{0}, false},
		{"f64.store with offset", []op{ops("f64.store", 8184, math.Float64bits(-3.5))}, []int{2}, false},
		{"v128.store across pages", []op{ops("v128.store", 12280, v)}, []int{2, 3}, false},
		{"v128.store8_lane", []op{ops("v128.store8_lane", 5000, v)}, []int{1}, false},
		{"v128.store16_lane across pages", []op{ops("v128.store16_lane", 8191, v)}, []int{1, 2}, false},
		{"v128.store32_lane", []op{ops("v128.store32_lane", 0, v)}, []int{0}, false},
		{"v128.store64_lane across pages", []op{ops("v128.store64_lane", 4090, v)}, []int{0, 1}, false},
		{"memory.fill", []op{ops("memory.fill", 4000, 0xab, 10000)}, []int{0, 1, 2, 3}, false},
		{"memory.fill empty", []op{ops("memory.fill", 5000, 1, 0)}, nil, false},
		{"memory.fill to the end", []op{ops("memory.fill", 2*WasmPageSize-1, 7, 1)}, []int{31}, false},
		{"memory.copy", []op{ops("memory.copy", 20000, 100, 5)}, []int{4}, false},
		{"memory.copy overlapping", []op{ops("memory.copy", 8190, 0, 8194)}, []int{1, 2, 3}, false},
		{"memory.copy empty", []op{ops("memory.copy", 9000, 0, 0)}, nil, false},
		{"loops, blocks, multi-value", []op{ops("nested", 12288)}, []int{1, 2, 3}, false},
		{"grow then store", []op{ops("memory.grow", 1), ops("i32.store", 2*WasmPageSize+8, 5), ops("memory.size")}, []int{32}, false},
		{"data.drop", []op{ops("data.drop"), ops("load", 100)}, nil, false},
		{"globals only", []op{ops("inc"), ops("inc")}, nil, false},
		{"several", []op{ops("i32.store8", 0, 1), ops("f64.store", 40000, 1), ops("memory.fill", 60000, 2, 3)}, []int{0, 9, 14}, false},
		// A store across the guest's end marks its first page (harmless:
		// Restore copies back a clean page) and traps on its last.
		{"store beyond the guest", []op{ops("i32.store", top-3, 1)}, []int{63}, true},
		{"store past the guest", []op{ops("i32.store8", top, 1)}, nil, true},
		{"store into the map", []op{ops("i32.store8", mapAt, 1)}, nil, true},
		{"store to the map's last byte", []op{ops("i32.store8", mapAt+mod.Layout.MapLen-1, 1)}, nil, true},
		{"store across the guest's end", []op{ops("i64.store", top-4, 1)}, []int{63}, true},
		{"store lane across the guest's end", []op{ops("v128.store64_lane", top-1, 1)}, []int{63}, true},
		{"v128.store into the map", []op{ops("v128.store", mapAt, 1)}, nil, true},
		{"store with offset into the map", []op{ops("f64.store", mapAt-8, 1)}, nil, true},
		{"fill the map", []op{ops("memory.fill", mapAt, 1, 4)}, nil, true},
		{"store at the last address", []op{ops("i64.store", math.MaxUint32, 1)}, nil, true},
		{"store with an unreachable offset", []op{ops("far", 0)}, nil, true},
		{"fill into the map", []op{ops("memory.fill", top-10, 1, 20)}, nil, true},
		{"fill at the map", []op{ops("memory.fill", top, 1, 1)}, nil, true},
		{"fill wrapping around", []op{ops("memory.fill", 16, 1, math.MaxUint32)}, nil, true},
		{"copy into the map", []op{ops("memory.copy", top-4, 0, 8)}, nil, true},
		{"copy from the map", []op{ops("memory.copy", 0, top, 8)}, nil, true},
		{"write then trap", []op{ops("i32.store", 300, 1), ops("i32.store", top, 1)}, []int{0}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, in := instantiate(t, rt, co), instantiate(t, rt, ci)
			mem := memory(t, in)
			if uint64(len(mem)) != mod.Layout.MemoryBytes() {
				t.Fatalf("memory of %d bytes, layout says %d", len(mem), mod.Layout.MemoryBytes())
			}
			snap := Take(mem, mod.Layout)
			saved := globals(t, in, mod)
			trapped := false
			for _, p := range c.ops {
				ro, ri := call(t, o, p.fn, p.args...), call(t, in, p.fn, p.args...)
				if ro.String() != ri.String() {
					t.Fatalf("%s%v: original %v, rewritten %v", p.fn, p.args, ro, ri)
				}
				trapped = trapped || ri.trap
			}
			if trapped != c.trap {
				t.Fatalf("trapped %v, want %v", trapped, c.trap)
			}
			// (a) the same memory: the original's, then zeros up to M.
			om := memory(t, o)
			if !bytes.Equal(om, mem[:len(om)]) {
				t.Error("memory differs from the original's")
			}
			if slices.ContainsFunc(mem[len(om):mod.Layout.GuestBytes], func(b byte) bool { return b != 0 }) {
				t.Error("rewritten module wrote beyond the original's memory")
			}
			// (b) the map marks exactly the pages written.
			if got := dirty(mem, mod.Layout); !slices.Equal(got, c.pages) {
				t.Errorf("dirty pages %v, want %v", got, c.pages)
			}
			// (c) Restore copies back exactly those and clears the map.
			if n := Restore(mem, snap, mod.Layout); n != len(c.pages) {
				t.Errorf("restored %d pages, want %d", n, len(c.pages))
			}
			if !bytes.Equal(mem[:mod.Layout.GuestBytes], snap) {
				t.Error("memory after Restore differs from the snapshot")
			}
			if got := dirty(mem, mod.Layout); len(got) != 0 {
				t.Errorf("map after Restore: %v", got)
			}
			setGlobals(t, in, mod, saved)
			if got := globals(t, in, mod); !slices.Equal(got, saved) {
				t.Errorf("globals %v after reset, want %v", got, saved)
			}
		})
	}
}

// TestGlobals: every mutable global is exported under its index, $vs last;
// setting them back makes the guest compute as it did from the snapshot.
func TestGlobals(t *testing.T) {
	mod := instrument(t, load(t, "ops"), testPages)
	want := []Global{
		{Name: "cove$g0", Index: 0, Type: I32},
		{Name: "cove$g1", Index: 1, Type: I64},
		{Name: "cove$g2", Index: 2, Type: F64},
		{Name: "cove$g3", Index: 3, Type: F32},
		{Name: "cove$g5", Index: 5, Type: I32, Size: true},
	}
	if !slices.Equal(mod.Globals, want) {
		t.Fatalf("globals %+v, want %+v", mod.Globals, want)
	}
	rt := newRuntime(t)
	in := instantiate(t, rt, compile(t, rt, mod.Wasm))
	saved := globals(t, in, mod)
	first := call(t, in, "inc").String()
	if second := call(t, in, "inc").String(); second == first {
		t.Fatalf("inc returned %s twice", first)
	}
	setGlobals(t, in, mod, saved)
	if again := call(t, in, "inc").String(); again != first {
		t.Errorf("after reset inc returned %s, want %s", again, first)
	}
}

// TestMemoryGrow: (e) memory.size and memory.grow see the virtual size,
// which stops at M (or the module's maximum), and setting $vs back resets it.
func TestMemoryGrow(t *testing.T) {
	rt := newRuntime(t)
	for _, c := range []struct {
		name     string
		module   string
		pages    uint32
		ops      []op
		want     []int64 // results (−1: failed grow)
		physical uint32  // the memory's fixed pages
	}{
		{"up to M", "ops", 5, []op{
			ops("memory.size"), ops("memory.grow", 1), ops("memory.grow", 0), ops("memory.grow", 2),
			ops("memory.size"), ops("memory.grow", 1), ops("memory.size"),
		}, []int64{2, 2, 3, 3, 5, -1, 5}, 6},
		{"M equals initial", "ops", 2, []op{ops("memory.grow", 1), ops("memory.grow", 0), ops("memory.size")}, []int64{-1, 2, 2}, 3},
		{"huge deltas", "ops", 8, []op{
			ops("memory.grow", math.MaxUint32), ops("memory.grow", 1<<31), ops("memory.grow", 65536), ops("memory.grow", 6),
			ops("memory.grow", math.MaxUint32),
		}, []int64{-1, -1, -1, 2, -1}, 9},
		{"declared maximum below M", "grow_max", 8, []op{
			ops("memory.grow", 3), ops("memory.grow", 2), ops("memory.grow", 1), ops("memory.size"),
		}, []int64{-1, 1, -1, 3}, 9},
	} {
		t.Run(c.name, func(t *testing.T) {
			mod := instrument(t, load(t, c.module), c.pages)
			if mod.Layout.Pages != c.physical {
				t.Errorf("memory of %d pages, want %d", mod.Layout.Pages, c.physical)
			}
			in := instantiate(t, rt, compile(t, rt, mod.Wasm))
			saved := globals(t, in, mod)
			initial := call(t, in, "memory.size")
			for i, p := range c.ops {
				got := call(t, in, p.fn, p.args...)
				if got.trap || int64(int32(got.results[0])) != c.want[i] {
					t.Errorf("%s%v = %v, want %d", p.fn, p.args, got, c.want[i])
				}
			}
			if in.Memory().Size() != c.physical*WasmPageSize {
				t.Errorf("physical memory changed to %d bytes", in.Memory().Size())
			}
			setGlobals(t, in, mod, saved)
			if got := call(t, in, "memory.size"); got.String() != initial.String() {
				t.Errorf("memory.size %v after reset, want %v", got, initial)
			}
		})
	}
}

// TestWalk: the module using every instruction class computes the same.
func TestWalk(t *testing.T) {
	orig := load(t, "walk")
	mod := instrument(t, orig, 1)
	rt := newRuntime(t)
	co, ci := compile(t, rt, orig), compile(t, rt, mod.Wasm)
	for _, x := range []uint64{0, 1, 2, 3, 7, 1 << 31} {
		o, in := instantiate(t, rt, co), instantiate(t, rt, ci)
		ro, ri := call(t, o, "run", x), call(t, in, "run", x)
		if ro.trap || ro.String() != ri.String() {
			t.Errorf("run(%d): original %v, rewritten %v", x, ro, ri)
		}
		if got := dirty(memory(t, in), mod.Layout); !slices.Equal(got, []int{0}) {
			t.Errorf("run(%d) dirtied %v", x, got)
		}
	}
}

// TestRefused: (f) what per-unit and block modes cannot restore is refused
// with an error that names it.
func TestRefused(t *testing.T) {
	for _, c := range []struct {
		module string
		pages  uint32
		want   string
	}{
		{"table_set", 1, "module uses table.set (function 0): per-unit and block modes need immutable tables"},
		{"table_grow", 1, "module uses table.grow (function 0)"},
		{"table_fill", 1, "module uses table.fill (function 0)"},
		{"table_copy", 1, "module uses table.copy (function 0)"},
		{"table_init", 1, "module uses table.init (function 0)"},
		{"elem_drop", 1, "module uses elem.drop (function 0)"},
		{"memory_init", 1, "module uses memory.init (function 1)"},
		{"atomic", 1, "module uses a shared memory"},
		{"atomic_unshared", 1, "module uses atomic instruction 0xfe 16 (function 0)"},
		{"import_memory", 1, "module imports its memory"},
		{"two_memories", 1, "more than one memory"},
		{"memory64", 1, "64-bit memory"},
		{"no_memory", 1, "module defines no memory"},
		{"v128_global", 1, "mutable v128 global (global 0)"},
		{"funcref_global", 1, "mutable reference global (global 0)"},
		{"import_mut_global", 1, "module imports mutable global 0"},
		{"exceptions", 1, "exception handling"},
		{"data_global_offset", 1, "data segment 0 has an offset that is not an i32.const"},
		{"data_beyond", 1, "data segment 0 ends at byte 65537"},
		{"big_initial", 256, "module needs 300 pages of memory at start, more than the 256 pages"},
		{"big_initial", 0, "guest memory of 0 pages is outside 1..65520"},
		{"big_initial", MaxGuestPages + 1, "outside 1..65520"},
		{"reserved_export", 1, `module exports "cove$g0"`},
	} {
		t.Run(c.module, func(t *testing.T) {
			_, err := Instrument(load(t, "refuse/"+c.module), c.pages)
			if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want ErrInvalid with %q", err, c.want)
			}
		})
	}
}

// TestMalformed: bytes that are not a module, or that use opcodes the
// walker does not know, are refused with an error naming the problem.
func TestMalformed(t *testing.T) {
	// A module with one function, memory 1 and body b.
	withBody := func(body ...byte) []byte {
		m := []byte("\x00asm\x01\x00\x00\x00")
		m = appendSection(m, secType, []byte{1, 0x60, 0, 0})
		m = appendSection(m, secFunction, []byte{1, 0})
		m = appendSection(m, secMemory, []byte{1, 0, 1})
		code := append([]byte{0}, body...)
		m = appendSection(m, secCode, append([]byte{1, byte(len(code))}, code...))
		return m
	}
	for _, c := range []struct {
		name string
		bin  []byte
		want string
	}{
		{"empty", nil, "not a WebAssembly binary"},
		{"version 2", []byte("\x00asm\x02\x00\x00\x00"), "unsupported binary version"},
		{"truncated section", []byte("\x00asm\x01\x00\x00\x00\x01\x05\x01"), "unexpected end"},
		{"unknown section", []byte("\x00asm\x01\x00\x00\x00\x0e\x00"), "unknown section 14"},
		{"sections out of order", []byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x00\x01\x01\x01\x00"), "out of order"},
		{"unknown opcode", withBody(0x1d, 0x0b), "unknown opcode 0x1d"},
		{"unknown 0xfc opcode", withBody(0xfc, 18, 0x0b), "unknown opcode 0xfc 18"},
		{"unknown 0xfd opcode", withBody(0xfd, 0x9a, 0x01, 0x0b), "unknown opcode 0xfd 154"},
		{"relaxed simd", withBody(0xfd, 0x80, 0x02, 0x0b), "unknown opcode 0xfd 256"},
		{"gc prefix", withBody(0xfb, 0, 0x0b), "unknown opcode 0xfb"},
		{"try", withBody(0x06, 0x40, 0x0b, 0x0b), "exception-handling instruction 0x6 (function 0)"},
		{"long u32", withBody(0x20, 0x80, 0x80, 0x80, 0x80, 0x10, 0x0b), "u32 out of range"},
		{"long i32.const", withBody(0x41, 0x80, 0x80, 0x80, 0x80, 0x70, 0x1a, 0x0b), "s32 out of range"},
		{"no end", withBody(0x01), "body ends without end"},
		{"after end", withBody(0x0b, 0x01), "bytes after the body's end"},
		{"second memory in a memarg", withBody(0x41, 0, 0x41, 0, 0x36, 0x42, 1, 0, 0x0b), "second memory"},
		{"memory.size of memory 1", withBody(0x3f, 1, 0x1a, 0x0b), "second memory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Instrument(c.bin, 1)
			if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want ErrInvalid with %q", err, c.want)
			}
		})
	}
}

// TestMark: host writes mark the pages they touch, clipped to the guest.
func TestMark(t *testing.T) {
	l, err := NewLayout(2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		off, n uint64
		want   []int
	}{
		{"empty", 100, 0, nil},
		{"one byte", 4095, 1, []int{0}},
		{"across", 4095, 2, []int{0, 1}},
		{"range", 5000, 3 * PageSize, []int{1, 2, 3, 4}},
		{"to the end", 2*WasmPageSize - 1, 1, []int{31}},
		{"beyond the guest", 2*WasmPageSize - 1, 100, []int{31}},
		{"outside", 2 * WasmPageSize, 100, nil},
		{"huge", 0, math.MaxUint64, func() (p []int) {
			for i := range 32 {
				p = append(p, i)
			}
			return p
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := make([]byte, l.MemoryBytes())
			Mark(mem, l, c.off, c.n)
			if got := dirty(mem, l); !slices.Equal(got, c.want) {
				t.Errorf("marked %v, want %v", got, c.want)
			}
		})
	}
}

// TestRestore: Restore copies back exactly the marked pages, whatever their
// pattern in the map's words.
func TestRestore(t *testing.T) {
	l, err := NewLayout(4)
	if err != nil {
		t.Fatal(err)
	}
	snap := make([]byte, l.GuestBytes)
	for i := range snap {
		snap[i] = byte(i*7 + i>>12)
	}
	for _, pages := range [][]int{nil, {0}, {63}, {7, 8}, {0, 1, 2, 3, 4, 5, 6, 7, 8}, {5, 20, 21, 22, 40, 63}, func() (p []int) {
		for i := range 64 {
			p = append(p, i)
		}
		return p
	}()} {
		mem := make([]byte, l.MemoryBytes())
		copy(mem, snap)
		for _, p := range pages {
			clear(mem[p*PageSize : (p+1)*PageSize])
			mem[l.MapOffset+uint64(p)] = 1
		}
		// An unmarked change stays: Restore trusts the map.
		unmarked := !slices.Contains(pages, 10)
		if unmarked {
			mem[PageSize*10+1] ^= 0xff
		}
		if n := Restore(mem, snap, l); n != len(pages) {
			t.Errorf("%v: restored %d pages", pages, n)
		}
		if unmarked {
			if mem[PageSize*10+1] == snap[PageSize*10+1] {
				t.Errorf("%v: an unmarked page was restored", pages)
			}
			mem[PageSize*10+1] ^= 0xff
		}
		if !bytes.Equal(mem[:l.GuestBytes], snap) {
			t.Errorf("%v: memory differs from the snapshot", pages)
		}
		if d := dirty(mem, l); len(d) != 0 {
			t.Errorf("%v: map not cleared: %v", pages, d)
		}
	}
}

// TestLayout pins the layout's arithmetic at the edges.
func TestLayout(t *testing.T) {
	for _, c := range []struct {
		pages     uint32
		total     uint32
		mapLength uint64
	}{
		{1, 2, 16}, {256, 257, 4096}, {4096, 4097, 65536}, {4097, 4099, 65552}, {MaxGuestPages, 65536, 1048320},
	} {
		l, err := NewLayout(c.pages)
		if err != nil {
			t.Fatal(err)
		}
		if l.Pages != c.total || l.MapLen != c.mapLength || l.GuestBytes != uint64(c.pages)*WasmPageSize {
			t.Errorf("NewLayout(%d) = %+v", c.pages, l)
		}
		// The map ends with memory, after the guest's pages; the mark of
		// the first byte past the guest lies past memory.
		if l.MapOffset+l.MapLen != l.MemoryBytes() || l.MapOffset < l.GuestBytes || l.MapOffset+l.GuestBytes>>pageShift != l.MemoryBytes() {
			t.Errorf("NewLayout(%d): map at %d", c.pages, l.MapOffset)
		}
	}
}

// TestInstrumentConcurrent: Instrument is deterministic and safe for
// concurrent use (run with -race).
func TestInstrumentConcurrent(t *testing.T) {
	bin := load(t, "walk")
	want := instrument(t, bin, 4).Wasm
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				m, err := Instrument(bin, 4)
				if err != nil || !bytes.Equal(m.Wasm, want) {
					errs <- fmt.Errorf("different rewrite (%v)", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
