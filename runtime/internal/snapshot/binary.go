package snapshot

import (
	"errors"
	"fmt"
)

// errTruncated is the reader's error for input that ends too early.
var errTruncated = errors.New("unexpected end")

// reader decodes the WebAssembly binary format from b. Every method checks
// bounds and the canonical limits of LEB128 (at most ceil(N/7) bytes, unused
// bits of the last byte a sign extension or zero), as the specification does.
type reader struct {
	b   []byte
	off int
}

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if uint64(n) > uint64(len(r.b)-r.off) {
		return nil, errTruncated
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

func (r *reader) skip(n int) error {
	if n > len(r.b)-r.off {
		return errTruncated
	}
	r.off += n
	return nil
}

// u32 reads an unsigned LEB128 of at most 32 bits.
func (r *reader) u32() (uint32, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == 4 && c&0xf0 != 0 {
			return 0, errors.New("u32 out of range")
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("u32 too long")
}

// sleb reads a signed LEB128 of at most bits bits (32, 33 or 64).
func (r *reader) sleb(bits int) (int64, error) {
	var v int64
	shift := 0
	maxBytes := (bits + 6) / 7
	for i := 0; i < maxBytes; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == maxBytes-1 {
			// The last byte's bits beyond the value's width must all equal
			// its sign bit, and it cannot continue.
			if c&0x80 != 0 {
				return 0, fmt.Errorf("s%d too long", bits)
			}
			used := bits - 7*i // value bits in this byte, sign bit included
			rest := int8(c<<1) >> 1
			if hi := rest >> (used - 1); hi != 0 && hi != -1 {
				return 0, fmt.Errorf("s%d out of range", bits)
			}
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("s%d too long", bits)
}

// name reads a length-prefixed UTF-8 name (validity is the engine's check).
func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	return string(b), err
}

// appendU32 appends v as an unsigned LEB128.
func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// appendS32 appends v as a signed LEB128.
func appendS32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// appendI32Const appends i32.const of the 32 bits of v.
func appendI32Const(b []byte, v uint32) []byte {
	return appendS32(append(b, opI32Const), int32(v))
}

// appendName appends a length-prefixed name.
func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}

// appendSection appends a section with its id and size.
func appendSection(b []byte, id byte, body []byte) []byte {
	b = append(b, id)
	b = appendU32(b, uint32(len(body)))
	return append(b, body...)
}
