package wasm_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/internal/guestbuild"
	"github.com/covedata/cove/runtime/wasm"
)

// cacheDir is a compilation cache shared by the engines of this package's
// tests, so that each guest is compiled once.
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cove-wasm-cache-")
	if err != nil {
		panic(err)
	}
	cacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// guest builds testdata/<name> once per test binary.
func guest(t testing.TB, name string) []byte {
	t.Helper()
	return guestAt(t, filepath.Join("testdata", name))
}

// guestAt builds the Go guest in dir once per test binary.
func guestAt(t testing.TB, name string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := guestbuild.Cached(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testConfig() wasm.Config {
	return wasm.NewConfig().WithCompilationCacheDir(cacheDir).WithMaxEmits(10_000)
}

func newEngine(t testing.TB, cfg wasm.Config) *wasm.Engine {
	t.Helper()
	e, err := wasm.NewEngine(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

func compile(t testing.TB, e wasm.Runtime, bin []byte) wasm.Module {
	t.Helper()
	m, err := e.Compile(context.Background(), bin)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// col is one column of a test record; valid nil means no nulls.
type col struct {
	name  string
	vals  any // []int64, []int32, []float64, []string or []bool
	valid []bool
}

func record(t testing.TB, mem memory.Allocator, cols ...col) arrow.RecordBatch {
	t.Helper()
	var fields []arrow.Field
	var arrs []arrow.Array
	for _, c := range cols {
		var b array.Builder
		switch v := c.vals.(type) {
		case []int64:
			x := array.NewInt64Builder(mem)
			x.AppendValues(v, c.valid)
			b = x
		case []int32:
			x := array.NewInt32Builder(mem)
			x.AppendValues(v, c.valid)
			b = x
		case []float64:
			x := array.NewFloat64Builder(mem)
			x.AppendValues(v, c.valid)
			b = x
		case []string:
			x := array.NewStringBuilder(mem)
			x.AppendValues(v, c.valid)
			b = x
		case []bool:
			x := array.NewBooleanBuilder(mem)
			x.AppendValues(v, c.valid)
			b = x
		default:
			t.Fatalf("column %s: unsupported %T", c.name, c.vals)
		}
		a := b.NewArray()
		b.Release()
		fields = append(fields, arrow.Field{Name: c.name, Type: a.DataType(), Nullable: true})
		arrs = append(arrs, a)
	}
	rows := int64(0)
	if len(arrs) > 0 {
		rows = int64(arrs[0].Len())
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, rows)
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

// hostileRecord asks the hostile guest for mode, with secret as its data.
func hostileRecord(t testing.TB, mem memory.Allocator, mode, secret int64) arrow.RecordBatch {
	return record(t, mem, col{name: "mode", vals: []int64{mode, 0, 0}}, col{name: "secret", vals: []int64{secret, secret, secret}})
}

// lockedBuffer is a bytes.Buffer safe for the engine's debug writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Hand-assembled modules (WebAssembly binary format, MVP).

type wfunc struct {
	typ  int    // index into wmod.types
	body []byte // instructions, without locals and the final end
}

type wimport struct {
	mod, name string
	typ       int
}

type wexport struct {
	name string
	kind byte // 0 function, 2 memory
	idx  int
}

type wmod struct {
	types   [][2][]byte // params, results (value type bytes)
	imports []wimport
	funcs   []wfunc
	memory  bool
	exports []wexport
}

func uleb(v uint64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

func sleb(v int64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

func wname(s string) []byte { return append(uleb(uint64(len(s))), s...) }

func section(id byte, items ...[]byte) []byte {
	body := uleb(uint64(len(items)))
	for _, it := range items {
		body = append(body, it...)
	}
	return append(append([]byte{id}, uleb(uint64(len(body)))...), body...)
}

func (m wmod) bytes() []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	var items [][]byte
	for _, t := range m.types {
		it := append([]byte{0x60}, uleb(uint64(len(t[0])))...)
		it = append(it, t[0]...)
		it = append(it, uleb(uint64(len(t[1])))...)
		items = append(items, append(it, t[1]...))
	}
	out = append(out, section(1, items...)...)
	items = nil
	for _, im := range m.imports {
		items = append(items, append(append(append(wname(im.mod), wname(im.name)...), 0), uleb(uint64(im.typ))...))
	}
	if len(items) > 0 {
		out = append(out, section(2, items...)...)
	}
	items = nil
	for _, f := range m.funcs {
		items = append(items, uleb(uint64(f.typ)))
	}
	out = append(out, section(3, items...)...)
	if m.memory {
		out = append(out, section(5, []byte{0, 1})...) // one page, no maximum
	}
	items = nil
	for _, e := range m.exports {
		items = append(items, append(append(wname(e.name), e.kind), uleb(uint64(e.idx))...))
	}
	out = append(out, section(7, items...)...)
	items = nil
	for _, f := range m.funcs {
		body := append([]byte{0}, f.body...) // no locals
		body = append(body, 0x0b)
		items = append(items, append(uleb(uint64(len(body))), body...))
	}
	out = append(out, section(10, items...)...)
	return out
}

const i32 = 0x7f

// Instructions.
func i32const(v int64) []byte { return append([]byte{0x41}, sleb(v)...) }
func call(idx int) []byte     { return append([]byte{0x10}, uleb(uint64(idx))...) }
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var (
	opDrop        = []byte{0x1a}
	opUnreachable = []byte{0x00}
	opLoopForever = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b} // loop br 0 end
)

// i32store stores value at addr (both constants).
func i32store(addr, value int64) []byte {
	return cat(i32const(addr), i32const(value), []byte{0x36, 0x02, 0x00})
}

// abiModule is a minimal ABI v1 guest: the cove imports, a one-page memory,
// cove_abi_version returning 1, cove_alloc returning alloc, the given
// cove_batch body (which must leave an i32 on the stack) and _initialize
// body. Function indices: 0 output, 1 key, 2 emit, then 3 _initialize,
// 4 cove_abi_version, 5 cove_alloc, 6 cove_batch.
func abiModule(initBody, batchBody []byte, alloc int64) []byte {
	return wmod{
		types: [][2][]byte{
			{{i32, i32}, {i32}},              // 0: output, key, cove_batch
			{{i32, i32, i32, i32, i32}, nil}, // 1: emit
			{nil, nil},                       // 2: _initialize
			{nil, {i32}},                     // 3: cove_abi_version
			{{i32}, {i32}},                   // 4: cove_alloc
		},
		imports: []wimport{{"cove", "output", 0}, {"cove", "key", 0}, {"cove", "emit", 1}},
		funcs: []wfunc{
			{typ: 2, body: initBody},
			{typ: 3, body: i32const(1)},
			{typ: 4, body: i32const(alloc)},
			{typ: 0, body: batchBody},
		},
		memory: true,
		exports: []wexport{
			{"memory", 2, 0}, {"_initialize", 0, 3}, {"cove_abi_version", 0, 4},
			{"cove_alloc", 0, 5}, {"cove_batch", 0, 6},
		},
	}.bytes()
}
