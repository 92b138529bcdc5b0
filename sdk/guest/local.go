package guest

import (
	"errors"
	"math"
	"strconv"
	"sync"
	"unsafe"
)

// LocalColumn is a column given to RunLocal.
type LocalColumn struct {
	name   string
	typ    uint32
	n      int
	valid  []bool
	fill   func(values []byte) // fixed-width and bool
	stride int                 // bytes per value; 0 for bool and utf8
	strs   []string
	dict   []string // dictionary columns: the dictionary (values are indices)
}

// LocalInt64 is an int64 column; valid (nil: all valid) marks non-null rows.
func LocalInt64(name string, values []int64, valid []bool) LocalColumn {
	return LocalColumn{name: name, typ: typeInt64, n: len(values), valid: valid, stride: 8, fill: func(b []byte) {
		for i, v := range values {
			le.PutUint64(b[8*i:], uint64(v))
		}
	}}
}

// LocalInt32 is an int32 column; valid (nil: all valid) marks non-null rows.
func LocalInt32(name string, values []int32, valid []bool) LocalColumn {
	return LocalColumn{name: name, typ: typeInt32, n: len(values), valid: valid, stride: 4, fill: func(b []byte) {
		for i, v := range values {
			le.PutUint32(b[4*i:], uint32(v))
		}
	}}
}

// LocalFloat64 is a float64 column; valid (nil: all valid) marks non-null rows.
func LocalFloat64(name string, values []float64, valid []bool) LocalColumn {
	return LocalColumn{name: name, typ: typeFloat64, n: len(values), valid: valid, stride: 8, fill: func(b []byte) {
		for i, v := range values {
			le.PutUint64(b[8*i:], math.Float64bits(v))
		}
	}}
}

// LocalBool is a bool column; valid (nil: all valid) marks non-null rows.
func LocalBool(name string, values []bool, valid []bool) LocalColumn {
	return LocalColumn{name: name, typ: typeBool, n: len(values), valid: valid, fill: func(b []byte) {
		for i, v := range values {
			if v {
				b[i>>3] |= 1 << (uint(i) & 7)
			}
		}
	}}
}

// LocalString is a utf8 column; valid (nil: all valid) marks non-null rows.
func LocalString(name string, values []string, valid []bool) LocalColumn {
	return LocalColumn{name: name, typ: typeUTF8, n: len(values), valid: valid, strs: values}
}

// LocalDictString is a dictionary-encoded utf8 column: row i is
// dict[index[i]]; valid (nil: all valid) marks non-null rows.
func LocalDictString(name string, dict []string, index []int32, valid []bool) LocalColumn {
	c := LocalInt32(name, index, valid)
	c.typ, c.dict = typeDict, dict
	return c
}

// LocalTimestamp is a timestamp column of values in unit since the Unix
// epoch; valid (nil: all valid) marks non-null rows.
func LocalTimestamp(name string, unit TimeUnit, values []int64, valid []bool) LocalColumn {
	c := LocalInt64(name, values, valid)
	c.typ = typeTSSec + uint32(unit)
	return c
}

// LocalDate32 is a date32 column of days since 1970-01-01; valid (nil: all
// valid) marks non-null rows.
func LocalDate32(name string, days []int32, valid []bool) LocalColumn {
	c := LocalInt32(name, days, valid)
	c.typ = typeDate32
	return c
}

// Contribution is one contribution a handler made under RunLocal.
type Contribution struct {
	Output string
	Row    int
	Key    string
	Value  float64
}

var localMu sync.Mutex

