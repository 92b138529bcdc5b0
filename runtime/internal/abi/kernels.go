package abi

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Filter operators (docs/abi.md, "Host kernels").
const (
	OpNotNull uint32 = 0
	OpEq      uint32 = 1
	OpNe      uint32 = 2
	OpLt      uint32 = 3
	OpLe      uint32 = 4
	OpGt      uint32 = 5
	OpGe      uint32 = 6
	OpIsNull  uint32 = 7
)

// Kernel limits per batch.
const (
	MaxHandles    = 256 // live handles in one batch
	MaxKeyColumns = 16  // columns of one bucket call
	// handleSlack is added to the per-batch element budget (HandleRowsFactor
	// × rows) so that tiny batches are not starved.
	handleSlack      = 1 << 16
	HandleRowsFactor = 16
)

// NoColumn as a value column of KEmit means "count": every value is 1.
const NoColumn = math.MaxUint32

// vec is what a handle names: rows of the batch, with a key per row for a
// grouping. A dense vec (every kernel result over handle 0 or an ascending
// k_select) is a bitmap and, for a grouping, runs of rows sharing a key
// (dense.go). A listed vec (from a k_select out of order) is rows with a key
// id per row for a grouping (keys nil for a selection).
type vec struct {
	rows []uint32
	keys []uint32

	dense   bool
	grouped bool // dense: a grouping (runs set)
	bits    []uint64
	n       int // dense: set bits
	runs    []Run
}

// isGrouping reports whether v has keys.
func (v vec) isGrouping() bool {
	if v.dense {
		return v.grouped
	}
	return v.keys != nil
}

// length is the number of rows of v.
func (v vec) length() int {
	if v.dense {
		return v.n
	}
	return len(v.rows)
}

// handle returns the vector of handle h; 0 is every row of the batch.
func (s *State) handle(h uint32) (vec, error) {
	if h == 0 {
		return s.allRows(), nil
	}
	if int64(h) > int64(len(s.handles)) {
		return vec{}, abiErr("handle %d does not exist in this batch (%d made)", h, len(s.handles))
	}
	return s.handles[h-1], nil
}

// newHandle stores v and returns its handle. Its cost against the element
// budget is its rows (twice for a grouping), or what the host holds of a
// dense one when less: a bitmap (rows/32 u32s) and three u32s per run.
func (s *State) newHandle(v vec) (uint32, error) {
	if len(s.handles) >= MaxHandles {
		return 0, limitErr("more than %d kernel handles in one batch", MaxHandles)
	}
	n := int64(len(v.rows))
	if v.keys != nil {
		n *= 2
	}
	if v.dense {
		n = int64(v.n)
		if v.grouped {
			n *= 2
		}
		n = min(n, 2*int64(len(v.bits))+3*int64(len(v.runs)))
	}
	if s.handleElems+n > HandleRowsFactor*int64(s.rows)+handleSlack {
		return 0, limitErr("kernel results exceed %d× the batch's rows", HandleRowsFactor)
	}
	s.handleElems += n
	s.handles = append(s.handles, v)
	return uint32(len(s.handles)), nil
}

func (s *State) kernelCheck() error {
	if s.planning {
		return planRefused("kernel")
	}
	if !s.inBatch || s.rec == nil {
		return abiErr("kernel call outside a batch")
	}
	return nil
}

func (s *State) column(c uint32) (arrow.Array, uint32, error) {
	if int64(c) >= s.rec.NumCols() {
		return nil, 0, abiErr("column %d does not exist (%d columns)", c, s.rec.NumCols())
	}
	col := s.rec.Column(int(c))
	code, _ := TypeCode(col.DataType())
	return col, code, nil
}

// isNull reports whether row r of col is null (a dictionary row is null
// when its entry is).
func isNull(col arrow.Array, r int) bool {
	if col.IsNull(r) {
		return true
	}
	if d, ok := col.(*array.Dictionary); ok && d.Dictionary().NullN() > 0 {
		return d.Dictionary().IsNull(d.GetValueIndex(r))
	}
	return false
}

