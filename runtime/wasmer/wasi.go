//go:build wasmer

package wasmer

import (
	"encoding/binary"
	"io"
	"math/rand"

	wasmer "github.com/wasmerio/wasmer-go/wasmer"
)

// The sandboxed WASI subset (abi.WASIAllowed), with the semantics of the
// wazero engine's: no arguments or environment, no preopens, a fake clock
// (wall time from 2022-01-01 and monotonic time from 0, each read 1 ms
// later than the one before), sleeps that return at once, random bytes from
// a fixed seed, stdout and stderr discarded unless debug output is on.

// WASI errno values used here.
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoNotsup  = 58
)

// fakeEpochNanos is midnight UTC 2022-01-01, wazero's fake wall clock start.
const fakeEpochNanos = 1640995200000 * 1_000_000

// randSeed is wazero's fake random seed, so both engines give a guest the
// same bytes.
const randSeed = 42

type wasiSig struct{ params, results []wasmer.ValueKind }

var (
	i32 = wasmer.I32
	i64 = wasmer.I64
)

// wasiSigs are the types of the WASI functions the host provides.
var wasiSigs = map[string]wasiSig{
	"args_get":            {[]wasmer.ValueKind{i32, i32}, []wasmer.ValueKind{i32}},
	"args_sizes_get":      {[]wasmer.ValueKind{i32, i32}, []wasmer.ValueKind{i32}},
	"environ_get":         {[]wasmer.ValueKind{i32, i32}, []wasmer.ValueKind{i32}},
	"environ_sizes_get":   {[]wasmer.ValueKind{i32, i32}, []wasmer.ValueKind{i32}},
	"clock_time_get":      {[]wasmer.ValueKind{i32, i64, i32}, []wasmer.ValueKind{i32}},
	"random_get":          {[]wasmer.ValueKind{i32, i32}, []wasmer.ValueKind{i32}},
	"poll_oneoff":         {[]wasmer.ValueKind{i32, i32, i32, i32}, []wasmer.ValueKind{i32}},
	"sched_yield":         {nil, []wasmer.ValueKind{i32}},
	"proc_exit":           {[]wasmer.ValueKind{i32}, nil},
	"fd_write":            {[]wasmer.ValueKind{i32, i32, i32, i32}, []wasmer.ValueKind{i32}},
	"fd_close":            {[]wasmer.ValueKind{i32}, []wasmer.ValueKind{i32}},
	"fd_fdstat_get":       {[]wasmer.ValueKind{i32, i32}, []wasmer.ValueKind{i32}},
	"fd_fdstat_set_flags": {[]wasmer.ValueKind{i32, i32}, []wasmer.ValueKind{i32}},
	"fd_prestat_get":      {[]wasmer.ValueKind{i32, i32}, []wasmer.ValueKind{i32}},
	"fd_prestat_dir_name": {[]wasmer.ValueKind{i32, i32, i32}, []wasmer.ValueKind{i32}},
}

// wasiState is one instance's clocks, random source and output budget.
type wasiState struct {
	wall, mono int64
	rand       *rand.Rand
	out        io.Writer // nil: discard
	left       int
	e          *Engine
}

func newWASIState(e *Engine, budget int) wasiState {
	return wasiState{wall: fakeEpochNanos - 1e6, mono: -1e6, rand: rand.New(rand.NewSource(randSeed)), out: e.debug, left: budget, e: e}
}

// region returns mem[ptr:ptr+n] or false when it is outside memory.
func region(mem []byte, ptr, n uint32) ([]byte, bool) {
	end := uint64(ptr) + uint64(n)
	if end > uint64(len(mem)) {
		return nil, false
	}
	return mem[ptr:end:end], true
}

func putU32(mem []byte, ptr, v uint32) bool {
	b, ok := region(mem, ptr, 4)
	if ok {
		binary.LittleEndian.PutUint32(b, v)
	}
	return ok
}

func errno(e uint32) ([]uint64, error) { return []uint64{uint64(e)}, nil }