// RunLocal runs handler over one batch made of cols, in-process, with a fake
// host that accepts the outputs named and checks what the Cove host checks.
// It returns the contributions in the order the host would receive them.
// The batch goes through the same ABI v1 encoding as under Cove (the host is
// assumed little-endian, like wasm). Call Output inside the handler. A
// vector handed with Result (block mode) comes back as one Contribution per
// coordinate, Row -1 and Key the coordinate's index ("0", "1", ...).
func RunLocal(handler Handler, outputs []string, cols ...LocalColumn) ([]Contribution, error) {
	localMu.Lock()
	defer localMu.Unlock()
	region, err := encodeLocal(cols)
	if err != nil {
		return nil, err
	}
	fh := &fakeHost{outputs: outputs, rows: 0, region: region}
	if len(cols) > 0 {
		fh.rows = cols[0].n
	}
	if fh.eager, err = decode(region); err != nil {
		return nil, err
	}
	st := newState(fh)
	fh.st = st
	st.handler = handler
	if !localEager {
		// Like the Cove host, which offers lazy batches: the handler's
		// column reads go through the column import.
		st.lazy = true
		region = lazyRegion(region)
		fh.copied = make([]bool, len(cols))
	}
	saved := cur
	cur = st
	defer func() { cur = saved }()
	err = func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				he, ok := r.(hostError)
				if !ok {
					panic(r)
				}
				err = errors.New(he.msg)
			}
		}()
		return st.run(region)
	}()
	if err != nil {
		return nil, err
	}
	return fh.out, nil
}

// PlanLocal runs handler's planning call in-process, with a fake host that
// accepts the outputs named, and returns the plan it hands the host: the
// plan IR as JSON, exactly the bytes a Cove host would receive. The handler
// sees only the columns' names and types; their values are ignored, so the
// columns given to RunLocal serve here too, or columns with no values
// (LocalFloat64("PM2.5", nil, nil)).
func PlanLocal(handler Handler, outputs []string, cols ...LocalColumn) ([]byte, error) {
	localMu.Lock()
	defer localMu.Unlock()
	schema := make([]LocalColumn, len(cols))
	for i, c := range cols {
		schema[i] = LocalColumn{name: c.name, typ: c.typ}
	}
	region := schemaRegion(schema)
	fh := &fakeHost{outputs: outputs, planning: true}
	st := newState(fh)
	fh.st = st
	st.handler = handler
	saved := cur
	cur = st
	defer func() { cur = saved }()
	return func() (js []byte, err error) {
		defer func() {
			if r := recover(); r != nil {
				he, ok := r.(hostError)
				if !ok {
					panic(r)
				}
				js, err = nil, errors.New(he.msg)
			}
		}()
		if js, err = st.plan(region); err != nil {
			return nil, err
		}
		if string(js) != string(fh.planJS) {
			return nil, errors.New("guest: the plan handed to the host differs from the plan returned")
		}
		return js, nil
	}()
}

// schemaRegion lays the columns out as a schema region: the header with no
// rows, the descriptors and the names; every buffer empty.
func schemaRegion(cols []LocalColumn) []byte {
	size := headerSize + columnDescSize*len(cols)
	for _, c := range cols {
		size = pad8(size + len(c.name))
	}
	words := make([]uint64, size/8+1)
	region := unsafeBytes(words)[:size]
	le.PutUint32(region[0:], ABIVersion)
	le.PutUint32(region[8:], uint32(len(cols)))
	le.PutUint32(region[12:], uint32(size))
	off := headerSize + columnDescSize*len(cols)
	for i, c := range cols {
		d := region[headerSize+i*columnDescSize:]
		le.PutUint32(d[0:], uint32(off))
		le.PutUint32(d[4:], uint32(len(c.name)))
		le.PutUint32(d[8:], c.typ)
		off = pad8(off + copy(region[off:], c.name))
	}
	return region
}

