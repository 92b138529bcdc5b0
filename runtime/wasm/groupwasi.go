package wasm

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/covedata/cove/runtime/internal/abi"
)

// The WASI of per-unit and block instances. wazero's own keeps state a
// guest can see (fd_close of stdout makes later fd_fdstat_get fail; the
// fake clock and random source advance for the instance's life) and writes
// into the whole of guest memory, dirty map included, without marking what
// it writes. A unit could pass bits to the next through either. This one
// offers the same functions (abi.WASIAllowed) over the same sandbox (no
// arguments, environment, files, preopens; stdout and stderr discarded but
// on mock runs), keeps no state but a clock and a random source that
// restart for every group, sees only the guest's first MemLimit bytes and
// tells the state's OnWrite of every write.

// WASI errno values (wasi_snapshot_preview1).
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoNosys   = 52
	errnoNotsup  = 58
)

// The fake clocks' start, as wazero's: 2022-01-01T00:00:00Z for the wall
// clock, 0 for the monotonic one; each reading advances them 1 ms.
const (
	fakeEpochNanos = 1640995200000 * 1e6
	clockStep      = 1e6
)

// Rights of a character device (stdio), as wazero reports them: read,
// write, datasync, fdstat_set_flags, sync, advise, allocate,
// filestat_get/set_size/set_times, poll_fd_readwrite.
const stdioRights = 1<<0 | 1<<1 | 1<<3 | 1<<4 | 1<<6 | 1<<7 | 1<<8 | 1<<21 | 1<<22 | 1<<23 | 1<<27

// groupEnv is what a group instance's WASI sees: its state (memory limit,
// write hook), its debug writer (nil: discard) and its clocks and random
// source, reset before every group.
type groupEnv struct {
	st    *abi.State
	debug io.Writer

	wall, mono int64 // readings so far
	rng        *rand.ChaCha8
	rngUsed    bool
}

// groupSeed seeds the random source: fixed, so every group sees the same
// bytes (random_get is never crypto randomness, in any mode).
var groupSeed = [32]byte{'c', 'o', 'v', 'e', ' ', 'g', 'r', 'o', 'u', 'p', 's'}

func newGroupEnv(st *abi.State, debug io.Writer) *groupEnv {
	return &groupEnv{st: st, debug: debug, rng: rand.NewChaCha8(groupSeed)}
}

// reset restarts the clocks and the random source.
func (v *groupEnv) reset() {
	v.wall, v.mono = 0, 0
	if v.rngUsed {
		v.rng.Seed(groupSeed)
		v.rngUsed = false
	}
}

type groupEnvKey struct{}

func envOf(ctx context.Context) *groupEnv {
	v, _ := ctx.Value(groupEnvKey{}).(*groupEnv)
	if v == nil {
		panic(errHostCall) // cannot happen for our instances
	}
	return v
}

// bytes is guest memory [off,+n) within the limit, or false.
func (v *groupEnv) bytes(m api.Module, off, n uint32) ([]byte, bool) {
	mem := memFor(m, v.st)
	end := uint64(off) + uint64(n)
	if end > uint64(len(mem)) {
		return nil, false
	}
	return mem[off:end:end], true
}

// out is bytes for a write: the pages it touches are marked first.
func (v *groupEnv) out(m api.Module, off, n uint32) ([]byte, bool) {
	b, ok := v.bytes(m, off, n)
	if ok && n > 0 && v.st.OnWrite != nil {
		v.st.OnWrite(off, n)
	}
	return b, ok
}

func (v *groupEnv) putU32(m api.Module, off, x uint32) bool {
	b, ok := v.out(m, off, 4)
	if ok {
		binary.LittleEndian.PutUint32(b, x)
	}
	return ok
}

