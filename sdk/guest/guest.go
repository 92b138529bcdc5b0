package guest

import (
	"errors"
	"runtime"
	"strconv"
	"strings"
	"unsafe"
)

// Handler processes one batch: a record batch (batch mode), one privacy
// unit's rows (unit mode) or one block's (block mode); in the planning call
// (plan mode) it builds the plan from a Batch with the schema only.
// Returning an error fails the batch (the run, in batch mode; that unit or
// block, in unit and block modes; the plan, in plan mode).
type Handler func(*Batch) error

// host is what the SDK needs from the Cove host: the three imports of module
// "cove" on wasip1, a fake in RunLocal. Each method stops the guest (or, for
// the fake, panics with hostError) when the host refuses the call.
type host interface {
	output(name string) uint32
	key(k string) uint32
	emit(output uint32, rows, keys []uint32, values []float64)
	// Host kernels (docs/abi.md, "Host kernels").
	kfilter(sel, col, op uint32, arg []byte) uint32
	kbucket(sel uint32, cols []uint32) uint32
	kemit(output, h, col uint32)
	kselect(rows []uint32) uint32
	klen(h uint32) uint32
	kread(h, what, from uint32, dst []uint32) uint32
	// column copies column col of a lazy batch into dst (docs/abi.md,
	// "Lazy columns").
	column(col uint32, dst []byte)
	// plan hands the job's plan (the planning call, cove_plan).
	plan(js []byte)
	// result hands a block's vector for a block output (block mode).
	result(output uint32, v []float64)
}

// flushAt bounds the contributions buffered per output before an early flush.
const flushAt = 1 << 16

// KeySeparator joins the parts of a key.
const KeySeparator = "\x1f"

// state is everything the SDK keeps between host calls.
type state struct {
	host    host
	handler Handler
	outputs map[string]*Emitter
	active  []*Emitter // outputs with buffered contributions, in first-use order
	keys    map[string]uint32
	batch   *Batch // the batch being processed, nil outside one
	// lastKey/lastID remember the key of the previous Add: consecutive rows
	// usually share a key, and comparing string headers is far cheaper than a
	// map lookup in WebAssembly.
	lastKey string
	lastID  uint32
	// lazy: the host sends lazy batch regions (cove_features agreed on it).
	lazy bool
	// colBufs[i] holds column i of lazy batches, reused batch after batch.
	colBufs [][]uint64
	// results are the outputs given a vector (Result) in this batch.
	results []uint32
}

func newState(h host) *state {
	return &state{host: h, outputs: map[string]*Emitter{}, keys: map[string]uint32{}}
}

// cur is the state the package-level functions use: the wasm host's on
// wasip1, RunLocal's fake host during RunLocal.
var cur = newState(wasmHost())

// Handle registers the job's batch handler. Call it from init.
func Handle(h Handler) { cur.handler = h }

// Emitter buffers the contributions to one declared output.
type Emitter struct {
	st     *state
	name   string
	id     uint32
	rows   []uint32
	keys   []uint32
	values []float64
}

// Output returns the output of that name, which the manifest must declare; an
// undeclared name stops the job. Repeated calls return the same Emitter.
func Output(name string) *Emitter {
	st := cur
	if o, ok := st.outputs[name]; ok {
		return o
	}
	if st.host == nil {
		panic("guest: no Cove host: run under Cove or through RunLocal")
	}
	o := &Emitter{st: st, name: name, id: st.host.output(name)}
	st.outputs[name] = o
	return o
}

// Name is the output's name.
func (o *Emitter) Name() string { return o.name }

// Add contributes value to the aggregate of key, on behalf of row's privacy
// unit. row must be a row of the current batch.
func (o *Emitter) Add(row int, key string, value float64) {
	st := o.st
	if st.batch == nil {
		panic("guest: Add outside a batch")
	}
	st.batch.planning("Emitter.Add")
	if uint(row) >= uint(st.batch.rows) {
		panic(rowRange(row, st.batch.rows))
	}
	var id uint32
	if len(key) == len(st.lastKey) && unsafe.StringData(key) == unsafe.StringData(st.lastKey) && len(key) > 0 {
		id = st.lastID
	} else {
		var ok bool
		if id, ok = st.keys[key]; !ok {
			id = st.host.key(key)
			st.keys[strings.Clone(key)] = id // the key may point into the batch region
		}
		// Holding key keeps what it points into alive, so the identity test
		// above can never match a different string.
		st.lastKey, st.lastID = key, id
	}
	if len(o.rows) == 0 {
		st.active = append(st.active, o)
	}
	o.rows = append(o.rows, uint32(row))
	o.keys = append(o.keys, id)
	o.values = append(o.values, value)
	if len(o.rows) >= flushAt {
		o.flush()
	}
}