// encodeLocal lays the columns out as an ABI v1 batch region.
func encodeLocal(cols []LocalColumn) ([]byte, error) {
	rows := 0
	if len(cols) > 0 {
		rows = cols[0].n
	}
	align := func(n int) int { return (n + 7) &^ 7 }
	bitmap := (rows + 7) / 8
	size := headerSize + columnDescSize*len(cols)
	for _, c := range cols {
		if c.n != rows {
			return nil, errors.New("guest: column " + q(c.name) + " has " + itoa(c.n) + " rows, want " + itoa(rows))
		}
		if c.valid != nil && len(c.valid) != rows {
			return nil, errors.New("guest: column " + q(c.name) + " has " + itoa(len(c.valid)) + " validity entries, want " + itoa(rows))
		}
		size = align(size+len(c.name)) + align(bitmap)
		switch c.typ {
		case typeBool:
			size += align(bitmap)
		case typeUTF8:
			size += align(4 * (rows + 1))
			for _, s := range c.strs {
				size += len(s)
			}
			size = align(size)
		case typeDict:
			size += align(4*rows) + align(8+4*(len(c.dict)+1))
			for _, s := range c.dict {
				size += len(s)
			}
			size = align(size)
		default:
			size += align(c.stride * rows)
		}
	}
	// Back the region with uint64s so that it is 8-aligned, as under Cove.
	words := make([]uint64, size/8+1)
	region := unsafeBytes(words)[:size]
	le.PutUint32(region[0:], ABIVersion)
	le.PutUint32(region[4:], uint32(rows))
	le.PutUint32(region[8:], uint32(len(cols)))
	le.PutUint32(region[12:], uint32(size))
	off := headerSize + columnDescSize*len(cols)
	for i, c := range cols {
		d := region[headerSize+i*columnDescSize:]
		put := func(k, v int) { le.PutUint32(d[4*k:], uint32(v)) }
		put(0, off)
		put(1, len(c.name))
		put(2, int(c.typ))
		copy(region[off:], c.name)
		off = align(off + len(c.name))
		if c.valid != nil {
			put(3, off)
			for r, ok := range c.valid {
				if ok {
					region[off+r>>3] |= 1 << (uint(r) & 7)
				}
			}
			off += align(bitmap)
		}
		put(4, off)
		switch c.typ {
		case typeBool:
			put(5, bitmap)
			c.fill(region[off : off+bitmap])
			off += align(bitmap)
		case typeUTF8:
			put(5, 4*(rows+1))
			data := align(off + 4*(rows+1))
			put(6, data)
			pos := 0
			for r, s := range c.strs {
				le.PutUint32(region[off+4*r:], uint32(pos))
				copy(region[data+pos:], s)
				pos += len(s)
			}
			le.PutUint32(region[off+4*rows:], uint32(pos))
			put(7, pos)
			off = align(data + pos)
		case typeDict:
			put(5, 4*rows)
			c.fill(region[off : off+4*rows])
			off += align(4 * rows)
			put(6, off)
			start := off
			le.PutUint32(region[off:], uint32(len(c.dict)))
			off += 8
			data := align(off + 4*(len(c.dict)+1))
			pos := 0
			for j, s := range c.dict {
				le.PutUint32(region[off+4*j:], uint32(pos))
				copy(region[data+pos:], s)
				pos += len(s)
			}
			le.PutUint32(region[off+4*len(c.dict):], uint32(pos))
			put(7, data+pos-start)
			off = align(data + pos)
		default:
			put(5, c.stride*rows)
			c.fill(region[off : off+c.stride*rows])
			off += align(c.stride * rows)
		}
	}
	return region, nil
}

// localEager makes RunLocal send eager batch regions (every column in the
// region), as hosts that do not offer lazy columns do (tests).
var localEager = false

