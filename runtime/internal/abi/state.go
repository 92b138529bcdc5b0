package abi

import (
	"encoding/binary"
	"strconv"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
)

// Limits bound what one guest instance may make the host hold.
type Limits struct {
	MaxEmits         int64 // contributions over the instance's life
	MaxKeyBytes      int   // bytes of one key
	MaxKeys          int   // distinct keys
	MaxKeyTotalBytes int64 // bytes of all keys
}

// EmitFunc receives the contributions of one emit or k_emit call: views
// into guest memory or the batch, valid only during the call.
type EmitFunc func(*Emission) error

// State is the host-side state of one guest instance.
type State struct {
	limits   Limits
	outputs  []string
	keys     []string
	keyIDs   map[string]uint32
	keyBytes int64
	emits    int64

	inBatch bool
	rows    uint32
	rec     arrow.RecordBatch // the batch's columns on the host, for kernels
	emit    EmitFunc

	// Kernel handles of the current batch (handle h is handles[h-1]).
	handles     []vec
	handleElems int64
	all         []uint64 // handle 0's bitmap in this batch
	words       pool[uint64]
	runs        pool[Run]
	i32s        pool[int32]
	f64s        pool[float64]
	keyScratch  []byte
	lastKey     []byte
	emission    Emission
	onesBuf     []float64
	valBuf      []float64
	rowBuf      []uint32
	keyBuf      []uint32
	copied      []bool     // columns copied into the guest in this batch (import "column")
	owned       [][]uint32 // buffers of this batch's handles, reused by later batches
	free        [][]uint32

	// OnKey, when set, is told of every newly interned key (the sandbox
	// process forwards keys to its parent this way).
	OnKey func(id uint32, key string)

	// OnWrite, when set, is told of every host write into guest memory
	// (import column, k_read): [off, off+n). Per-unit and block modes mark
	// the pages it touches dirty, so that the snapshot restores them.
	OnWrite func(off, n uint32)

	// MemLimit, when nonzero, is how much of the guest's memory engine
	// bindings hand host calls: the first MemLimit bytes (per-unit and
	// block modes, whose memory holds the dirty map past it).
	MemLimit uint32

	modes // the planning call and block outputs (modes.go)

	// Failure is the first refused host call or emit callback error; the
	// engine binding stops the guest when a call returns an error and reports
	// Failure instead of the engine's own error.
	Failure error
}

// NewState returns the state of a new instance that may emit to outputs.
func NewState(limits Limits, outputs []string) *State {
	return &State{limits: limits, outputs: append([]string(nil), outputs...), keyIDs: map[string]uint32{}}
}

// fail records err as the failure (the first one wins) and returns it.
func (s *State) fail(err error) error {
	if s.Failure == nil {
		s.Failure = err
	}
	return err
}

// Outputs returns the declared outputs.
func (s *State) Outputs() []string { return s.outputs }

// KeyName returns the key interned as id, or "" if there is none.
func (s *State) KeyName(id uint32) string {
	if int64(id) >= int64(len(s.keys)) {
		return ""
	}
	return s.keys[id]
}

// NumKeys is the number of interned keys.
func (s *State) NumKeys() int { return len(s.keys) }

// Emits is the number of contributions accepted so far.
func (s *State) Emits() int64 { return s.emits }

// BeginBatch opens a batch of rec's rows whose contributions go to emit.
// Kernels read rec's columns (the same columns, in the same order, as the
// batch region) until EndBatch.
func (s *State) BeginBatch(rec arrow.RecordBatch, emit EmitFunc) {
	s.inBatch, s.rows, s.rec, s.emit = true, uint32(rec.NumRows()), rec, emit
	s.copied = append(s.copied[:0], make([]bool, rec.NumCols())...)
}

// EndBatch closes the batch and drops its kernel handles.
func (s *State) EndBatch() {
	s.inBatch, s.rows, s.rec, s.emit, s.result = false, 0, nil, nil, nil
	clear(s.handles)
	s.handles, s.handleElems = s.handles[:0], 0
	s.all = nil
	s.words.reset()
	s.runs.reset()
	s.i32s.reset()
	s.f64s.reset()
	s.emission = Emission{}
	// The handles' buffers serve the next batch's kernels (emit callbacks
	// only see them during the call).
	s.free = append(s.free, s.owned...)
	clear(s.owned)
	s.owned = s.owned[:0]
}

