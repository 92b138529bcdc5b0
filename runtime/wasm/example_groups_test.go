package wasm_test

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/runtime/wasm"
)

// unitGuest emits, for each call, 100 × its rows + a counter it keeps in
// memory (address 300) and increments: to key "u", on behalf of row 0.
func unitGuest() []byte {
	load := []byte{0x28, 0x02, 0x00}
	store := []byte{0x36, 0x02, 0x00}
	body := cat(
		i32const(100), i32const('u'), []byte{0x3a, 0x00, 0x00}, // key bytes "u" at 100
		i32const(204), i32const(100), i32const(1), call(1), store, // keys[0] = key("u")
		i32const(200), i32const(0), store, // rows[0] = 0
		i32const(300), i32const(300), load, i32const(1), []byte{0x6a}, store, // counter++
		i32const(208), // values[0] = f64(100·rows + counter)
		[]byte{0x20, 0x00}, i32const(4), []byte{0x6a}, load, i32const(100), []byte{0x6c},
		i32const(300), load, []byte{0x6a}, []byte{0xb8}, []byte{0x39, 0x03, 0x00},
		i32const(0), i32const(200), i32const(204), i32const(208), i32const(1), call(2),
		i32const(0),
	)
	return abiModule(nil, body, 1024)
}

// printSink prints what each unit gave.
type printSink struct{ inst wasm.GroupInstance }

func (s printSink) Emit(g int, e wasm.Emission) error {
	for j := range e.Rows {
		fmt.Printf("unit %d: row %d adds %v to %q\n", g, e.Rows[j], e.Values[j], s.inst.KeyName(e.Keys[j]))
	}
	return nil
}
func (s printSink) Vector(g, o int, v []float64) error { return nil }
func (s printSink) Failed(g int) error                 { fmt.Printf("unit %d failed\n", g); return nil }

// ExampleGroupConfig runs a guest per privacy unit: three units of two,
// one and three rows. The guest counts its calls in memory, yet every unit
// sees the count of the snapshot: each call starts from the state the
// guest had after initialization.
func ExampleGroupConfig() {
	ctx := context.Background()
	eng, err := wasm.NewEngine(ctx, wasm.NewConfig())
	if err != nil {
		panic(err)
	}
	defer eng.Close(ctx)
	mod, err := eng.Compile(ctx, unitGuest())
	if err != nil {
		panic(err)
	}
	cfg := wasm.NewGroupConfig().
		WithMemoryPages(2).                  // 128 KiB of guest memory, fixed
		WithCPULimit(50 * time.Millisecond). // per unit
		WithMaxEmits(10)                     // contributions per unit
	inst, err := mod.InstantiateGroups(ctx, []string{"count"}, cfg)
	if err != nil {
		panic(err)
	}
	defer inst.Close(ctx)

	b := array.NewInt64Builder(memory.NewGoAllocator())
	defer b.Release()
	b.AppendValues([]int64{7, 7, 8, 9, 9, 9}, nil)
	col := b.NewArray()
	defer col.Release()
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "unit", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{col}, 6)
	defer rec.Release()
	// Unit g is rows [bounds[g], bounds[g+1]).
	if err := inst.RunGroups(ctx, rec, []uint32{0, 2, 3, 6}, printSink{inst}); err != nil {
		panic(err)
	}
	st := inst.Stats()
	fmt.Printf("%d units, %d failed\n", st.Groups, st.Failed)
	// Output:
	// unit 0: row 0 adds 201 to "u"
	// unit 1: row 2 adds 101 to "u"
	// unit 2: row 3 adds 301 to "u"
	// 3 units, 0 failed
}
