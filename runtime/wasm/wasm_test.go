package wasm_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/wasm"
)

// contribution is a copy of one emitted contribution, with its key resolved.
type contribution struct {
	out, row int
	key      string
	value    float64
}

func run(t testing.TB, inst wasm.Instance, ctx context.Context, rec interface {
	NumRows() int64
}, process func(func(wasm.Emission) error) error) ([]contribution, error) {
	t.Helper()
	var got []contribution
	err := process(func(em wasm.Emission) error {
		for j := range em.Rows {
			got = append(got, contribution{em.Output, int(em.Rows[j]), inst.KeyName(em.Keys[j]), em.Values[j]})
		}
		return nil
	})
	return got, err
}

func TestGoodGuestAllTypes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := newEngine(t, testConfig())
	m := compile(t, e, guest(t, "good"))
	ctx := context.Background()

	valid := []bool{true, true, false, true, true, false, true, true, true, true, true}
	n := len(valid)
	i64, i32s, f64, strs, bools := make([]int64, n), make([]int32, n), make([]float64, n), make([]string, n), make([]bool, n)
	for r := range n {
		i64[r] = int64(r)*1_000_000_007 - 3
		i32s[r] = int32(-r * 7)
		f64[r] = float64(r) + 0.25
		strs[r] = strings.Repeat("é", r%4) + fmt.Sprint(r%3)
		bools[r] = r%3 == 0
	}
	full := record(t, mem,
		col{"i64", i64, valid}, col{"i32", i32s, valid}, col{"f64", f64, valid},
		col{"s", strs, valid}, col{"b", bools, nil})
	defer full.Release()

	tests := []struct {
		name     string
		from, to int64 // a slice of the record: non-zero offsets exercise bit copies
	}{
		{"whole", 0, int64(n)},
		{"offset slice", 3, int64(n) - 1},
		{"empty", 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := m.Instantiate(ctx, []string{"sum", "count"})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			rec := full.NewSlice(tt.from, tt.to)
			defer rec.Release()
			calls := 0
			got, err := run(t, inst, ctx, rec, func(emit func(wasm.Emission) error) error {
				return inst.ProcessBatch(ctx, rec, func(em wasm.Emission) error { calls++; return emit(em) })
			})
			if err != nil {
				t.Fatal(err)
			}
			var want []contribution
			for r := int(tt.from); r < int(tt.to); r++ {
				row := r - int(tt.from)
				if valid[r] {
					want = append(want,
						contribution{0, row, "i64", float64(i64[r])},
						contribution{0, row, "i32", float64(i32s[r])},
						contribution{0, row, "f64", f64[r]},
						contribution{1, row, "s\x1f" + strs[r], 1})
				}
				want = append(want, contribution{1, row, fmt.Sprintf("b\x1f%t", bools[r]), 1})
				if !valid[r] {
					for _, c := range []string{"i64", "i32", "f64", "s"} {
						want = append(want, contribution{1, row, "null\x1f" + c, 1})
					}
				}
			}
			sortC(got)
			sortC(want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("contributions:\n got %v\nwant %v", got, want)
			}
			if tt.to > tt.from && calls != 2 {
				t.Errorf("%d emit calls, want one per output (2)", calls)
			}
		})
	}
}

func sortC(c []contribution) {
	sort.Slice(c, func(i, j int) bool { return fmt.Sprint(c[i]) < fmt.Sprint(c[j]) })
}

// checkGood shows the engine still runs a good guest.
func checkGood(t *testing.T, e wasm.Runtime) {
	t.Helper()
	ctx := context.Background()
	inst, err := compile(t, e, guest(t, "good")).Instantiate(ctx, []string{"sum", "count"})
	if err != nil {
		t.Fatalf("good guest after a hostile one: %v", err)
	}
	defer inst.Close(ctx)
	mem := memory.NewGoAllocator()
	rec := record(t, mem, col{"i64", []int64{1}, nil}, col{"i32", []int32{2}, nil}, col{"f64", []float64{3}, nil},
		col{"s", []string{"x"}, nil}, col{"b", []bool{true}, nil})
	defer rec.Release()
	n := 0
	if err := inst.ProcessBatch(ctx, rec, func(em wasm.Emission) error { n += len(em.Rows); return nil }); err != nil || n != 5 {
		t.Fatalf("good guest after a hostile one: %d contributions, %v", n, err)
	}
}