// defineGroupWASI defines wasi_snapshot_preview1 in rt (a runtime of group
// instances only).
func defineGroupWASI(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.WASIModule)
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	def := func(name string, params []api.ValueType, results []api.ValueType, fn api.GoModuleFunc) {
		b.NewFunctionBuilder().WithGoModuleFunction(fn, params, results).Export(name)
	}
	ii := []api.ValueType{i32, i32}
	r := []api.ValueType{i32}
	errno := func(stack []uint64, e uint32) { stack[0] = uint64(e) }
	// No arguments, no environment.
	for _, name := range []string{"args_get", "environ_get"} {
		def(name, ii, r, func(ctx context.Context, m api.Module, stack []uint64) { errno(stack, errnoSuccess) })
	}
	for _, name := range []string{"args_sizes_get", "environ_sizes_get"} {
		def(name, ii, r, func(ctx context.Context, m api.Module, stack []uint64) {
			v := envOf(ctx)
			if !v.putU32(m, uint32(stack[0]), 0) || !v.putU32(m, uint32(stack[1]), 0) {
				errno(stack, errnoFault)
				return
			}
			errno(stack, errnoSuccess)
		})
	}
	def("clock_time_get", []api.ValueType{i32, i64, i32}, r, func(ctx context.Context, m api.Module, stack []uint64) {
		v := envOf(ctx)
		var t int64
		switch uint32(stack[0]) {
		case 0: // realtime
			t = fakeEpochNanos + v.wall*clockStep
			v.wall++
		case 1: // monotonic
			t = v.mono * clockStep
			v.mono++
		default:
			errno(stack, errnoInval)
			return
		}
		b, ok := v.out(m, uint32(stack[2]), 8)
		if !ok {
			errno(stack, errnoFault)
			return
		}
		binary.LittleEndian.PutUint64(b, uint64(t))
		errno(stack, errnoSuccess)
	})
	def("random_get", ii, r, func(ctx context.Context, m api.Module, stack []uint64) {
		v := envOf(ctx)
		b, ok := v.out(m, uint32(stack[0]), uint32(stack[1]))
		if !ok {
			errno(stack, errnoFault)
			return
		}
		v.rngUsed = true
		_, _ = v.rng.Read(b)
		errno(stack, errnoSuccess)
	})
	def("poll_oneoff", []api.ValueType{i32, i32, i32, i32}, r, func(ctx context.Context, m api.Module, stack []uint64) {
		errno(stack, pollOneoff(envOf(ctx), m, uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])))
	})
	def("sched_yield", nil, r, func(ctx context.Context, m api.Module, stack []uint64) { errno(stack, errnoSuccess) })
	def("proc_exit", []api.ValueType{i32}, nil, func(ctx context.Context, m api.Module, stack []uint64) {
		code := uint32(stack[0])
		_ = m.CloseWithExitCode(ctx, code)
		panic(sys.NewExitError(code))
	})
	def("fd_write", []api.ValueType{i32, i32, i32, i32}, r, func(ctx context.Context, m api.Module, stack []uint64) {
		errno(stack, fdWrite(envOf(ctx), m, uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])))
	})
	// stdio (0, 1, 2) is all there is; closing it changes nothing, so that
	// no unit can leave a closed descriptor to the next.
	stdio := func(fd uint64) bool { return uint32(fd) <= 2 }
	def("fd_close", []api.ValueType{i32}, r, func(ctx context.Context, m api.Module, stack []uint64) {
		if !stdio(stack[0]) {
			errno(stack, errnoBadf)
			return
		}
		errno(stack, errnoSuccess)
	})
	def("fd_fdstat_get", ii, r, func(ctx context.Context, m api.Module, stack []uint64) {
		if !stdio(stack[0]) {
			errno(stack, errnoBadf)
			return
		}
		b, ok := envOf(ctx).out(m, uint32(stack[1]), 24)
		if !ok {
			errno(stack, errnoFault)
			return
		}
		clear(b)
		b[0] = 2 // character device
		binary.LittleEndian.PutUint64(b[8:], stdioRights)
		errno(stack, errnoSuccess)
	})
	def("fd_fdstat_set_flags", ii, r, func(ctx context.Context, m api.Module, stack []uint64) {
		const dsync, nonblock, rsync, sync = 1 << 1, 1 << 2, 1 << 3, 1 << 4
		flags := uint32(stack[1])
		switch {
		case flags&(dsync|rsync|sync) != 0:
			errno(stack, errnoInval)
		case !stdio(stack[0]):
			errno(stack, errnoBadf)
		case flags&nonblock != 0:
			errno(stack, errnoNosys)
		default:
			errno(stack, errnoSuccess) // append on a device: nothing to do
		}
	})
	// No preopened directories.
	def("fd_prestat_get", ii, r, func(ctx context.Context, m api.Module, stack []uint64) { errno(stack, errnoBadf) })
	def("fd_prestat_dir_name", []api.ValueType{i32, i32, i32}, r, func(ctx context.Context, m api.Module, stack []uint64) {
		errno(stack, errnoBadf)
	})
	_, err := b.Instantiate(ctx)
	return err
}