// lazyRegion rewrites an eager batch region as the lazy region the host
// sends instead: the header, lazy descriptors (buffer lengths) and names.
func lazyRegion(eager []byte) []byte {
	ncols := int(le.Uint32(eager[8:]))
	rows := int(le.Uint32(eager[4:]))
	size := headerSize + columnDescSize*ncols
	for i := 0; i < ncols; i++ {
		size = pad8(size + int(le.Uint32(eager[headerSize+i*columnDescSize+4:])))
	}
	words := make([]uint64, size/8+1)
	lazy := unsafeBytes(words)[:size]
	copy(lazy, eager[:headerSize])
	le.PutUint32(lazy[12:], uint32(size))
	off := headerSize + columnDescSize*ncols
	for i := 0; i < ncols; i++ {
		e := eager[headerSize+i*columnDescSize:]
		d := lazy[headerSize+i*columnDescSize:]
		f := func(k int) int { return int(le.Uint32(e[4*k:])) }
		le.PutUint32(d[0:], uint32(off))
		le.PutUint32(d[4:], uint32(f(1)))
		le.PutUint32(d[8:], uint32(f(2)))
		if f(3) != 0 {
			le.PutUint32(d[12:], uint32((rows+7)/8))
		}
		le.PutUint32(d[20:], uint32(f(5)))
		le.PutUint32(d[28:], uint32(f(7)))
		off = pad8(off + copy(lazy[off:], eager[f(0):f(0)+f(1)]))
	}
	return lazy
}

// fakeHost stands in for the Cove host in RunLocal.
type fakeHost struct {
	outputs []string
	rows    int
	keys    []string
	keyIDs  map[string]uint32
	out     []Contribution
	st      *state
	handles []fakeVec
	region  []byte // the eager batch region
	eager   *Batch // region decoded: what the kernels read
	copied  []bool // lazy: columns copied in this batch
	// planning: the call is cove_plan, which may resolve outputs and hand
	// the plan, nothing else.
	planning bool
	planJS   []byte
}

// refuseWhilePlanning stops a guest that calls import name during cove_plan.
func (h *fakeHost) refuseWhilePlanning(name string) {
	if h.planning {
		h.refuse("import " + q(name) + " called during cove_plan")
	}
}

func (h *fakeHost) plan(js []byte) {
	if !h.planning {
		h.refuse("import \"plan\" called outside cove_plan")
	}
	if h.planJS != nil {
		h.refuse("plan handed twice")
	}
	if len(js) > maxPlan {
		h.refuse("plan of " + itoa(len(js)) + " bytes, more than " + itoa(maxPlan))
	}
	h.planJS = append([]byte{}, js...)
}

// result records a block's vector as one contribution per coordinate: Row
// -1, Key the coordinate's index.
func (h *fakeHost) result(output uint32, v []float64) {
	h.refuseWhilePlanning("result")
	if int(output) >= len(h.outputs) {
		h.refuse("output id does not exist")
	}
	for j, x := range v {
		h.out = append(h.out, Contribution{Output: h.outputs[output], Row: -1, Key: itoa(j), Value: x})
	}
}

// column copies column col of the batch as the Cove host does: validity,
// values and data, each padded to 8 bytes, at most once per batch.
func (h *fakeHost) column(col uint32, dst []byte) {
	h.refuseWhilePlanning("column")
	if int(col) >= len(h.copied) {
		h.refuse("column " + itoa(int(col)) + " does not exist")
	}
	if h.copied[col] {
		h.refuse("column " + itoa(int(col)) + " copied twice in one batch")
	}
	h.copied[col] = true
	e := h.region[headerSize+int(col)*columnDescSize:]
	f := func(k int) int { return int(le.Uint32(e[4*k:])) }
	vlen := 0
	if f(3) != 0 {
		vlen = (h.rows + 7) / 8
	}
	if len(dst) != pad8(vlen)+pad8(f(5))+pad8(f(7)) || uintptr(unsafe.Pointer(unsafe.SliceData(dst)))%8 != 0 {
		h.refuse("column block of the wrong size or misaligned")
	}
	clear(dst)
	copy(dst, h.region[f(3):f(3)+vlen])
	copy(dst[pad8(vlen):], h.region[f(4):f(4)+f(5)])
	copy(dst[pad8(vlen)+pad8(f(5)):], h.region[f(6):f(6)+f(7)])
}

type fakeVec struct {
	rows, keys []uint32
	grouped    bool
}