const secret = 424242

func TestHostileGoGuest(t *testing.T) {
	tests := []struct {
		name     string
		mode     int64
		kind     wasm.Kind
		sentinel error
		want     string // in the message
		timeout  time.Duration
	}{
		{"behaves", 0, "", nil, "", time.Second},
		{"infinite loop", 1, wasm.KindDeadline, cove.ErrDeadline, "deadline", 200 * time.Millisecond},
		{"nil dereference", 2, wasm.KindFailed, cove.ErrGuest, "guest reported an error", 5 * time.Second},
		{"panic with data", 3, wasm.KindFailed, cove.ErrGuest, "guest reported an error", 5 * time.Second},
		{"row out of range", 5, wasm.KindABI, cove.ErrGuest, "row 3 of a 3-row batch", 5 * time.Second},
		{"too many emits", 6, wasm.KindLimit, cove.ErrLimit, "more than 10000 contributions", 5 * time.Second},
		{"print and exit", 7, wasm.KindExit, cove.ErrGuest, "guest exited", 5 * time.Second},
		{"undeclared output", 8, wasm.KindABI, cove.ErrGuest, "output its manifest does not declare", 5 * time.Second},
		{"key outside memory", 9, wasm.KindABI, cove.ErrGuest, "outside guest memory", 5 * time.Second},
		{"handler error with data", 10, wasm.KindFailed, cove.ErrGuest, "guest reported an error", 5 * time.Second},
		{"exit 0 in a batch", 12, wasm.KindExit, cove.ErrGuest, "guest exited", 5 * time.Second},
		{"unknown key id", 13, wasm.KindABI, cove.ErrGuest, "key id 1073741824", 5 * time.Second},
		{"unknown output id", 14, wasm.KindABI, cove.ErrGuest, "output id 7", 5 * time.Second},
		{"unbounded recursion", 11, wasm.KindTrap, cove.ErrGuest, "guest trapped", 30 * time.Second}, // Go grows its stack to 1 GiB first: seconds under -race
		{"oversized key", 15, wasm.KindLimit, cove.ErrLimit, "key of 1048576 bytes", 5 * time.Second},
	}
	e := newEngine(t, testConfig())
	m := compile(t, e, guest(t, "hostile"))
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			inst, err := m.Instantiate(ctx, []string{"out"})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(context.Background())
			rec := hostileRecord(t, mem, tt.mode, secret)
			defer rec.Release()
			err = inst.ProcessBatch(ctx, rec, func(wasm.Emission) error { return nil })
			if tt.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkGuestError(t, err, tt.kind, tt.sentinel, tt.want)
			// The instance is done; the engine is not.
			if err2 := inst.ProcessBatch(context.Background(), rec, func(wasm.Emission) error { return nil }); !errors.Is(err2, cove.ErrGuest) {
				t.Errorf("second batch after a failure: %v", err2)
			}
			checkGood(t, e)
		})
	}
}

func checkGuestError(t *testing.T, err error, kind wasm.Kind, sentinel error, want string) {
	t.Helper()
	var ge *wasm.GuestError
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v (%T), want a *wasm.GuestError", err, err)
	}
	if ge.Kind != kind || !errors.Is(err, sentinel) || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q (kind %s), want kind %s wrapping %v containing %q", err, ge.Kind, kind, sentinel, want)
	}
	if strings.Contains(err.Error(), fmt.Sprint(secret)) {
		t.Errorf("error leaks the data: %q", err)
	}
}

