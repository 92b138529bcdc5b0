package suite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/wasm"
)

// NewRuntime makes the runtime under test (closed by the test's cleanup).
// Its engine has the default memory limit (4096 pages).
type NewRuntime func(t testing.TB) wasm.Runtime

// RunAll runs every attack of the suite on the runtimes newRT makes.
func RunAll(t *testing.T, newRT NewRuntime) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T, NewRuntime)
	}{
		{"AttackState", AttackState},
		{"FailureIsolation", FailureIsolation},
		{"MemoryFixed", MemoryFixed},
		{"BlockVectors", BlockVectors},
		{"Plan", Plan},
		{"Refuses", Refuses},
		{"Deadline", Deadline},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newRT) })
	}
}

var outputs = []string{"out"}

// Guest is a leaky guest and the guest memory it runs with.
type Guest struct {
	Name  string
	Bin   func(testing.TB) []byte
	Pages uint32
}

// LeakyGuests are the guests of AttackState: leaky.wat and leaky.c.
var LeakyGuests = []Guest{
	{"wat", func(t testing.TB) []byte { return WATFile(t, "leaky") }, 16},
	{"c", func(t testing.TB) []byte { return C(t, "leaky") }, 64},
}

// AttackState is the attack of a guest that keeps what one group's rows
// hold (in a global it does not export, memory, memory.grow, the clock and
// random source, stdout's state, key ids, its allocator) and emits it on
// behalf of the groups after it: every group's output must equal that of
// the group run alone in a fresh instance, in any order. The negative
// control, the same guest in batch mode with one batch per group, must be
// caught by the same comparison.
func AttackState(t *testing.T, newRT NewRuntime) {
	for _, guest := range LeakyGuests {
		t.Run(guest.Name, func(t *testing.T) {
			rt := newRT(t)
			mod := compile(t, rt, guest.Bin(t))
			cfg := wasm.NewGroupConfig().WithMemoryPages(guest.Pages)
			rng := rand.New(rand.NewPCG(1, 2))
			groups := LeakyGroups(rng, 12)
			want := Oracle(t, mod, outputs, cfg, groups)
			for g, r := range want {
				if r.Failed || len(r.Contribs) == 0 {
					t.Fatalf("group %d alone: %v", g, r)
				}
			}
			inst, err := mod.InstantiateGroups(context.Background(), outputs, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(context.Background())
			n := CheckOrders(t, inst, want, groups, 20, rng)
			st := inst.Stats()
			t.Logf("%d groups equal to the fresh-instance oracle; %d pages restored, restore %v/group",
				n, st.RestoredPages, st.RestoreTime/time.Duration(max(st.Groups, 1)))
			if st.Groups != int64(n) || st.Failed != 0 {
				t.Errorf("stats %+v for %d groups", st, n)
			}
			if leaks := batchControl(t, mod, groups); leaks == 0 {
				t.Error("negative control: batch mode with shared state was not caught")
			} else {
				t.Logf("negative control: %d of %d groups differ from their fresh run in batch mode", leaks, len(groups))
			}
		})
	}
}

// batchControl runs each group as a batch of one shared batch-mode
// instance, and alone in a fresh one, and counts the groups whose
// contributions differ.
func batchControl(t *testing.T, mod wasm.Module, groups [][]int64) int {
	ctx := context.Background()
	run := func(inst wasm.Instance, rows []int64) string {
		rec, _ := Record([][]int64{rows})
		defer rec.Release()
		var got []string
		err := inst.ProcessBatch(ctx, rec, func(em wasm.Emission) error {
			for j := range em.Rows {
				got = append(got, fmt.Sprintf("%q=%v", inst.KeyName(em.Keys[j]), em.Values[j]))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, ",")
	}
	shared, err := mod.Instantiate(ctx, outputs)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close(ctx)
	leaks := 0
	for _, rows := range groups {
		fresh, err := mod.Instantiate(ctx, outputs)
		if err != nil {
			t.Fatal(err)
		}
		alone := run(fresh, rows)
		_ = fresh.Close(ctx)
		if run(shared, rows) != alone {
			leaks++
		}
	}
	return leaks
}

// FailModes are the ways leaky.wat fails in a group whose row 0 has
// mode<<32, after it left its value in every channel and emitted.
var FailModes = []struct {
	Mode int64
	Name string
}{
	{1, "trap"},
	{2, "infinite loop (CPU limit)"},
	{3, "proc_exit"},
	{4, "refused host call"},
	{5, "memory exhaustion"},
	{6, "nonzero return"},
	{7, "stack overflow"},
	{8, "call-tree bomb (CPU limit)"},
	{9, "WASI write into the dirty map"},
	{10, "k_read into the dirty map"},
}

// FailureIsolation: a group that fails, whichever way, gives nothing and
// is reported failed; the groups before and after it give what they give
// alone in a fresh instance.
func FailureIsolation(t *testing.T, newRT NewRuntime) {
	rt := newRT(t)
	mod := compile(t, rt, WATFile(t, "leaky"))
	cfg := wasm.NewGroupConfig().WithMemoryPages(16).WithCPULimit(50 * time.Millisecond)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, fm := range FailModes {
		t.Run(fm.Name, func(t *testing.T) {
			groups := LeakyGroups(rng, 10)
			groups[3][0] |= fm.Mode << 32
			want := Oracle(t, mod, outputs, cfg, groups)
			if !want[3].Failed {
				t.Fatalf("group 3 alone: %v, want failed", want[3])
			}
			inst, err := mod.InstantiateGroups(context.Background(), outputs, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(context.Background())
			CheckOrders(t, inst, want, groups, 3, rng)
			if st := inst.Stats(); st.Failed != 3 {
				t.Errorf("stats %+v: want 3 failed groups", st)
			}
		})
	}
}

// MemoryFixed: memory.size starts at the declared size and memory.grow
// stops at the configured pages, every group alike.
func MemoryFixed(t *testing.T, newRT NewRuntime) {
	mod := compile(t, newRT(t), WAT(t, growGuest))
	inst, err := mod.InstantiateGroups(context.Background(), outputs, wasm.NewGroupConfig().WithMemoryPages(5))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	for g, r := range Run(t, inst, [][]int64{{1}, {2}, {3}}) {
		// declared 2 pages, 3 grows succeed, then 5 pages
		if want := `[0 0 "before" 2 0 0 "grown" 3 0 0 "after" 5] map[]`; r.String() != want {
			t.Errorf("group %d: %v, want %s", g, r, want)
		}
	}
}

// BlockVectors: a block's vector arrives when it is right; a wrong one
// (length, twice, to a contribution output, missing, not finite) or
// contributions to a block output fail that block alone.
func BlockVectors(t *testing.T, newRT NewRuntime) {
	mod := compile(t, newRT(t), WAT(t, blockGuest))
	outputs := []string{"vec", "cnt"}
	cfg := wasm.NewGroupConfig().WithMemoryPages(4).WithVectors([]int{2, 0})
	var groups [][]int64
	for mode := range int64(8) {
		groups = append(groups, []int64{mode<<32 | 40 + mode, 0, 0})
	}
	inst, err := mod.InstantiateGroups(context.Background(), outputs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	res := Run(t, inst, groups)
	if want := `[1 0 "c" 1] map[0:[3 40]]`; res[0].String() != want {
		t.Errorf("group 0: %v, want %s", res[0], want)
	}
	for g := 1; g < len(groups); g++ {
		if !res[g].Failed {
			t.Errorf("group %d (mode %d): %v, want failed", g, g, res[g])
		}
	}
	want := Oracle(t, mod, outputs, cfg, groups)
	CheckOrders(t, inst, want, groups, 5, rand.New(rand.NewPCG(5, 6)))
	// Outside block mode, result is refused.
	batch, err := mod.Instantiate(context.Background(), outputs)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Close(context.Background())
	rec, _ := Record(groups[:1])
	defer rec.Release()
	if err := batch.ProcessBatch(context.Background(), rec, func(wasm.Emission) error { return nil }); !errors.Is(err, cove.ErrGuest) {
		t.Errorf("result in batch mode: err = %v, want a guest error", err)
	}
}

// Plan: the planning call sees the schema and nothing else; every call
// that could reach data is refused, as is a plan handed wrongly.
func Plan(t *testing.T, newRT NewRuntime) {
	rt := newRT(t)
	ctx := context.Background()
	mod := compile(t, rt, WAT(t, planGuest("", "")))
	plan, err := mod.Plan(ctx, planSchema, []string{"out"})
	if err != nil || string(plan) != "station" {
		t.Fatalf("plan %q, %v; want the first column's name", plan, err)
	}
	imp := func(name, sig string) string {
		return fmt.Sprintf("  (import \"cove\" %q (func $%s %s))\n", name, name, sig)
	}
	for _, tc := range []struct {
		name, imports, body string
		kind                wasm.Kind
		text                string
	}{
		{"key", imp("key", "(param i32 i32) (result i32)"), `(drop (call $key (i32.const 0) (i32.const 1))) (i32.const 0)`, wasm.KindABI, "planning call"},
		{"emit", imp("emit", "(param i32 i32 i32 i32 i32)"), `(call $emit (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)) (i32.const 0)`, wasm.KindABI, "planning call"},
		{"k_filter", imp("k_filter", "(param i32 i32 i32 i32 i32) (result i32)"), `(drop (call $k_filter (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))) (i32.const 0)`, wasm.KindABI, "planning call"},
		{"k_len", imp("k_len", "(param i32) (result i32)"), `(drop (call $k_len (i32.const 0))) (i32.const 0)`, wasm.KindABI, "planning call"},
		{"column", imp("column", "(param i32 i32 i32)"), `(call $column (i32.const 0) (i32.const 0) (i32.const 0)) (i32.const 0)`, wasm.KindABI, "planning call"},
		{"result", imp("result", "(param i32 i32 i32)"), `(call $result (i32.const 0) (i32.const 0) (i32.const 0)) (i32.const 0)`, wasm.KindABI, "planning call"},
		{"plan twice", "", `(call $plan (i32.const 1024) (i32.const 3)) (call $plan (i32.const 1024) (i32.const 3)) (i32.const 0)`, wasm.KindABI, "twice"},
		{"plan too long", "", `(call $plan (i32.const 0) (i32.const 65537)) (i32.const 0)`, wasm.KindLimit, "65536 bytes"},
		{"plan outside memory", "", `(call $plan (i32.const 65530) (i32.const 100)) (i32.const 0)`, wasm.KindABI, "outside guest memory"},
		{"no plan", "", `(i32.const 0)`, wasm.KindABI, "without handing a plan"},
		{"nonzero return", "", `(call $plan (i32.const 1024) (i32.const 3)) (i32.const 1)`, wasm.KindFailed, "reported an error"},
		{"trap", "", `unreachable`, wasm.KindTrap, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mod := compile(t, rt, WAT(t, planGuest(tc.imports, tc.body)))
			plan, err := mod.Plan(ctx, planSchema, []string{"out"})
			var ge *wasm.GuestError
			if !errors.As(err, &ge) || ge.Kind != tc.kind || ge.Phase != "plan" || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("plan %q, err %v; want a %s error of phase plan naming %q", plan, err, tc.kind, tc.text)
			}
		})
	}
	if _, err := compile(t, rt, WAT(t, growGuest)).Plan(ctx, planSchema, nil); !errors.Is(err, wasm.ErrNoPlanExport) || !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("no cove_plan: err = %v, want ErrNoPlanExport", err)
	}
	bad := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)}}, nil)
	if _, err := mod.Plan(ctx, bad, nil); !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("list column: err = %v, want ErrInvalid", err)
	}
}