func (h *fakeHost) output(name string) uint32 {
	for i, o := range h.outputs {
		if o == name {
			return uint32(i)
		}
	}
	panic(hostError{"guest: output " + q(name) + " is not declared"})
}

func (h *fakeHost) key(k string) uint32 {
	h.refuseWhilePlanning("key")
	if id, ok := h.keyIDs[k]; ok {
		return id
	}
	if h.keyIDs == nil {
		h.keyIDs = map[string]uint32{}
	}
	h.keys = append(h.keys, k)
	h.keyIDs[k] = uint32(len(h.keys) - 1)
	return uint32(len(h.keys) - 1)
}

func (h *fakeHost) refuse(msg string) { panic(hostError{"guest: " + msg}) }

func (h *fakeHost) vec(id uint32) fakeVec {
	if id == 0 {
		v := fakeVec{rows: make([]uint32, h.rows)}
		for i := range v.rows {
			v.rows[i] = uint32(i)
		}
		return v
	}
	if int(id) > len(h.handles) {
		h.refuse("kernel handle " + itoa(int(id)) + " does not exist")
	}
	return h.handles[id-1]
}

func (h *fakeHost) add(v fakeVec) uint32 {
	h.handles = append(h.handles, v)
	return uint32(len(h.handles))
}

// cell reads row r of column c the way the host's kernels do.
func (h *fakeHost) cell(c uint32, r uint32) (code uint32, null bool, i int64, f float64, s string) {
	b := h.eager
	if int(c) >= len(b.columns) {
		h.refuse("column " + itoa(int(c)) + " does not exist")
	}
	col := &b.columns[c]
	name, row := col.name, int(r)
	code = col.typ
	switch code {
	case typeInt64:
		x := b.Int64(name)
		return code, x.IsNull(row), x.Value(row), 0, ""
	case typeInt32:
		x := b.Int32(name)
		return code, x.IsNull(row), int64(x.Value(row)), 0, ""
	case typeFloat64:
		x := b.Float64(name)
		return code, x.IsNull(row), 0, x.Value(row), ""
	case typeUTF8, typeDict:
		x := b.String(name)
		return code, x.IsNull(row), 0, 0, x.Value(row)
	case typeBool:
		x := b.Bool(name)
		if x.Value(row) {
			i = 1
		}
		return code, x.IsNull(row), i, 0, ""
	case typeTSSec, typeTSMilli, typeTSMicro, typeTSNano:
		x := b.Timestamp(name)
		return code, x.IsNull(row), x.Value(row), 0, ""
	case typeDate32:
		x := b.Date(name)
		return code, x.IsNull(row), x.Days(row), 0, ""
	case typeDate64:
		x := b.Date(name)
		return code, x.IsNull(row), x.ms64[row], 0, ""
	}
	h.refuse("column of unknown type")
	return
}

func cmpOp(op uint32, c int) bool {
	switch op {
	case 1:
		return c == 0
	case 2:
		return c != 0
	case 3:
		return c < 0
	case 4:
		return c <= 0
	case 5:
		return c > 0
	case 6:
		return c >= 0
	}
	return false
}

func (h *fakeHost) kfilter(sel, col, op uint32, arg []byte) uint32 {
	h.refuseWhilePlanning("k_filter")
	in := h.vec(sel)
	out := fakeVec{grouped: in.grouped}
	if op > opIsNull {
		h.refuse("unknown filter operator")
	}
	for j, r := range in.rows {
		code, null, i, f, s := h.cell(col, r)
		var pass bool
		switch {
		case op == opNotNull || op == opIsNull:
			pass = null == (op == opIsNull)
		case null:
		case code == typeUTF8 || code == typeDict:
			c := 0
			if s < string(arg) {
				c = -1
			} else if s > string(arg) {
				c = 1
			}
			pass = cmpOp(op, c)
		case len(arg) != 8:
			h.refuse("filter argument must be 8 bytes")
		case code == typeFloat64:
			x := math.Float64frombits(uint64(le.Uint32(arg)) | uint64(le.Uint32(arg[4:]))<<32)
			pass = (op == 2 && f != x) || (f < x && cmpOp(op, -1)) || (f > x && cmpOp(op, 1)) || (f == x && cmpOp(op, 0))
		default:
			x := int64(uint64(le.Uint32(arg)) | uint64(le.Uint32(arg[4:]))<<32)
			c := 0
			if i < x {
				c = -1
			} else if i > x {
				c = 1
			}
			pass = cmpOp(op, c)
		}
		if pass {
			out.rows = append(out.rows, r)
			if in.grouped {
				out.keys = append(out.keys, in.keys[j])
			}
		}
	}
	return h.add(out)
}