func TestDebugOutput(t *testing.T) {
	var out lockedBuffer
	e := newEngine(t, testConfig().WithDebugOutput(&out))
	m := compile(t, e, guest(t, "hostile"))
	mem := memory.NewGoAllocator()
	ctx := context.Background()
	for _, tt := range []struct {
		mode         int64
		inErr, inOut string
	}{
		{7, fmt.Sprintf("guest exited with code %d", secret), fmt.Sprintf("stdout secret %d\nstderr secret %d", secret, secret)},
		{3, "guest reported an error (code 1)", fmt.Sprintf("panic: secret %d", secret)},
		{8, fmt.Sprintf(`output "leak%d"`, secret), ""},
	} {
		inst, err := m.Instantiate(ctx, []string{"out"})
		if err != nil {
			t.Fatal(err)
		}
		rec := hostileRecord(t, mem, tt.mode, secret)
		err = inst.ProcessBatch(ctx, rec, func(wasm.Emission) error { return nil })
		rec.Release()
		_ = inst.Close(ctx)
		if err == nil || !strings.Contains(err.Error(), tt.inErr) {
			t.Errorf("mode %d: err = %v, want it to contain %q (debug on)", tt.mode, err, tt.inErr)
		}
		if !strings.Contains(out.String(), tt.inOut) {
			t.Errorf("mode %d: debug output %q lacks %q", tt.mode, out.String(), tt.inOut)
		}
	}
}

// TestDeadlineOverrun measures how far past its deadline a looping guest
// runs (reported with -v), for a Go guest and a hand-written tight loop.
func TestDeadlineOverrun(t *testing.T) {
	e := newEngine(t, testConfig())
	mem := memory.NewGoAllocator()
	goLoop := compile(t, e, guest(t, "hostile"))
	asmLoop := compile(t, e, abiModule(nil, cat(opLoopForever, i32const(0)), 1024))
	const deadline = 100 * time.Millisecond
	var worst time.Duration
	for _, c := range []struct {
		name string
		m    wasm.Module
	}{{"go", goLoop}, {"asm", asmLoop}} {
		for range 3 {
			inst, err := c.m.Instantiate(context.Background(), []string{"out"})
			if err != nil {
				t.Fatal(err)
			}
			rec := hostileRecord(t, mem, 1, 0)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			start := time.Now()
			err = inst.ProcessBatch(ctx, rec, func(wasm.Emission) error { return nil })
			over := time.Since(start) - deadline
			cancel()
			rec.Release()
			_ = inst.Close(context.Background())
			checkGuestError(t, err, wasm.KindDeadline, cove.ErrDeadline, "deadline")
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
			}
			worst = max(worst, over)
			t.Logf("%s loop: stopped %v after a %v deadline", c.name, over, deadline)
		}
	}
	t.Logf("worst overrun: %v", worst)
	checkGood(t, e)
}