// Count contributes 1 to the count of key, on behalf of row's privacy unit.
func (o *Emitter) Count(row int, key string) { o.Add(row, key, 1) }

func (o *Emitter) flush() {
	if len(o.rows) > 0 {
		o.st.host.emit(o.id, o.rows, o.keys, o.values)
	}
	o.reset()
}

func (o *Emitter) reset() { o.rows, o.keys, o.values = o.rows[:0], o.keys[:0], o.values[:0] }

// Result hands v, the current block's vector for the block output named
// output (block mode). The host calls the handler once per block with the
// block's rows; the handler must hand each block output's vector once,
// with as many values as the manifest's dimension for it. The host clamps
// every coordinate to the output's bounds and releases the mean over the
// blocks; a block whose handler fails counts as the output's default
// vector (so fail, by returning an error, rather than hand a made-up
// vector for a block the computation does not fit). The host copies v at
// once.
func Result(output string, v []float64) {
	st := cur
	b := st.batch
	if b == nil {
		panic("guest: Result outside a batch")
	}
	b.planning("Result")
	o := Output(output)
	for _, id := range st.results {
		if id == o.id {
			panic("guest: Result for output " + q(output) + " twice in one block")
		}
	}
	st.results = append(st.results, o.id)
	st.host.result(o.id, v)
}

// Key joins group-by parts into one key, separated by U+001F. A separator
// inside a part is replaced by U+FFFD so that keys stay unambiguous.
func Key(parts ...string) string {
	clean := true
	for _, p := range parts {
		if strings.Contains(p, KeySeparator) {
			clean = false
			break
		}
	}
	if clean {
		if len(parts) == 1 {
			return parts[0]
		}
		return strings.Join(parts, KeySeparator)
	}
	fixed := make([]string, len(parts))
	for i, p := range parts {
		fixed[i] = strings.ReplaceAll(p, KeySeparator, "\uFFFD")
	}
	return strings.Join(fixed, KeySeparator)
}

// run decodes region, calls the handler and flushes the outputs. A handler
// error or panic fails the batch: buffered contributions are dropped.
// hostError panics (from the fake host) pass through.
func (st *state) run(region []byte) (err error) {
	if st.handler == nil {
		return errors.New("guest: no handler: call guest.Handle from init")
	}
	var b *Batch
	if st.lazy {
		b, err = decodeLazy(region, st)
	} else {
		b, err = decode(region)
	}
	if err != nil {
		return err
	}
	// The region and column buffers are reused: a key remembered from an
	// earlier batch may point at bytes that now say something else.
	st.lastKey, st.lastID = "", 0
	st.results = st.results[:0]
	st.batch = b
	defer func() {
		st.batch = nil
		if r := recover(); r != nil {
			if he, ok := r.(hostError); ok {
				panic(he)
			}
			err = errors.New("panic: " + panicText(r) + "\n" + stack())
		}
		if err != nil {
			for _, o := range st.active {
				o.reset()
			}
			st.active = st.active[:0]
		}
	}()
	if err = st.handler(b); err != nil {
		return err
	}
	for _, o := range st.active {
		o.flush()
	}
	st.active = st.active[:0]
	return nil
}

// hostError is how the fake host stops a guest, like a trap in wasm.
type hostError struct{ msg string }

// Formatting without fmt keeps fmt (and reflect) out of jobs that do not
// use it: about 0.8 MiB of module.
func itoa(i int) string { return strconv.Itoa(i) }
func q(s string) string { return strconv.Quote(s) }

func rowRange(row, n int) string {
	return "guest: row " + itoa(row) + " out of range [0," + itoa(n) + ")"
}

// panicText renders a recovered panic value.
func panicText(r any) string {
	switch v := r.(type) {
	case error:
		return v.Error()
	case string:
		return v
	case interface{ String() string }:
		return v.String()
	case int:
		return itoa(v)
	}
	return "(a panic value of a type the SDK does not print)"
}

func stack() string {
	buf := make([]byte, 16<<10)
	return string(buf[:runtime.Stack(buf, false)])
}