// buf returns an empty buffer of capacity n for a handle of this batch,
// reusing one of an earlier batch when it is large enough.
func (s *State) buf(n int) []uint32 {
	for i := len(s.free) - 1; i >= 0; i-- {
		if b := s.free[i]; cap(b) >= n {
			s.free[i] = s.free[len(s.free)-1]
			s.free[len(s.free)-1] = nil
			s.free = s.free[:len(s.free)-1]
			s.owned = append(s.owned, b)
			return b[:0]
		}
	}
	if len(s.free) > 2*MaxHandles { // keep the pool bounded
		clear(s.free)
		s.free = s.free[:0]
	}
	b := make([]uint32, 0, n)
	s.owned = append(s.owned, b)
	return b
}

// Column copies column col of the current batch into guest memory at
// [dst,+n) as a column block: its validity bitmap (when it has nulls), its
// values and its data, each padded to 8 bytes, with the lengths the lazy
// descriptor gives (import "column"; docs/abi.md, "Lazy columns"). n must be
// the block's size; each column is copied at most once per batch.
func (s *State) Column(mem []byte, col, dst, n uint32) error {
	if s.planning {
		return s.fail(planRefused(ImportColumn))
	}
	if !s.inBatch || s.rec == nil {
		return s.fail(abiErr("column call outside a batch"))
	}
	arr, code, err := s.column(col)
	if err != nil {
		return s.fail(err)
	}
	if dst%Align != 0 {
		return s.fail(abiErr("column destination is misaligned (need %d)", Align))
	}
	v, vals, data := parts(arr, code, int64(s.rows))
	if size := blockSize(v, vals, data); int64(n) != size {
		return s.fail(abiErr("column %d needs a block of %d bytes, the guest gave %d", col, size, n))
	}
	b, err := slice(mem, dst, n, "column destination")
	if err != nil {
		return s.fail(err)
	}
	if s.copied[col] {
		return s.fail(abiErr("column %d copied twice in one batch", col))
	}
	s.copied[col] = true
	writeBlock(b, arr, code, v, vals, data)
	s.wrote(dst, n)
	return nil
}

// slice returns mem[ptr:ptr+n] or an ABI error naming what.
func slice(mem []byte, ptr, n uint32, what string) ([]byte, error) {
	end := uint64(ptr) + uint64(n)
	if end > uint64(len(mem)) {
		return nil, abiErr("%s [%d,+%d) is outside guest memory (%d bytes)", what, ptr, n, len(mem))
	}
	return mem[ptr:end:end], nil
}

// Output resolves a declared output name (import "output").
func (s *State) Output(mem []byte, ptr, n uint32) (uint32, error) {
	const maxName = 256
	if n > maxName {
		return 0, s.fail(abiErr("output name of %d bytes is longer than %d", n, maxName))
	}
	b, err := slice(mem, ptr, n, "output name")
	if err != nil {
		return 0, s.fail(err)
	}
	for i, o := range s.outputs {
		if o == string(b) {
			return uint32(i), nil
		}
	}
	e := abiErr("guest asked for an output its manifest does not declare (declared: %d outputs)", len(s.outputs))
	e.Detail = "output " + quoteTrunc(b)
	return 0, s.fail(e)
}

// Key interns a key and returns its id (import "key"). Interning the same
// key twice returns the same id.
func (s *State) Key(mem []byte, ptr, n uint32) (uint32, error) {
	if s.planning {
		return 0, s.fail(planRefused(ImportKey))
	}
	if int64(n) > int64(s.limits.MaxKeyBytes) {
		return 0, s.fail(limitErr("key of %d bytes exceeds the limit of %d bytes", n, s.limits.MaxKeyBytes))
	}
	b, err := slice(mem, ptr, n, "key")
	if err != nil {
		return 0, s.fail(err)
	}
	if id, ok := s.keyIDs[string(b)]; ok {
		return id, nil
	}
	id, err := s.intern(string(b))
	if err != nil {
		return 0, s.fail(err)
	}
	return id, nil
}

