package guest

import (
	"errors"
	"math"
	"sync"
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
// assumed little-endian, like wasm). Call Output inside the handler.
func RunLocal(handler Handler, outputs []string, cols ...LocalColumn) ([]Contribution, error) {
	localMu.Lock()
	defer localMu.Unlock()
	region, err := encodeLocal(cols)
	if err != nil {
		return nil, err
	}
	fh := &fakeHost{outputs: outputs, rows: 0}
	if len(cols) > 0 {
		fh.rows = cols[0].n
	}
	st := newState(fh)
	st.handler = handler
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
		default:
			put(5, c.stride*rows)
			c.fill(region[off : off+c.stride*rows])
			off += align(c.stride * rows)
		}
	}
	return region, nil
}

// fakeHost stands in for the Cove host in RunLocal.
type fakeHost struct {
	outputs []string
	rows    int
	keys    []string
	out     []Contribution
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
	h.keys = append(h.keys, k)
	return uint32(len(h.keys) - 1)
}

func (h *fakeHost) emit(output uint32, rows, keys []uint32, values []float64) {
	for i := range rows {
		if int(rows[i]) >= h.rows || int(keys[i]) >= len(h.keys) {
			panic(hostError{"guest: emit names a row or key that does not exist"})
		}
		h.out = append(h.out, Contribution{Output: h.outputs[output], Row: int(rows[i]), Key: h.keys[keys[i]], Value: values[i]})
	}
}