// nullBits returns col's validity bitmap and the bit of its first row, or
// nil when no row is null. slow reports a dictionary with null entries,
// whose rows need isNull.
func nullBits(col arrow.Array) (bits []byte, off int, slow bool) {
	if d, ok := col.(*array.Dictionary); ok && d.Dictionary().NullN() > 0 {
		return nil, 0, true
	}
	if col.NullN() == 0 {
		return nil, 0, false
	}
	return col.Data().Buffers()[0].Bytes(), col.Data().Offset(), false
}

// valid reports whether bit off+r of an Arrow validity bitmap is set.
func valid(bits []byte, off int, r uint32) bool {
	i := uint(off) + uint(r)
	return bits[i>>3]&(1<<(i&7)) != 0
}

// KFilter keeps the rows of handle sel whose value in column col passes op
// against the argument at [argPtr,+argLen) (import "k_filter").
func (s *State) KFilter(mem []byte, sel, col, op, argPtr, argLen uint32) (uint32, error) {
	if err := s.kernelCheck(); err != nil {
		return 0, s.fail(err)
	}
	in, err := s.handle(sel)
	if err != nil {
		return 0, s.fail(err)
	}
	arr, code, err := s.column(col)
	if err != nil {
		return 0, s.fail(err)
	}
	if op > OpIsNull {
		return 0, s.fail(abiErr("unknown filter operator %d", op))
	}
	if argLen > uint32(s.limits.MaxKeyBytes) && argLen > 8 {
		return 0, s.fail(limitErr("filter argument of %d bytes exceeds the limit of %d bytes", argLen, s.limits.MaxKeyBytes))
	}
	arg, err := slice(mem, argPtr, argLen, "filter argument")
	if err != nil {
		return 0, s.fail(err)
	}
	if in.dense {
		v, err := s.filterDense(in, arr, code, op, arg)
		if err != nil {
			return 0, s.fail(err)
		}
		h, err := s.newHandle(v)
		if err != nil {
			return 0, s.fail(err)
		}
		return h, nil
	}
	out := s.buf(len(in.rows))
	nulls := hasNulls(arr)
	bits, boff, slow := nullBits(arr)
	if op == OpNotNull || op == OpIsNull {
		want := op == OpIsNull
		switch {
		case !nulls:
			if !want {
				out = append(out, in.rows...)
			}
		case slow:
			for _, r := range in.rows {
				if isNull(arr, int(r)) == want {
					out = append(out, r)
				}
			}
		case want:
			for _, r := range in.rows {
				if !valid(bits, boff, r) {
					out = append(out, r)
				}
			}
		default:
			for _, r := range in.rows {
				if valid(bits, boff, r) {
					out = append(out, r)
				}
			}
		}
		return s.filtered(out, in.keys, in.rows)
	}
	var pass func(r uint32) bool
	switch code {
	case TypeUTF8, TypeDictUTF8:
		target := string(arg)
		test := func(v string) bool { return cmpOp(op, strings.Compare(v, target)) }
		if code == TypeUTF8 {
			a := arr.(*array.String)
			pass = func(r uint32) bool { return test(a.Value(int(r))) }
		} else {
			d := arr.(*array.Dictionary)
			dict := d.Dictionary().(*array.String)
			ok := make([]bool, dict.Len())
			for i := range ok {
				ok[i] = test(dict.Value(i))
			}
			idx := make([]int32, d.Len())
			putIndicesInto(idx, d.Indices())
			pass = func(r uint32) bool { i := idx[r]; return i >= 0 && int(i) < len(ok) && ok[i] }
		}
	case TypeFloat64:
		if len(arg) != 8 {
			return 0, s.fail(abiErr("filter on a float64 column needs an 8-byte f64 argument, got %d bytes", len(arg)))
		}
		x := math.Float64frombits(binary.LittleEndian.Uint64(arg))
		v := arr.(*array.Float64).Float64Values()
		out = filterOrdered(out, in.rows, v, op, x, bits, boff)
		return s.filtered(out, in.keys, in.rows)
	default:
		if len(arg) != 8 {
			return 0, s.fail(abiErr("filter on a %s column needs an 8-byte i64 argument, got %d bytes", TypeName(code), len(arg)))
		}
		x := int64(binary.LittleEndian.Uint64(arg))
		switch a := arr.(type) {
		case *array.Int64:
			out = filterOrdered(out, in.rows, a.Int64Values(), op, x, bits, boff)
		case *array.Int32:
			out = filterOrdered(out, in.rows, widen(a.Int32Values()), op, x, bits, boff)
		case *array.Timestamp:
			out = filterOrdered(out, in.rows, asInt64(a.TimestampValues()), op, x, bits, boff)
		case *array.Date32:
			out = filterOrdered(out, in.rows, widen(asInt32(a.Date32Values())), op, x, bits, boff)
		case *array.Date64:
			out = filterOrdered(out, in.rows, asInt64(a.Date64Values()), op, x, bits, boff)
		case *array.Boolean:
			pass = func(r uint32) bool {
				var v int64
				if a.Value(int(r)) {
					v = 1
				}
				return cmpOp(op, cmp3(v, x))
			}
		}
		if pass == nil {
			return s.filtered(out, in.keys, in.rows)
		}
	}
	for _, r := range in.rows {
		if (!nulls || !isNull(arr, int(r))) && pass(r) {
			out = append(out, r)
		}
	}
	return s.filtered(out, in.keys, in.rows)
}