// Refuses: instructions that would let state outlive a group refuse the
// module for these modes, naming the instruction; so do configurations out
// of bounds and bad group bounds.
func Refuses(t *testing.T, newRT NewRuntime) {
	rt := newRT(t)
	ctx := context.Background()
	for _, tc := range []struct{ name, body string }{
		{"table.set", `(table.set $t (i32.const 0) (ref.null func))`},
		{"table.grow", `(drop (table.grow $t (ref.null func) (i32.const 1)))`},
		{"memory.init", `(memory.init $d (i32.const 0) (i32.const 0) (i32.const 1))`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mod := compile(t, rt, WAT(t, `(module
  (table $t 1 funcref)
  (memory (export "memory") 1)
  (data $d "x")
  (func (export "cove_abi_version") (result i32) (i32.const 1))
  (func (export "cove_alloc") (param i32) (result i32) (i32.const 8))
  (func (export "cove_batch") (param i32 i32) (result i32) `+tc.body+` (i32.const 0)))`))
			_, err := mod.InstantiateGroups(ctx, outputs, wasm.NewGroupConfig().WithMemoryPages(4))
			if !errors.Is(err, cove.ErrInvalid) || !containsAll(err.Error(), tc.name) {
				t.Errorf("err = %v, want ErrInvalid naming %s", err, tc.name)
			}
		})
	}
	mod := compile(t, rt, WAT(t, growGuest))
	for _, tc := range []struct {
		name string
		cfg  wasm.GroupConfig
	}{
		{"below the declared memory", wasm.NewGroupConfig().WithMemoryPages(1)},
		{"above the engine's limit", wasm.NewGroupConfig().WithMemoryPages(4097)},
		{"no time", wasm.NewGroupConfig().WithMemoryPages(4).WithCPULimit(0)},
		{"two dimensions for one output", wasm.NewGroupConfig().WithMemoryPages(4).WithVectors([]int{1, 2})},
	} {
		if _, err := mod.InstantiateGroups(ctx, outputs, tc.cfg); !errors.Is(err, cove.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
	inst, err := mod.InstantiateGroups(ctx, outputs, wasm.NewGroupConfig().WithMemoryPages(4))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	rec, _ := Record([][]int64{{1}, {2}})
	defer rec.Release()
	for _, b := range [][]uint32{nil, {1, 0}, {0, 3}} {
		if err := inst.RunGroups(ctx, rec, b, NewSink(t, inst.KeyName, []uint32{0})); !errors.Is(err, cove.ErrInvalid) {
			t.Errorf("bounds %v: err = %v, want ErrInvalid", b, err)
		}
	}
	// An empty group runs too (a block with no rows).
	if res := Run(t, inst, [][]int64{{}, {5}}); res[1].Failed {
		t.Errorf("the group after an empty one failed")
	}
}

// Deadline: the caller's deadline ends RunGroups with cove.ErrDeadline
// (not a failed group), gives nothing of the groups after it, and closes
// the instance.
func Deadline(t *testing.T, newRT NewRuntime) {
	mod := compile(t, newRT(t), WATFile(t, "leaky"))
	inst, err := mod.InstantiateGroups(context.Background(), outputs, wasm.NewGroupConfig().WithMemoryPages(16).WithCPULimit(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	rec, bounds := Record([][]int64{{1}, {2 << 32}, {3}})
	defer rec.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	sink := NewSink(t, inst.KeyName, bounds)
	if err := inst.RunGroups(ctx, rec, bounds, sink); !errors.Is(err, cove.ErrDeadline) {
		t.Fatalf("err = %v, want ErrDeadline", err)
	}
	if sink.Res[1] != nil || sink.Res[2] != nil {
		t.Errorf("groups at and after the deadline gave %v, %v", sink.Res[1], sink.Res[2])
	}
	if err := inst.RunGroups(context.Background(), rec, bounds, NewSink(t, inst.KeyName, bounds)); err == nil {
		t.Error("a closed instance ran again")
	}
}
