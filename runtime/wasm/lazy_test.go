package wasm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/wasm"
)

// lazyModule is abiModule with the column import (function 3) and, unless
// features is nil, a cove_features export whose body is features. Function
// indices: 0 output, 1 key, 2 emit, 3 column, 4 _initialize,
// 5 cove_abi_version, 6 cove_alloc (returns 1024), 7 cove_batch,
// 8 cove_features.
func lazyModule(initBody, batchBody, features []byte, featuresType int) []byte {
	m := wmod{
		types: [][2][]byte{
			{{i32, i32}, {i32}},              // 0: output, key, cove_batch
			{{i32, i32, i32, i32, i32}, nil}, // 1: emit
			{nil, nil},                       // 2: _initialize
			{nil, {i32}},                     // 3: cove_abi_version
			{{i32}, {i32}},                   // 4: cove_alloc, cove_features
			{{i32, i32, i32}, nil},           // 5: column
		},
		imports: []wimport{{"cove", "output", 0}, {"cove", "key", 0}, {"cove", "emit", 1}, {"cove", "column", 5}},
		funcs: []wfunc{
			{typ: 2, body: initBody},
			{typ: 3, body: i32const(1)},
			{typ: 4, body: i32const(1024)},
			{typ: 0, body: batchBody},
		},
		memory: true,
		exports: []wexport{
			{"memory", 2, 0}, {"_initialize", 0, 4}, {"cove_abi_version", 0, 5},
			{"cove_alloc", 0, 6}, {"cove_batch", 0, 7},
		},
	}
	if features != nil {
		m.funcs = append(m.funcs, wfunc{typ: featuresType, body: features})
		m.exports = append(m.exports, wexport{"cove_features", 0, 8})
	}
	return m.bytes()
}

// column calls import column(col, dst, n).
func column(col, dst, n int64) []byte { return cat(i32const(col), i32const(dst), i32const(n), call(3)) }

// TestLazyColumns drives lazy batches (cove_features, import column) with
// good and hostile arguments. The batch is hostileRecord's: columns mode
// and secret, int64, 3 rows: a column block of 24 bytes.
func TestLazyColumns(t *testing.T) {
	// secretAt leaves 1 unless the i64 at addr is the secret.
	secretAt := func(addr int64) []byte {
		return cat(i32const(addr), []byte{0x29, 0x03, 0x00}, []byte{0x42}, sleb(secret), []byte{0x52})
	}
	// The lazy region at 1024: column 1's values_off (1024+16+32+16) is 0.
	lazyDesc := cat(i32const(1088), []byte{0x28, 0x02, 0x00})
	one := i32const(1)
	tests := []struct {
		name                  string
		init, batch, features []byte
		kind                  wasm.Kind
		want, phase           string
	}{
		{"lazy region, one column copied", nil, cat(column(1, 2048, 24), lazyDesc, secretAt(2048), []byte{0x72}), one, "", "", ""},
		{"eager guest may copy a column too", nil, cat(column(1, 2048, 24), secretAt(2048)), nil, "", "", ""},
		{"guest declines the feature", nil, cat(i32const(1088), []byte{0x28, 0x02, 0x00, 0x45}), i32const(0), "", "", ""}, // eager: values_off != 0
		{"feature not offered", nil, i32const(0), i32const(6), wasm.KindABI, "features", "initialize"},
		{"column twice", nil, cat(column(1, 2048, 24), column(1, 2048, 24), i32const(0)), one, wasm.KindABI, "copied twice", "batch"},
		{"no such column", nil, cat(column(9, 2048, 24), i32const(0)), one, wasm.KindABI, "column 9 does not exist", "batch"},
		{"column -1", nil, cat(column(-1, 2048, 24), i32const(0)), one, wasm.KindABI, "does not exist", "batch"},
		{"block too short", nil, cat(column(1, 2048, 16), i32const(0)), one, wasm.KindABI, "needs a block of 24 bytes", "batch"},
		{"block length -1", nil, cat(column(1, 2048, -1), i32const(0)), one, wasm.KindABI, "needs a block", "batch"},
		{"destination misaligned", nil, cat(column(1, 2052, 24), i32const(0)), one, wasm.KindABI, "misaligned", "batch"},
		{"destination outside memory", nil, cat(column(1, 65528, 24), i32const(0)), one, wasm.KindABI, "column destination", "batch"},
		{"destination at -8", nil, cat(column(1, -8, 24), i32const(0)), one, wasm.KindABI, "column destination", "batch"},
		{"column in _initialize", column(0, 2048, 24), i32const(0), one, wasm.KindABI, "outside a batch", "initialize"},
	}
	e := newEngine(t, testConfig())
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			m := compile(t, e, lazyModule(tt.init, tt.batch, tt.features, 4))
			defer m.Close(ctx)
			rec := hostileRecord(t, mem, 0, secret)
			defer rec.Release()
			inst, err := m.Instantiate(ctx, []string{"out"})
			if err == nil {
				defer inst.Close(ctx)
				err = inst.ProcessBatch(ctx, rec, func(wasm.Emission) error { return nil })
				if err == nil {
					// A second batch: a column may be copied again.
					err = inst.ProcessBatch(ctx, rec, func(wasm.Emission) error { return nil })
				}
			}
			if tt.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkGuestError(t, err, tt.kind, cove.ErrGuest, tt.want)
			var ge *wasm.GuestError
			if errors.As(err, &ge) && ge.Phase != tt.phase {
				t.Errorf("phase = %s, want %s", ge.Phase, tt.phase)
			}
		})
	}
	// cove_features must take and return an i32.
	if _, err := e.Compile(context.Background(), lazyModule(nil, i32const(0), i32const(1), 3)); !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("cove_features () -> i32: %v", err)
	}
}
