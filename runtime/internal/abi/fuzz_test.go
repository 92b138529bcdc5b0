package abi

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// fuzzRec is the batch host calls are fuzzed against: every kernel type,
// nulls, sliced at an offset, 70 rows.
var fuzzRec = randomBatch(rand.New(rand.NewPCG(5, 6)), memory.NewGoAllocator(), 70)

// FuzzHostCalls drives a State with a sequence of host calls whose
// arguments (pointers, lengths, handles, columns, operators, key ids) come
// from the input, against a small guest memory the input may also write.
// A call may be refused, but only with an *Error, and nothing may panic;
// every emission the host accepts must name rows of the batch and interned
// keys, and count what it says.
func FuzzHostCalls(f *testing.F) {
	call := func(op byte, args ...uint16) []byte {
		b := []byte{op}
		for _, a := range args {
			b = binary.LittleEndian.AppendUint16(b, a)
		}
		for len(b) < 1+2*6 {
			b = append(b, 0)
		}
		return b
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	// Seeds: the pipelines of the benchmark and the conformance program,
	// and a few refusals.
	f.Add(cat(call(3, 0, 2, 0, 0, 0), call(3, 1, 0, 6, 8, 8), call(4, 2, 16, 2), call(5, 0, 3, 2)))
	f.Add(cat(call(4, 0, 0, 0), call(5, 0, 1, 0xffff), call(8, 1, 1, 3, 512, 40)))
	f.Add(cat(call(10, 0, 7), call(10, 4, 3), call(6, 0, 2), call(4, 1, 16, 1), call(5, 0, 2, 1), call(8, 2, 1, 0, 600, 9)))
	f.Add(cat(call(1, 100, 4), call(10, 8, 0), call(10, 12, 0), call(10, 16, 0), call(2, 0, 8, 12, 16, 1)))
	f.Add(cat(call(9, 3, 1024, 0), call(9, 3, 1024, 0)))
	f.Add(cat(call(3, 0, 99, 0, 0, 0)))
	f.Add(cat(call(8, 0, 0, 0xffff, 4090, 7)))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewState(Limits{MaxEmits: 5000, MaxKeyBytes: 64, MaxKeys: 100, MaxKeyTotalBytes: 2000}, []string{"o", "p"})
		mem := make([]byte, 4096)
		for i := 0; i+4 <= 1024; i += 4 {
			binary.LittleEndian.PutUint32(mem[i:], uint32(i/4%80)) // rows, columns and key ids, mostly valid
		}
		copy(mem[1024:], "stationyear\x1fAotizhongxina")
		rows := uint32(fuzzRec.NumRows())
		var bad string
		s.BeginBatch(fuzzRec, func(e *Emission) error {
			nkeys := uint32(s.NumKeys())
			if e.Output < 0 || e.Output > 1 {
				bad = "output out of range"
			}
			if e.Runs == nil {
				for j, r := range e.Rows {
					if r >= rows || e.Keys[j] >= nkeys {
						bad = "listed contribution outside the batch or the keys"
					}
				}
				return nil
			}
			if len(e.Select) != nwords(int(rows)) || e.ByRow != nil && len(e.ByRow) != int(rows) {
				bad = "ranged emission does not fit the batch"
				return nil
			}
			end := uint32(0)
			for _, r := range e.Runs {
				if r.Start < end || r.End <= r.Start || r.End > rows || r.Key >= nkeys {
					bad = "bad run"
				}
				end = r.End
			}
			if e.Len() != int64(count(e.Select)) || e.Len() == 0 {
				bad = "selected rows outside the runs, or an empty emission"
			}
			return nil
		})
		defer s.EndBatch()
		// arg widens a 16-bit input: small values as they are, the top
		// ones near 2^32 (lengths and pointers that wrap).
		arg := func(b []byte) uint32 {
			v := uint32(binary.LittleEndian.Uint16(b))
			if v >= 0xff00 {
				return ^uint32(0) - (0xffff - v)
			}
			return v
		}
		for len(data) >= 13 {
			op := data[0]
			var a [6]uint32
			for k := range a {
				a[k] = arg(data[1+2*k:])
			}
			data = data[13:]
			var err error
			before := s.Emits()
			switch op % 11 {
			case 0:
				_, err = s.Output(mem, a[0], a[1])
			case 1:
				_, err = s.Key(mem, a[0], a[1])
			case 2:
				err = s.Emit(mem, a[0], a[1], a[2], a[3], a[4])
			case 3:
				_, err = s.KFilter(mem, a[0], a[1], a[2], a[3], a[4])
			case 4:
				_, err = s.KBucket(mem, a[0], a[1], a[2])
			case 5:
				err = s.KEmit(a[0], a[1], a[2])
			case 6:
				_, err = s.KSelect(mem, a[0], a[1])
			case 7:
				_, err = s.KLen(a[0])
			case 8:
				var n uint32
				n, err = s.KRead(mem, a[0], a[1], a[2], a[3], a[4])
				if err == nil && uint64(a[3])+4*uint64(n) > uint64(len(mem)) {
					t.Fatalf("k_read wrote %d elements at %d, past the memory", n, a[3])
				}
			case 9:
				err = s.Column(mem, a[0], a[1], a[2])
			case 10: // the guest writes its memory
				if a[0] < uint32(len(mem))-4 {
					binary.LittleEndian.PutUint32(mem[a[0]:], a[1])
				}
			}
			if bad != "" {
				t.Fatal(bad)
			}
			if s.Emits() > 5000 || s.Emits() < before {
				t.Fatalf("emits %d after %d, limit 5000", s.Emits(), before)
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || s.Failure == nil {
					t.Fatalf("refused with %T %v (failure %v)", err, err, s.Failure)
				}
				return // a refused call stops the guest
			}
		}
	})
}