func (i *instance) wasiFuncs() map[string]hostFunc {
	w := &i.wasi
	u := func(v uint64) uint32 { return uint32(v) }
	zeroSizes := func(a []uint64) ([]uint64, error) {
		mem := i.memory()
		if !putU32(mem, u(a[0]), 0) || !putU32(mem, u(a[1]), 0) {
			return errno(errnoFault)
		}
		return errno(errnoSuccess)
	}
	nothing := func(a []uint64) ([]uint64, error) { return errno(errnoSuccess) }
	stdio := func(fd uint32) bool { return fd <= 2 }
	return map[string]hostFunc{
		"args_sizes_get":    zeroSizes,
		"environ_sizes_get": zeroSizes,
		"args_get":          nothing,
		"environ_get":       nothing,
		"sched_yield":       nothing,
		"clock_time_get": func(a []uint64) ([]uint64, error) {
			var v int64
			switch u(a[0]) {
			case 0: // realtime
				w.wall += 1e6
				v = w.wall
			case 1: // monotonic
				w.mono += 1e6
				v = w.mono
			default:
				return errno(errnoInval)
			}
			b, ok := region(i.memory(), u(a[2]), 8)
			if !ok {
				return errno(errnoFault)
			}
			binary.LittleEndian.PutUint64(b, uint64(v))
			return errno(errnoSuccess)
		},
		"random_get": func(a []uint64) ([]uint64, error) {
			b, ok := region(i.memory(), u(a[0]), u(a[1]))
			if !ok {
				return errno(errnoFault)
			}
			_, _ = io.ReadFull(w.rand, b)
			return errno(errnoSuccess)
		},
		"poll_oneoff": func(a []uint64) ([]uint64, error) {
			// Clock subscriptions fire at once (the fake clock does not
			// sleep); there are no pollable descriptors.
			in, out, n := u(a[0]), u(a[1]), u(a[2])
			if n == 0 {
				return errno(errnoInval)
			}
			mem := i.memory()
			subs, ok1 := region(mem, in, 48*n)
			events, ok2 := region(mem, out, 32*n)
			if !ok1 || !ok2 || !putU32(mem, u(a[3]), n) {
				return errno(errnoFault)
			}
			for k := range n {
				s, ev := subs[48*k:48*k+48], events[32*k:32*k+32]
				clear(ev)
				copy(ev[0:8], s[0:8]) // userdata
				tag := s[8]
				ev[10] = tag
				if tag != 0 {
					binary.LittleEndian.PutUint16(ev[8:], errnoNotsup)
				}
			}
			return errno(errnoSuccess)
		},
		"proc_exit": func(a []uint64) ([]uint64, error) {
			code := int32(u(a[0]))
			i.exit = &code
			return nil, errExit
		},
		"fd_write": func(a []uint64) ([]uint64, error) {
			fd, iovs, n := u(a[0]), u(a[1]), u(a[2])
			if fd != 1 && fd != 2 {
				return errno(errnoBadf)
			}
			mem := i.memory()
			vec, ok := region(mem, iovs, 8*n)
			if !ok || n > 1<<20 {
				return errno(errnoFault)
			}
			var total uint32
			for k := range n {
				p, l := binary.LittleEndian.Uint32(vec[8*k:]), binary.LittleEndian.Uint32(vec[8*k+4:])
				b, ok := region(mem, p, l)
				if !ok {
					return errno(errnoFault)
				}
				w.write(b)
				total += l
			}
			if !putU32(mem, u(a[3]), total) {
				return errno(errnoFault)
			}
			return errno(errnoSuccess)
		},
		"fd_close": func(a []uint64) ([]uint64, error) {
			if stdio(u(a[0])) {
				return errno(errnoSuccess)
			}
			return errno(errnoBadf)
		},
		"fd_fdstat_get": func(a []uint64) ([]uint64, error) {
			if !stdio(u(a[0])) {
				return errno(errnoBadf)
			}
			b, ok := region(i.memory(), u(a[1]), 24)
			if !ok {
				return errno(errnoFault)
			}
			clear(b)
			b[0] = 2 // character device, blocking, no rights to seek or tell
			const rights = 1<<0 | 1<<1 | 1<<3 | 1<<4 | 1<<6 | 1<<7 | 1<<8 | 1<<21 | 1<<22 | 1<<23 | 1<<27
			binary.LittleEndian.PutUint64(b[8:], rights)
			return errno(errnoSuccess)
		},
		"fd_fdstat_set_flags": func(a []uint64) ([]uint64, error) {
			if !stdio(u(a[0])) {
				return errno(errnoBadf)
			}
			return errno(errnoSuccess)
		},
		// No preopens: the guest's scan for them ends at the first fd.
		"fd_prestat_get":      func(a []uint64) ([]uint64, error) { return errno(errnoBadf) },
		"fd_prestat_dir_name": func(a []uint64) ([]uint64, error) { return errno(errnoBadf) },
	}
}

// write forwards guest output to the debug writer, up to the budget.
func (w *wasiState) write(p []byte) {
	if w.out == nil || w.left <= 0 {
		return
	}
	n := len(p)
	if n > w.left {
		p = append(p[:w.left:w.left], "\n[guest output truncated]\n"...)
	}
	w.left -= n
	w.e.debugMu.Lock()
	defer w.e.debugMu.Unlock()
	_, _ = w.out.Write(p)
}