// filtered makes the handle of a filter result; a grouping stays a grouping
// (its keys follow its rows).
func (s *State) filtered(out, keys, rows []uint32) (uint32, error) {
	v := vec{rows: out}
	if keys != nil {
		v.keys = s.buf(len(out))
		j := 0
		for i, r := range rows {
			if j < len(out) && out[j] == r {
				v.keys = append(v.keys, keys[i])
				j++
			}
		}
	}
	h, err := s.newHandle(v)
	if err != nil {
		return 0, s.fail(err)
	}
	return h, nil
}

func widen(v []int32) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

func asInt64[T ~int64](v []T) []int64 {
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(v))), len(v))
}

func asInt32[T ~int32](v []T) []int32 {
	return unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(v))), len(v))
}

func cmp3[T int32 | int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpOp(op uint32, c int) bool {
	switch op {
	case OpEq:
		return c == 0
	case OpNe:
		return c != 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	case OpGt:
		return c > 0
	case OpGe:
		return c >= 0
	}
	return false
}

// filterOrdered is the tight loop of numeric filters, one loop per
// operator; bits (nil: no nulls) is the column's validity from bit off.
// NaN never passes (but ne).
func filterOrdered[T int64 | float64](out, rows []uint32, v []T, op uint32, x T, bits []byte, off int) []uint32 {
	if bits == nil {
		switch op {
		case OpEq:
			for _, r := range rows {
				if v[r] == x {
					out = append(out, r)
				}
			}
		case OpNe:
			for _, r := range rows {
				if v[r] != x {
					out = append(out, r)
				}
			}
		case OpLt:
			for _, r := range rows {
				if v[r] < x {
					out = append(out, r)
				}
			}
		case OpLe:
			for _, r := range rows {
				if v[r] <= x {
					out = append(out, r)
				}
			}
		case OpGt:
			for _, r := range rows {
				if v[r] > x {
					out = append(out, r)
				}
			}
		default:
			for _, r := range rows {
				if v[r] >= x {
					out = append(out, r)
				}
			}
		}
		return out
	}
	switch op {
	case OpEq:
		for _, r := range rows {
			if v[r] == x && valid(bits, off, r) {
				out = append(out, r)
			}
		}
	case OpNe:
		for _, r := range rows {
			if v[r] != x && valid(bits, off, r) {
				out = append(out, r)
			}
		}
	case OpLt:
		for _, r := range rows {
			if v[r] < x && valid(bits, off, r) {
				out = append(out, r)
			}
		}
	case OpLe:
		for _, r := range rows {
			if v[r] <= x && valid(bits, off, r) {
				out = append(out, r)
			}
		}
	case OpGt:
		for _, r := range rows {
			if v[r] > x && valid(bits, off, r) {
				out = append(out, r)
			}
		}
	default:
		for _, r := range rows {
			if v[r] >= x && valid(bits, off, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

func putIndicesInto(dst []int32, idx arrow.Array) {
	if a, ok := idx.(*array.Int32); ok {
		copy(dst, a.Int32Values())
		return
	}
	for r := range dst {
		dst[r] = indexAt(idx, r)
	}
}

// KSelect makes a selection of n rows the guest lists at rowsPtr (u32 each)
// (import "k_select").
func (s *State) KSelect(mem []byte, rowsPtr, n uint32) (uint32, error) {
	if err := s.kernelCheck(); err != nil {
		return 0, s.fail(err)
	}
	if n > s.rows {
		return 0, s.fail(abiErr("selection of %d rows from a %d-row batch", n, s.rows))
	}
	if rowsPtr%4 != 0 {
		return 0, s.fail(abiErr("selection rows are misaligned (need 4)"))
	}
	b, err := slice(mem, rowsPtr, 4*n, "selection rows")
	if err != nil {
		return 0, s.fail(err)
	}
	rows := view[uint32](b, int(n))
	ascending := true
	for i, r := range rows {
		if r >= s.rows {
			return 0, s.fail(abiErr("selection names row %d of a %d-row batch", r, s.rows))
		}
		if i > 0 && r <= rows[i-1] {
			ascending = false
		}
	}
	v := vec{rows: append(s.buf(int(n)), rows...)}
	if ascending {
		// Rows in the batch's order, each once: the same rows as a bitmap.
		v = s.selectDense(rows)
	}
	h, err := s.newHandle(v)
	if err != nil {
		return 0, s.fail(err)
	}
	return h, nil
}

// KLen is the number of rows of handle h (import "k_len").
func (s *State) KLen(h uint32) (uint32, error) {
	if err := s.kernelCheck(); err != nil {
		return 0, s.fail(err)
	}
	v, err := s.handle(h)
	if err != nil {
		return 0, s.fail(err)
	}
	return uint32(v.length()), nil
}

// KRead copies up to n elements of handle h, from element from, into guest
// memory at dst as u32: its rows (what 0) or its key ids (what 1). It
// returns the number copied (import "k_read").
func (s *State) KRead(mem []byte, h, what, from, dst, n uint32) (uint32, error) {
	if err := s.kernelCheck(); err != nil {
		return 0, s.fail(err)
	}
	v, err := s.handle(h)
	if err != nil {
		return 0, s.fail(err)
	}
	switch what {
	case 0:
	case 1:
		if !v.isGrouping() {
			return 0, s.fail(abiErr("handle %d is a selection: it has no keys", h))
		}
	default:
		return 0, s.fail(abiErr("k_read of unknown part %d", what))
	}
	total := v.length()
	if int64(from) > int64(total) {
		return 0, s.fail(abiErr("k_read from element %d of %d", from, total))
	}
	m := total - int(from)
	if int64(n) < int64(m) {
		m = int(n)
	}
	if dst%4 != 0 {
		return 0, s.fail(abiErr("k_read destination is misaligned (need 4)"))
	}
	b, err := slice(mem, dst, uint32(4*m), "k_read destination")
	if err != nil {
		return 0, s.fail(err)
	}
	if v.dense {
		k := readDense(v, what, int(from), b)
		s.wrote(dst, uint32(4*k))
		return uint32(k), nil
	}
	src := v.rows
	if what == 1 {
		src = v.keys
	}
	src = src[from : int(from)+m]
	for i, x := range src {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	s.wrote(dst, uint32(4*len(src)))
	return uint32(len(src)), nil
}

// KBucket groups the rows of handle sel by the values of ncols columns whose
// indices (u32) are at colsPtr: each distinct tuple becomes a key, interned
// like those of import "key" (docs/abi.md, "Keys from columns"). Rows with
// a null in a key column are left out (import "k_bucket").
func (s *State) KBucket(mem []byte, sel, colsPtr, ncols uint32) (uint32, error) {
	if err := s.kernelCheck(); err != nil {
		return 0, s.fail(err)
	}
	in, err := s.handle(sel)
	if err != nil {
		return 0, s.fail(err)
	}
	if ncols > MaxKeyColumns {
		return 0, s.fail(abiErr("bucket by %d columns, more than %d", ncols, MaxKeyColumns))
	}
	if colsPtr%4 != 0 {
		return 0, s.fail(abiErr("bucket columns are misaligned (need 4)"))
	}
	cb, err := slice(mem, colsPtr, 4*ncols, "bucket columns")
	if err != nil {
		return 0, s.fail(err)
	}
	cols := append([]uint32(nil), view[uint32](cb, int(ncols))...)
	if in.dense {
		v, err := s.bucketDense(in, cols)
		if err != nil {
			return 0, s.fail(err)
		}
		h, err := s.newHandle(v)
		if err != nil {
			return 0, s.fail(err)
		}
		return h, nil
	}
	rows := in.rows
	if ncols == 0 {
		// Every row gets the empty key: the rows stay as they are.
		id, err := s.intern("")
		if err != nil {
			return 0, s.fail(err)
		}
		keys := s.buf(len(rows))[:len(rows)]
		for i := range keys {
			keys[i] = id
		}
		h, err := s.newHandle(vec{rows: rows, keys: keys})
		if err != nil {
			return 0, s.fail(err)
		}
		return h, nil
	}
	// Per column: a local id per row, and the key part of each local id.
	combo := make([]uint32, len(rows)) // combined id per row, valid where keep
	keep := make([]bool, len(rows))
	for i := range keep {
		keep[i] = true
	}
	// nodes[c] is the key (so far) of combined id c; id 0 is the empty tuple.
	nodes := []string{""}
	for ci, c := range cols {
		arr, code, err := s.column(c)
		if err != nil {
			return 0, s.fail(err)
		}
		if code != TypeUTF8 && code != TypeDictUTF8 && code != TypeBool && width(code) == 0 {
			return 0, s.fail(abiErr("bucket by a %s column", TypeName(code)))
		}
		local, parts := localIDs(arr, code, rows, keep)
		next := map[uint64]uint32{}
		var nextNodes []string
		lastIn, lastOut := ^uint64(0), uint32(0)
		for i := range rows {
			if !keep[i] {
				continue
			}
			k := uint64(combo[i])<<32 | uint64(local[i])
			if k == lastIn {
				combo[i] = lastOut
				continue
			}
			id, ok := next[k]
			if !ok {
				id = uint32(len(nextNodes))
				key := parts[local[i]]
				if ci > 0 {
					key = nodes[combo[i]] + KeySeparator + key
				}
				nextNodes = append(nextNodes, key)
				next[k] = id
			}
			lastIn, lastOut = k, id
			combo[i] = id
		}
		nodes = nextNodes
	}
	// Intern each combined key once.
	ids := make([]uint32, len(nodes))
	for j := range ids {
		ids[j] = ^uint32(0)
	}
	out := vec{rows: s.buf(len(rows)), keys: s.buf(len(rows))}
	for i, r := range rows {
		if !keep[i] {
			continue
		}
		c := combo[i]
		if ids[c] == ^uint32(0) {
			id, err := s.intern(nodes[c])
			if err != nil {
				return 0, s.fail(err)
			}
			ids[c] = id
		}
		out.rows = append(out.rows, r)
		out.keys = append(out.keys, ids[c])
	}
	h, err := s.newHandle(out)
	if err != nil {
		return 0, s.fail(err)
	}
	return h, nil
}

// KeySeparator joins the parts of a key made from several columns.
const KeySeparator = "\x1f"

// KeyPart formats one value as a key part: decimal integers (timestamps and
// dates as their raw integer), Go's shortest 'g' float, true/false, strings
// with the separator replaced by U+FFFD.
func keyPartString(s string) string {
	if strings.Contains(s, KeySeparator) {
		return strings.ReplaceAll(s, KeySeparator, "\uFFFD")
	}
	return strings.Clone(s)
}

// localIDs gives each kept row a dense id per distinct value of the column
// (clearing keep for null rows) and the key part of each id.
func localIDs(arr arrow.Array, code uint32, rows []uint32, keep []bool) ([]uint32, []string) {
	local := make([]uint32, len(rows))
	var parts []string
	nulls := hasNulls(arr)
	switch a := arr.(type) {
	case *array.Dictionary:
		dict := a.Dictionary().(*array.String)
		idx := make([]int32, a.Len())
		putIndicesInto(idx, a.Indices())
		byIdx := make([]uint32, dict.Len())
		for i := range byIdx {
			byIdx[i] = ^uint32(0)
		}
		for i, r := range rows {
			if !keep[i] || (nulls && isNull(arr, int(r))) {
				keep[i] = false
				continue
			}
			x := idx[r]
			if x < 0 || int(x) >= len(byIdx) {
				keep[i] = false
				continue
			}
			if byIdx[x] == ^uint32(0) {
				byIdx[x] = uint32(len(parts))
				parts = append(parts, keyPartString(dict.Value(int(x))))
			}
			local[i] = byIdx[x]
		}
	case *array.String:
		m := map[string]uint32{}
		var last string
		lastID, have := uint32(0), false
		for i, r := range rows {
			if !keep[i] || (nulls && a.IsNull(int(r))) {
				keep[i] = false
				continue
			}
			v := a.Value(int(r)) // a view into the Arrow buffer
			if have && v == last {
				local[i] = lastID
				continue
			}
			id, ok := m[v]
			if !ok {
				id = uint32(len(parts))
				s := strings.Clone(v)
				parts = append(parts, keyPartString(s))
				m[s] = id
			}
			last, lastID, have = v, id, true
			local[i] = id
		}
	case *array.Int64:
		v := a.Int64Values()
		bits, off, _ := nullBits(arr)
		m := map[int64]uint32{}
		var last int64
		lastID, have := uint32(0), false
		for i, r := range rows {
			if !keep[i] || (bits != nil && !valid(bits, off, r)) {
				keep[i] = false
				continue
			}
			x := v[r]
			if have && x == last {
				local[i] = lastID
				continue
			}
			id, ok := m[x]
			if !ok {
				id = uint32(len(parts))
				parts = append(parts, strconv.FormatInt(x, 10))
				m[x] = id
			}
			last, lastID, have = x, id, true
			local[i] = id
		}
	default:
		get, format := int64Getter(arr, code)
		m := map[int64]uint32{}
		var last int64
		lastID, have := uint32(0), false
		for i, r := range rows {
			if !keep[i] || (nulls && arr.IsNull(int(r))) {
				keep[i] = false
				continue
			}
			v := get(int(r))
			if have && v == last {
				local[i] = lastID
				continue
			}
			id, ok := m[v]
			if !ok {
				id = uint32(len(parts))
				parts = append(parts, format(v))
				m[v] = id
			}
			last, lastID, have = v, id, true
			local[i] = id
		}
	}
	return local, parts
}

// int64Getter reads a fixed-width or bool column as int64 bits and formats
// them as a key part.
func int64Getter(arr arrow.Array, code uint32) (func(int) int64, func(int64) string) {
	dec := func(v int64) string { return strconv.FormatInt(v, 10) }
	switch a := arr.(type) {
	case *array.Int64:
		v := a.Int64Values()
		return func(r int) int64 { return v[r] }, dec
	case *array.Int32:
		v := a.Int32Values()
		return func(r int) int64 { return int64(v[r]) }, dec
	case *array.Timestamp:
		v := a.TimestampValues()
		return func(r int) int64 { return int64(v[r]) }, dec
	case *array.Date32:
		v := a.Date32Values()
		return func(r int) int64 { return int64(v[r]) }, dec
	case *array.Date64:
		v := a.Date64Values()
		return func(r int) int64 { return int64(v[r]) }, dec
	case *array.Float64:
		v := a.Float64Values()
		return func(r int) int64 {
				x := v[r]
				if x == 0 {
					x = 0 // -0 and 0 are one key
				}
				return int64(math.Float64bits(x))
			}, func(b int64) string {
				return strconv.FormatFloat(math.Float64frombits(uint64(b)), 'g', -1, 64)
			}
	case *array.Boolean:
		return func(r int) int64 {
				if a.Value(r) {
					return 1
				}
				return 0
			}, func(b int64) string {
				return strconv.FormatBool(b == 1)
			}
	}
	panic("abi: no int64 getter for " + TypeName(code))
}

// KEmit hands the host-made contributions of grouping h to output: for each
// row, its key and its value in column col converted to f64 (NoColumn: 1),
// skipping rows where col is null (import "k_emit").
func (s *State) KEmit(output, h, col uint32) error {
	if err := s.kernelCheck(); err != nil {
		return s.fail(err)
	}
	if int64(output) >= int64(len(s.outputs)) {
		return s.fail(abiErr("k_emit to output id %d, but %d outputs are declared", output, len(s.outputs)))
	}
	if s.isBlock(output) {
		return s.fail(abiErr("k_emit to block output %d: its vector comes through import result", output))
	}
	v, err := s.handle(h)
	if err != nil {
		return s.fail(err)
	}
	if !v.isGrouping() {
		return s.fail(abiErr("k_emit needs a grouping (from k_bucket), handle %d is a selection", h))
	}
	if v.dense {
		return s.emitDense(output, v, col)
	}
	rows, keys := v.rows, v.keys
	var values []float64
	if col == NoColumn {
		values = s.ones(len(rows))
	} else {
		arr, code, err := s.column(col)
		if err != nil {
			return s.fail(err)
		}
		if code == TypeUTF8 || code == TypeDictUTF8 {
			return s.fail(abiErr("k_emit values from a %s column", TypeName(code)))
		}
		values = s.scratchValues(len(rows))
		nulls := hasNulls(arr)
		n := 0
		switch a := arr.(type) {
		case *array.Float64:
			x := a.Float64Values()
			if !nulls {
				for i, r := range v.rows {
					values[i] = x[r]
				}
				n = len(v.rows)
				break
			}
			// Rows usually come through a not-null filter: gather in place
			// until the first null row, then compact into scratch.
			bits, off, _ := nullBits(arr)
			vk := v.keys[:len(v.rows)]
			i := 0
			for ; i < len(v.rows); i++ {
				r := v.rows[i]
				if !valid(bits, off, r) {
					break
				}
				values[i] = x[r]
			}
			n = i
			if i < len(v.rows) {
				rows, keys = s.scratchRowsKeys(len(v.rows))
				copy(rows, v.rows[:n])
				copy(keys, vk[:n])
				for ; i < len(v.rows); i++ {
					if r := v.rows[i]; valid(bits, off, r) {
						rows[n], keys[n], values[n] = r, vk[i], x[r]
						n++
					}
				}
			}
		default:
			if nulls {
				rows, keys = s.scratchRowsKeys(len(rows))
			}
			get, _ := int64Getter(arr, code)
			for i, r := range v.rows {
				if nulls && arr.IsNull(int(r)) {
					continue
				}
				if nulls {
					rows[n], keys[n] = r, v.keys[i]
				}
				values[n] = float64(get(int(r)))
				n++
			}
		}
		rows, keys, values = rows[:n], keys[:n], values[:n]
	}
	if int64(len(rows)) > s.limits.MaxEmits-s.emits {
		return s.fail(limitErr("more than %d contributions", s.limits.MaxEmits))
	}
	s.emits += int64(len(rows))
	if len(rows) == 0 {
		return nil
	}
	e := &s.emission
	*e = Emission{Output: int(output), Rows: rows, Keys: keys, Values: values}
	if err := s.emit(e); err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *State) ones(n int) []float64 {
	if cap(s.onesBuf) < n {
		s.onesBuf = make([]float64, n)
		for i := range s.onesBuf {
			s.onesBuf[i] = 1
		}
	}
	return s.onesBuf[:n]
}

func (s *State) scratchValues(n int) []float64 {
	if cap(s.valBuf) < n {
		s.valBuf = make([]float64, n)
	}
	return s.valBuf[:n]
}

func (s *State) scratchRowsKeys(n int) ([]uint32, []uint32) {
	if cap(s.rowBuf) < n {
		s.rowBuf, s.keyBuf = make([]uint32, n), make([]uint32, n)
	}
	return s.rowBuf[:n], s.keyBuf[:n]
}