func (h *fakeHost) kbucket(sel uint32, cols []uint32) uint32 {
	h.refuseWhilePlanning("k_bucket")
	in := h.vec(sel)
	out := fakeVec{grouped: true}
rows:
	for _, r := range in.rows {
		parts := make([]string, len(cols))
		for k, c := range cols {
			code, null, i, f, s := h.cell(c, r)
			if null {
				continue rows
			}
			switch code {
			case typeUTF8, typeDict:
				parts[k] = s
			case typeFloat64:
				if f == 0 {
					f = 0
				}
				parts[k] = strconv.FormatFloat(f, 'g', -1, 64)
			case typeBool:
				parts[k] = strconv.FormatBool(i == 1)
			default:
				parts[k] = strconv.FormatInt(i, 10)
			}
		}
		out.rows = append(out.rows, r)
		out.keys = append(out.keys, h.key(Key(parts...)))
	}
	return h.add(out)
}

func (h *fakeHost) kemit(output, id, col uint32) {
	h.refuseWhilePlanning("k_emit")
	v := h.vec(id)
	if !v.grouped {
		h.refuse("k_emit needs a grouping")
	}
	if int(output) >= len(h.outputs) {
		h.refuse("output id does not exist")
	}
	for j, r := range v.rows {
		value := 1.0
		if col != noColumn {
			code, null, i, f, _ := h.cell(col, r)
			switch {
			case null:
				continue
			case code == typeUTF8 || code == typeDict:
				h.refuse("k_emit values from a utf8 column")
			case code == typeFloat64:
				value = f
			default:
				value = float64(i)
			}
		}
		h.out = append(h.out, Contribution{Output: h.outputs[output], Row: int(r), Key: h.keys[v.keys[j]], Value: value})
	}
}

func (h *fakeHost) kselect(rows []uint32) uint32 {
	h.refuseWhilePlanning("k_select")
	for _, r := range rows {
		if int(r) >= h.rows {
			h.refuse("selection names a row that does not exist")
		}
	}
	return h.add(fakeVec{rows: append([]uint32(nil), rows...)})
}

func (h *fakeHost) klen(id uint32) uint32 {
	h.refuseWhilePlanning("k_len")
	return uint32(len(h.vec(id).rows))
}

func (h *fakeHost) kread(id, what, from uint32, dst []uint32) uint32 {
	h.refuseWhilePlanning("k_read")
	v := h.vec(id)
	src := v.rows
	if what == 1 {
		if !v.grouped {
			h.refuse("handle is a selection: it has no keys")
		}
		src = v.keys
	}
	if int(from) > len(src) {
		h.refuse("k_read past the end")
	}
	return uint32(copy(dst, src[from:]))
}

func (h *fakeHost) emit(output uint32, rows, keys []uint32, values []float64) {
	h.refuseWhilePlanning("emit")
	for i := range rows {
		if int(rows[i]) >= h.rows || int(keys[i]) >= len(h.keys) {
			panic(hostError{"guest: emit names a row or key that does not exist"})
		}
		h.out = append(h.out, Contribution{Output: h.outputs[output], Row: int(rows[i]), Key: h.keys[keys[i]], Value: values[i]})
	}
}
