package wasm_test

import (
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/runtime/wasm"
)

// forwarder is a guest that makes the host calls its batch lists: column 0
// (utf8, the bytes of row 0) is a sequence of 13-byte records, an op byte
// and six little-endian u16 arguments, each widened to i32 (values from
// 0xff00 up become -256..-1: pointers and lengths that wrap). Ops, modulo
// 11: output, key, emit, k_filter, k_bucket, k_emit, k_select, k_len,
// k_read, column, and a store of a1 at a0 (guest memory the next calls
// read). The batch region is in page 2, so the calls see page 0 and 1.
const forwarder = `(module
  (import "cove" "output" (func $output (param i32 i32) (result i32)))
  (import "cove" "key" (func $key (param i32 i32) (result i32)))
  (import "cove" "emit" (func $emit (param i32 i32 i32 i32 i32)))
  (import "cove" "k_filter" (func $k_filter (param i32 i32 i32 i32 i32) (result i32)))
  (import "cove" "k_bucket" (func $k_bucket (param i32 i32 i32) (result i32)))
  (import "cove" "k_emit" (func $k_emit (param i32 i32 i32)))
  (import "cove" "k_select" (func $k_select (param i32 i32) (result i32)))
  (import "cove" "k_len" (func $k_len (param i32) (result i32)))
  (import "cove" "k_read" (func $k_read (param i32 i32 i32 i32 i32) (result i32)))
  (import "cove" "column" (func $column (param i32 i32 i32)))
  (memory (export "memory") 4 4)
  (func (export "cove_abi_version") (result i32) (i32.const 1))
  (func (export "cove_alloc") (param $size i32) (result i32)
    (if (result i32) (i32.le_u (local.get $size) (i32.const 131072)) (then (i32.const 131072)) (else (i32.const 0))))
  (func $w (param $d i32) (param $k i32) (result i32) (local $v i32)
    (local.set $v (i32.load16_u (i32.add (local.get $d) (i32.add (i32.const 1) (i32.shl (local.get $k) (i32.const 1))))))
    (if (result i32) (i32.ge_u (local.get $v) (i32.const 0xff00))
      (then (i32.sub (i32.const -1) (i32.sub (i32.const 0xffff) (local.get $v))))
      (else (local.get $v))))
  (func (export "cove_batch") (param $p i32) (param $n i32) (result i32) (local $d i32) (local $end i32)
    (local.set $d (i32.add (local.get $p) (i32.load (i32.add (local.get $p) (i32.const 40)))))
    (local.set $end (i32.add (local.get $d) (i32.load (i32.add (local.get $p) (i32.const 44)))))
    (block $done (loop $l
      (br_if $done (i32.gt_u (i32.add (local.get $d) (i32.const 13)) (local.get $end)))
      (block $store (block $col (block $read (block $len (block $select (block $kemit (block $bucket (block $filter (block $emt (block $ky (block $out
        (br_table $out $ky $emt $filter $bucket $kemit $select $len $read $col $store
          (i32.rem_u (i32.load8_u (local.get $d)) (i32.const 11))))
        (drop (call $output (call $w (local.get $d) (i32.const 0)) (call $w (local.get $d) (i32.const 1)))) (br $store))
        (drop (call $key (call $w (local.get $d) (i32.const 0)) (call $w (local.get $d) (i32.const 1)))) (br $store))
        (call $emit (call $w (local.get $d) (i32.const 0)) (call $w (local.get $d) (i32.const 1)) (call $w (local.get $d) (i32.const 2))
          (call $w (local.get $d) (i32.const 3)) (call $w (local.get $d) (i32.const 4))) (br $store))
        (drop (call $k_filter (call $w (local.get $d) (i32.const 0)) (call $w (local.get $d) (i32.const 1)) (call $w (local.get $d) (i32.const 2))
          (call $w (local.get $d) (i32.const 3)) (call $w (local.get $d) (i32.const 4)))) (br $store))
        (drop (call $k_bucket (call $w (local.get $d) (i32.const 0)) (call $w (local.get $d) (i32.const 1)) (call $w (local.get $d) (i32.const 2)))) (br $store))
        (call $k_emit (call $w (local.get $d) (i32.const 0)) (call $w (local.get $d) (i32.const 1)) (call $w (local.get $d) (i32.const 2))) (br $store))
        (drop (call $k_select (call $w (local.get $d) (i32.const 0)) (call $w (local.get $d) (i32.const 1)))) (br $store))
        (drop (call $k_len (call $w (local.get $d) (i32.const 0)))) (br $store))
        (drop (call $k_read (call $w (local.get $d) (i32.const 0)) (call $w (local.get $d) (i32.const 1)) (call $w (local.get $d) (i32.const 2))
          (call $w (local.get $d) (i32.const 3)) (call $w (local.get $d) (i32.const 4)))) (br $store))
        (call $column (call $w (local.get $d) (i32.const 0)) (call $w (local.get $d) (i32.const 1)) (call $w (local.get $d) (i32.const 2))) (br $store))
      (if (i32.lt_u (call $w (local.get $d) (i32.const 0)) (i32.const 131068))
        (then (i32.store (call $w (local.get $d) (i32.const 0)) (call $w (local.get $d) (i32.const 1)))))
      (local.set $d (i32.add (local.get $d) (i32.const 13)))
      (br $l)))
    (i32.const 0)))
`