// intern adds a new key k (or finds it) within the key limits.
func (s *State) intern(k string) (uint32, error) {
	if id, ok := s.keyIDs[k]; ok {
		return id, nil
	}
	if len(k) > s.limits.MaxKeyBytes {
		return 0, limitErr("key of %d bytes exceeds the limit of %d bytes", len(k), s.limits.MaxKeyBytes)
	}
	if len(s.keys) >= s.limits.MaxKeys {
		return 0, limitErr("more than %d distinct keys", s.limits.MaxKeys)
	}
	if s.keyBytes+int64(len(k)) > s.limits.MaxKeyTotalBytes {
		return 0, limitErr("keys exceed %d bytes in all", s.limits.MaxKeyTotalBytes)
	}
	id := uint32(len(s.keys))
	s.keys = append(s.keys, k)
	s.keyIDs[k] = id
	s.keyBytes += int64(len(k))
	if s.OnKey != nil {
		s.OnKey(id, k)
	}
	return id, nil
}

// Emit checks one emit call and hands its contributions to the batch's
// EmitFunc (import "emit").
func (s *State) Emit(mem []byte, output, rowsPtr, keysPtr, valuesPtr, count uint32) error {
	if s.planning {
		return s.fail(planRefused(ImportEmit))
	}
	if !s.inBatch {
		return s.fail(abiErr("emit outside a batch"))
	}
	if int64(output) >= int64(len(s.outputs)) {
		return s.fail(abiErr("emit to output id %d, but %d outputs are declared", output, len(s.outputs)))
	}
	if s.isBlock(output) {
		return s.fail(abiErr("emit to block output %d: its vector comes through import result", output))
	}
	if int64(count) > s.limits.MaxEmits-s.emits {
		return s.fail(limitErr("more than %d contributions", s.limits.MaxEmits))
	}
	if count > 1<<28 {
		return s.fail(abiErr("emit count %d is too large for one call", count))
	}
	if rowsPtr%4 != 0 || keysPtr%4 != 0 || valuesPtr%8 != 0 {
		return s.fail(abiErr("emit arrays are misaligned (rows and keys need 4, values 8)"))
	}
	rb, err := slice(mem, rowsPtr, 4*count, "emit rows")
	if err != nil {
		return s.fail(err)
	}
	kb, err := slice(mem, keysPtr, 4*count, "emit keys")
	if err != nil {
		return s.fail(err)
	}
	vb, err := slice(mem, valuesPtr, 8*count, "emit values")
	if err != nil {
		return s.fail(err)
	}
	rows, keys, values := view[uint32](rb, int(count)), view[uint32](kb, int(count)), view[float64](vb, int(count))
	nkeys := uint32(len(s.keys))
	for i := range rows {
		if rows[i] >= s.rows {
			return s.fail(abiErr("emit names row %d of a %d-row batch", rows[i], s.rows))
		}
		if keys[i] >= nkeys {
			return s.fail(abiErr("emit names key id %d, but %d keys are interned", keys[i], nkeys))
		}
	}
	s.emits += int64(count)
	if count == 0 {
		return nil
	}
	e := &s.emission
	*e = Emission{Output: int(output), Rows: rows, Keys: keys, Values: values}
	if err := s.emit(e); err != nil {
		return s.fail(err)
	}
	return nil
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// view reads b as n little-endian values of T: in place when the host is
// little-endian and b is aligned, else as a copy.
func view[T uint32 | float64 | int32 | int64](b []byte, n int) []T {
	if n == 0 {
		return nil
	}
	var zero T
	size := int(unsafe.Sizeof(zero))
	p := unsafe.Pointer(unsafe.SliceData(b))
	if littleEndian && uintptr(p)%uintptr(size) == 0 {
		return unsafe.Slice((*T)(p), n)
	}
	out := make([]T, n)
	for i := range out {
		switch size {
		case 4:
			*(*uint32)(unsafe.Pointer(&out[i])) = binary.LittleEndian.Uint32(b[4*i:])
		case 8:
			*(*uint64)(unsafe.Pointer(&out[i])) = binary.LittleEndian.Uint64(b[8*i:])
		}
	}
	return out
}

// quoteTrunc quotes guest bytes for debug detail, at most 64 bytes of them.
func quoteTrunc(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}
