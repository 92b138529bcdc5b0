package guest

import "unsafe"

func unsafeBytes(w []uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), 8*len(w))
}

// le reads and writes little-endian integers (encoding/binary would pull
// reflect into every job).
var le littleEndian

type littleEndian struct{}

func (littleEndian) Uint32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func (littleEndian) PutUint32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func (littleEndian) PutUint64(b []byte, v uint64) {
	le.PutUint32(b, uint32(v))
	le.PutUint32(b[4:], uint32(v>>32))
}