var forwarderOnce struct {
	sync.Once
	bin []byte
	err error
}

// forwarderModule compiles the forwarder with wat2wasm (skips without it).
func forwarderModule(t testing.TB) []byte {
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not found: install Debian's wabt (as .ci/run does)")
	}
	forwarderOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cove-forwarder-")
		if err != nil {
			forwarderOnce.err = err
			return
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "f.wat")
		if err := os.WriteFile(src, []byte(forwarder), 0o644); err != nil {
			forwarderOnce.err = err
			return
		}
		if out, err := exec.Command(wat2wasm, "-o", src+".wasm", src).CombinedOutput(); err != nil {
			forwarderOnce.err = errors.New(string(out))
			return
		}
		forwarderOnce.bin, forwarderOnce.err = os.ReadFile(src + ".wasm")
	})
	if forwarderOnce.err != nil {
		t.Fatal(forwarderOnce.err)
	}
	return forwarderOnce.bin
}

// forwardBatch is calls as column 0 (row 0; 39 more empty rows) beside
// columns the kernels work on: int64 with runs and nulls, float64, utf8 and
// bool.
func forwardBatch(calls []byte) arrow.RecordBatch {
	mem := memory.NewGoAllocator()
	const n = 40
	cb, ib, fb, sb, bb := array.NewStringBuilder(mem), array.NewInt64Builder(mem), array.NewFloat64Builder(mem),
		array.NewStringBuilder(mem), array.NewBooleanBuilder(mem)
	for r := 0; r < n; r++ {
		if r == 0 {
			cb.Append(string(calls))
		} else {
			cb.Append("")
		}
		if r%7 == 3 {
			ib.AppendNull()
		} else {
			ib.Append(int64(r / 5))
		}
		fb.Append(float64(r%4) - 1.5)
		sb.Append([]string{"a", "a", "b\x1fc", ""}[r/10])
		bb.Append(r%3 == 0)
	}
	cols := []arrow.Array{cb.NewArray(), ib.NewArray(), fb.NewArray(), sb.NewArray(), bb.NewArray()}
	fields := []arrow.Field{{Name: "calls", Type: cols[0].DataType()}, {Name: "i", Type: cols[1].DataType(), Nullable: true},
		{Name: "f", Type: cols[2].DataType()}, {Name: "s", Type: cols[3].DataType()}, {Name: "b", Type: cols[4].DataType()}}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, n)
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// FuzzEngineHostCalls has a guest make host calls with fuzzed arguments
// (pointers, lengths, handles, columns, operators, key ids) through the
// engine: the run succeeds or fails as a guest error that the host refused
// (kind abi or limit), never a host panic; every emission is inside the
// batch, and the contributions handed on are those counted.
func FuzzEngineHostCalls(f *testing.F) {
	call := func(op byte, args ...uint16) []byte {
		b := []byte{op}
		for k := range 6 {
			var a uint16
			if k < len(args) {
				a = args[k]
			}
			b = binary.LittleEndian.AppendUint16(b, a)
		}
		return b
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	f.Add(cat(call(10, 0, 2), call(3, 0, 2, 0, 0, 0), call(10, 8, 2), call(3, 1, 1, 6, 8, 8), call(10, 16, 1), call(10, 20, 3),
		call(4, 2, 16, 2), call(5, 0, 3, 2)))
	f.Add(cat(call(4, 0, 0, 0), call(5, 0, 1, 0xffff), call(8, 1, 1, 3, 512, 40)))
	f.Add(cat(call(10, 100, 0x6f), call(0, 100, 1), call(1, 100, 1), call(10, 0, 5), call(10, 4, 0), call(2, 0, 0, 4, 8, 1)))
	f.Add(cat(call(10, 0, 3), call(10, 4, 1), call(6, 0, 2), call(4, 1, 0, 0), call(5, 0, 2, 1), call(8, 2, 1, 0, 600, 9)))
	f.Add(cat(call(9, 1, 1024, 320), call(9, 1, 1024, 320)))
	f.Add(cat(call(8, 0, 0, 0xffff, 4090, 7)))
	f.Add(cat(call(7, 0xff00)))
	bin := forwarderModule(f)
	ctx := context.Background()
	eng := newEngine(f, testConfig().WithMaxEmits(2000).WithMaxKeys(50))
	mod := compile(f, eng, bin)
	f.Fuzz(func(t *testing.T, calls []byte) {
		rec := forwardBatch(calls)
		defer rec.Release()
		inst, err := mod.Instantiate(ctx, []string{"o", "p"})
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close(ctx)
		rows := uint32(rec.NumRows())
		var emitted int64
		err = inst.ProcessBatchRuns(ctx, rec, func(em wasm.Emission) error {
			emitted += em.Len()
			return em.Each(func(row, key uint32, v float64) error {
				if row >= rows || em.Output > 1 {
					t.Fatalf("contribution (output %d, row %d, key %d) outside the batch or the outputs", em.Output, row, key)
				}
				return nil
			})
		})
		if emitted != inst.Emits() || emitted > 2000 {
			t.Fatalf("%d contributions handed on, %d counted, limit 2000", emitted, inst.Emits())
		}
		if err == nil {
			return
		}
		var ge *wasm.GuestError
		if !errors.As(err, &ge) || (ge.Kind != wasm.KindABI && ge.Kind != wasm.KindLimit) {
			t.Fatalf("run failed with %v, want a refused host call (kind abi or limit)", err)
		}
	})
}

// TestForwarder checks that the fuzz guest really makes the calls it is
// given: a filter, a group-by and a k_emit yield the contributions of the
// same pipeline computed here.
func TestForwarder(t *testing.T) {
	rec := forwardBatch(nil)
	defer rec.Release()
	le := binary.LittleEndian
	rec2 := forwardBatch(slices.Concat(
		[]byte{10}, le.AppendUint16(le.AppendUint16(nil, 8), 2), make([]byte, 8), // mem[8] = 2 (and mem[12] = 0: the i64 2)
		[]byte{3}, le.AppendUint16(le.AppendUint16(le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, 0), 1), 6), 8), 8), make([]byte, 2), // h1 = i >= 2
		[]byte{10}, le.AppendUint16(le.AppendUint16(nil, 16), 3), make([]byte, 8), // mem[16] = 3 (column s)
		[]byte{4}, le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, 1), 16), 1), make([]byte, 6), // h2 = h1 by s
		[]byte{5}, le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, 0), 2), 2), make([]byte, 6), // emit f of h2 to "o"
	))
	defer rec2.Release()
	ctx := context.Background()
	eng := newEngine(t, testConfig())
	inst, err := compile(t, eng, forwarderModule(t)).Instantiate(ctx, []string{"o"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	got := map[string]float64{}
	n := 0
	err = inst.ProcessBatchRuns(ctx, rec2, func(em wasm.Emission) error {
		return em.Each(func(row, key uint32, v float64) error {
			got[inst.KeyName(key)] += v
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	m := 0
	i, f, s := rec.Column(1).(*array.Int64), rec.Column(2).(*array.Float64), rec.Column(3).(*array.String)
	for r := 0; r < int(rec.NumRows()); r++ {
		if i.IsValid(r) && i.Value(r) >= 2 {
			want[strings.ReplaceAll(s.Value(r), "\x1f", "\uFFFD")] += f.Value(r)
			m++
		}
	}
	if n != m || !maps.Equal(got, want) {
		t.Errorf("%d contributions %v, want %d %v", n, got, m, want)
	}
}