func TestInitLoopDeadline(t *testing.T) {
	e := newEngine(t, testConfig())
	m := compile(t, e, guest(t, "initloop"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := m.Instantiate(ctx, nil)
	checkGuestError(t, err, wasm.KindDeadline, cove.ErrDeadline, "during initialize")
	checkGood(t, e)
}

func TestCancel(t *testing.T) {
	e := newEngine(t, testConfig())
	m := compile(t, e, guest(t, "hostile"))
	inst, err := m.Instantiate(context.Background(), []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	rec := hostileRecord(t, memory.NewGoAllocator(), 1, 0)
	defer rec.Release()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	err = inst.ProcessBatch(ctx, rec, func(wasm.Emission) error { return nil })
	checkGuestError(t, err, wasm.KindCanceled, context.Canceled, "canceled")
}

func TestMemoryExhaustion(t *testing.T) {
	e := newEngine(t, testConfig().WithMemoryLimitPages(512)) // 32 MiB
	m := compile(t, e, guest(t, "hostile"))
	mem := memory.NewGoAllocator()
	for _, tt := range []struct {
		name string
		mode int64
	}{{"allocate until OOM", 4}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			inst, err := m.Instantiate(ctx, []string{"out"})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			rec := hostileRecord(t, mem, tt.mode, secret)
			defer rec.Release()
			err = inst.ProcessBatch(ctx, rec, func(wasm.Emission) error { return nil })
			checkGuestError(t, err, wasm.KindMemory, cove.ErrGuest, "out of memory (limit 32 MiB)")
			checkGood(t, e)
		})
	}
}

func TestEmitCallbackError(t *testing.T) {
	e := newEngine(t, testConfig())
	m := compile(t, e, guest(t, "hostile"))
	inst, err := m.Instantiate(context.Background(), []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	rec := hostileRecord(t, memory.NewGoAllocator(), 0, 0)
	defer rec.Release()
	mine := errors.New("enclave full")
	if err := inst.ProcessBatch(context.Background(), rec, func(wasm.Emission) error { return mine }); err != mine {
		t.Fatalf("err = %v, want the callback's error unchanged", err)
	}
}

func TestForbiddenImports(t *testing.T) {
	e := newEngine(t, testConfig())
	bin := wmod{
		types: [][2][]byte{{{i32, i32}, {i32}}, {nil, nil}},
		imports: []wimport{
			{"env", "socket", 0},
			{"wasi_snapshot_preview1", "sock_accept", 0},
			{"wasi_snapshot_preview1", "path_open", 0},
			{"wasi_snapshot_preview1", "fd_write", 0}, // allowed name (wrong type is WASI's business)
			{"cove", "open_file", 0},
		},
		funcs: []wfunc{{typ: 1}},
	}.bytes()
	_, err := e.Compile(context.Background(), bin)
	if !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("err = %v, want cove.ErrInvalid", err)
	}
	for _, want := range []string{"env.socket", "wasi_snapshot_preview1.sock_accept", "wasi_snapshot_preview1.path_open",
		"cove.open_file", "no export cove_alloc", "no export cove_batch", "no export cove_abi_version", `no exported memory`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "fd_write") {
		t.Errorf("err = %q names an allowed import", err)
	}
}

func TestModuleLimits(t *testing.T) {
	e := newEngine(t, testConfig().WithMaxModuleBytes(1024))
	if _, err := e.Compile(context.Background(), make([]byte, 2048)); !errors.Is(err, cove.ErrLimit) {
		t.Errorf("oversized module: %v", err)
	}
	if _, err := e.Compile(context.Background(), []byte("not wasm at all")); !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("malformed module: %v", err)
	}
	if _, err := wasm.NewEngine(context.Background(), wasm.NewConfig().WithMemoryLimitPages(0)); !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("bad config: %v", err)
	}
}

