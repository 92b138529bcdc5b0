// Package wire frames Cove's HE messages: a magic, a version, a kind byte,
// then length-prefixed fields. Every read is bounded, since these bytes cross
// trust boundaries (provider ↔ sandbox ↔ operator).
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	magic   = "COVEHE"
	version = 1
	// MaxMessage bounds a whole message (a column of 2^20 values at the
	// default CKKS set is about 128 MiB; keys about 100 MiB).
	MaxMessage = 1 << 31
	// MaxFields bounds the number of fields in one message.
	MaxFields = 1 << 20
)

// Kinds of messages.
const (
	KindKeygenShare byte = iota + 1
	KindPublicKeys
	KindColumn
	KindSecret
	KindAggregate
	KindShareRequest
	KindReleaseShare
	KindRelease
	KindOperatorKey
	KindQuery
	KindQueryReply
	KindOperatorSecret
)

// ErrFormat reports bytes that are not a well-formed message.
var ErrFormat = errors.New("malformed message")

// Encode frames fields as a message of the given kind.
func Encode(kind byte, fields ...[]byte) []byte {
	n := len(magic) + 2 + 4
	for _, f := range fields {
		n += 8 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, magic...)
	b = append(b, version, kind)
	b = binary.BigEndian.AppendUint32(b, uint32(len(fields)))
	for _, f := range fields {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// Parse parses a message of the given kind with exactly want fields (want
// < 0: any number). Fields alias b.
func Parse(b []byte, kind byte, want int) ([][]byte, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("%w: %d bytes exceed %d", ErrFormat, len(b), MaxMessage)
	}
	h := len(magic) + 2 + 4
	if len(b) < h || string(b[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: bad header", ErrFormat)
	}
	if b[len(magic)] != version {
		return nil, fmt.Errorf("%w: version %d", ErrFormat, b[len(magic)])
	}
	if b[len(magic)+1] != kind {
		return nil, fmt.Errorf("%w: kind %d, want %d", ErrFormat, b[len(magic)+1], kind)
	}
	n := binary.BigEndian.Uint32(b[len(magic)+2:])
	if n > MaxFields || (want >= 0 && int(n) != want) {
		return nil, fmt.Errorf("%w: %d fields", ErrFormat, n)
	}
	rest := b[h:]
	out := make([][]byte, 0, n)
	for range n {
		if len(rest) < 8 {
			return nil, fmt.Errorf("%w: truncated", ErrFormat)
		}
		l := binary.BigEndian.Uint64(rest)
		rest = rest[8:]
		if l > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: truncated field", ErrFormat)
		}
		out = append(out, rest[:l:l])
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrFormat, len(rest))
	}
	return out, nil
}

// Uint64 encodes v as 8 bytes.
func Uint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// ReadUint64 decodes 8 bytes.
func ReadUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: integer of %d bytes", ErrFormat, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}