// fdWrite writes to stdout or stderr: the debug writer on mock runs, else
// nowhere; every byte counts as written.
func fdWrite(v *groupEnv, m api.Module, fd, iovs, n, nwritten uint32) uint32 {
	if fd != 1 && fd != 2 {
		return errnoBadf
	}
	if uint64(n)*48 >= 1<<32 {
		return errnoFault
	}
	vec, ok := v.bytes(m, iovs, 8*n)
	if !ok {
		return errnoFault
	}
	var total uint32
	for k := range n {
		p, l := binary.LittleEndian.Uint32(vec[8*k:]), binary.LittleEndian.Uint32(vec[8*k+4:])
		b, ok := v.bytes(m, p, l)
		if !ok {
			return errnoFault
		}
		if v.debug != nil {
			_, _ = v.debug.Write(b)
		}
		total += l
	}
	if !v.putU32(m, nwritten, total) {
		return errnoFault
	}
	return errnoSuccess
}

// pollOneoff answers every subscription at once, as wazero does with its
// fake sleep: clocks expire, stdin reads are ready (at its end), writes
// are not supported, other descriptors are bad.
func pollOneoff(v *groupEnv, m api.Module, in, out, n, nevents uint32) uint32 {
	if n == 0 {
		return errnoInval
	}
	if uint64(n)*48 >= 1<<32 {
		return errnoFault
	}
	subs, ok := v.bytes(m, in, 48*n)
	if !ok {
		return errnoFault
	}
	if _, ok := v.bytes(m, out, 32*n); !ok {
		return errnoFault
	}
	if _, ok := v.bytes(m, nevents, 4); !ok {
		return errnoFault
	}
	// Read every subscription before writing: out may overlap in.
	type event struct {
		user  uint64
		typ   byte
		errno uint16
	}
	evs := make([]event, n)
	for k := range n {
		s := subs[48*k : 48*(k+1)]
		e := event{user: binary.LittleEndian.Uint64(s), typ: s[8]}
		switch e.typ {
		case 0: // clock
			if id := binary.LittleEndian.Uint32(s[16:]); id > 1 {
				return errnoInval
			}
		case 1, 2: // fd_read, fd_write
			switch fd := binary.LittleEndian.Uint32(s[16:]); {
			case int32(fd) < 0:
				return errnoBadf
			case fd > 2:
				e.errno = errnoBadf
			case e.typ == 2:
				e.errno = errnoNotsup
			}
		default:
			return errnoInval
		}
		evs[k] = e
	}
	b, _ := v.out(m, out, 32*n)
	clear(b)
	for k, e := range evs {
		w := b[32*k:]
		binary.LittleEndian.PutUint64(w, e.user)
		binary.LittleEndian.PutUint16(w[8:], e.errno)
		w[10] = e.typ
	}
	v.putU32(m, nevents, n)
	return errnoSuccess
}