// TestHandAssembled drives the host calls with exact, hostile arguments.
func TestHandAssembled(t *testing.T) {
	// emitOne emits one contribution to output out whose row is row and key
	// is the interned key "k" (at address 0: memory starts zeroed, the key
	// bytes are stored first).
	emitOne := func(out, row int64) []byte {
		return cat(
			i32store(0, 'k'),
			i32const(0), i32const(1), call(1), opDrop, // key("k") = 0
			i32store(16, row), i32store(20, 0), // rows[0], keys[0]
			i32const(out), i32const(16), i32const(20), i32const(24), i32const(1), call(2),
			i32const(0))
	}
	tests := []struct {
		name        string
		init, batch []byte
		alloc       int64
		kind        wasm.Kind
		want        string
		phase       string
	}{
		{"behaves", nil, emitOne(0, 2), 1024, "", "", ""},
		{"unreachable", nil, cat(opUnreachable), 1024, wasm.KindTrap, "guest trapped: unreachable", "batch"},
		{"trap in init", opUnreachable, i32const(0), 1024, wasm.KindTrap, "unreachable", "initialize"},
		{"out of bounds load", nil, cat(i32const(1<<20), []byte{0x28, 0x02, 0x00}), 1024, wasm.KindTrap, "out of bounds memory access", "batch"},
		{"nonzero return", nil, i32const(secret), 1024, wasm.KindFailed, "guest reported an error", "batch"},
		{"region outside memory", nil, i32const(0), 65536 - 8, wasm.KindABI, "no usable region", "batch"},
		{"unaligned region", nil, i32const(0), 1027, wasm.KindABI, "no usable region", "batch"},
		{"null region", nil, i32const(0), 0, wasm.KindABI, "no usable region", "batch"},
		{"key past the end", nil, cat(i32const(65530), i32const(100), call(1)), 1024, wasm.KindABI, "key [65530,+100) is outside", "batch"},
		{"huge key length", nil, cat(i32const(0), i32const(-1), call(1)), 1024, wasm.KindLimit, "exceeds the limit", "batch"},
		{"output name outside", nil, cat(i32const(-16), i32const(8), call(0)), 1024, wasm.KindABI, "outside guest memory", "batch"},
		{"emit in init", cat(i32const(0), i32const(0), i32const(0), i32const(0), i32const(0), call(2)), i32const(0), 1024, wasm.KindABI, "emit outside a batch", "initialize"},
		{"emit bad row", nil, emitOne(0, 3), 1024, wasm.KindABI, "row 3 of a 3-row batch", "batch"},
		{"emit bad output", nil, emitOne(1, 0), 1024, wasm.KindABI, "output id 1", "batch"},
		{"emit misaligned", nil, cat(i32const(0), i32const(1), i32const(4), i32const(8), i32const(1), call(2), i32const(0)), 1024, wasm.KindABI, "misaligned", "batch"},
		{"emit arrays outside", nil, cat(i32const(0), i32const(65532), i32const(0), i32const(0), i32const(2), call(2), i32const(0)), 1024, wasm.KindABI, "emit rows", "batch"},
		{"emit huge count", nil, cat(i32const(0), i32const(0), i32const(0), i32const(0), i32const(-1), call(2), i32const(0)), 1024, wasm.KindLimit, "more than 10000 contributions", "batch"},
	}
	e := newEngine(t, testConfig())
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			m := compile(t, e, abiModule(tt.init, tt.batch, tt.alloc))
			defer m.Close(ctx)
			rec := hostileRecord(t, mem, 0, secret)
			defer rec.Release()
			inst, err := m.Instantiate(ctx, []string{"out"})
			if err == nil {
				defer inst.Close(ctx)
				var got []contribution
				got, err = run(t, inst, ctx, rec, func(emit func(wasm.Emission) error) error {
					return inst.ProcessBatch(ctx, rec, emit)
				})
				if tt.kind == "" && (err != nil || fmt.Sprint(got) != "[{0 2 k 0}]") {
					t.Fatalf("got %v, %v", got, err)
				}
			}
			if tt.kind == "" {
				return
			}
			sentinel := cove.ErrGuest
			if tt.kind == wasm.KindLimit {
				sentinel = cove.ErrLimit
			}
			checkGuestError(t, err, tt.kind, sentinel, tt.want)
			var ge *wasm.GuestError
			if errors.As(err, &ge) && ge.Phase != tt.phase {
				t.Errorf("phase = %s, want %s", ge.Phase, tt.phase)
			}
		})
	}
}

func TestColumns(t *testing.T) {
	e := newEngine(t, testConfig())
	m := compile(t, e, guest(t, "good"))
	ctx := context.Background()
	mem := memory.NewGoAllocator()

	// A float32 column is not in ABI v1: refused before the guest sees it.
	b := array.NewFloat32Builder(mem)
	b.AppendValues([]float32{1}, nil)
	arr := b.NewArray()
	b.Release()
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "f32", Type: arr.DataType()}}, nil), []arrow.Array{arr}, 1)
	arr.Release()
	defer rec.Release()
	inst, err := m.Instantiate(ctx, []string{"sum", "count"})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.ProcessBatch(ctx, rec, func(wasm.Emission) error { return nil }); !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), `column "f32" has type float32`) {
		t.Errorf("float32 column: %v", err)
	}
	_ = inst.Close(ctx)

	// A missing column panics in the SDK: the batch fails.
	inst, err = m.Instantiate(ctx, []string{"sum", "count"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	rec2 := record(t, mem, col{"i64", []int64{1}, nil})
	defer rec2.Release()
	err = inst.ProcessBatch(ctx, rec2, func(wasm.Emission) error { return nil })
	checkGuestError(t, err, wasm.KindFailed, cove.ErrGuest, "guest reported an error")

	// A batch over the configured size is refused with ErrLimit.
	small := newEngine(t, testConfig().WithMaxBatchBytes(64))
	inst3, err := compile(t, small, guest(t, "good")).Instantiate(ctx, []string{"sum", "count"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst3.Close(ctx)
	rec3 := hostileRecord(t, mem, 0, 0)
	defer rec3.Release()
	if err := inst3.ProcessBatch(ctx, rec3, func(wasm.Emission) error { return nil }); !errors.Is(err, cove.ErrLimit) {
		t.Errorf("oversized batch: %v", err)
	}
}
