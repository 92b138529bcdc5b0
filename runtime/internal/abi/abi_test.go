package abi

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestEncodeLayout(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"zero", "one", "", "three"}, []bool{true, true, false, true})
	bb := array.NewBooleanBuilder(mem)
	bb.AppendValues([]bool{true, false, true, true}, nil)
	s, b := sb.NewArray(), bb.NewArray()
	sb.Release()
	bb.Release()
	full := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "s", Type: s.DataType()}, {Name: "b", Type: b.DataType()}}, nil),
		[]arrow.Array{s, b}, 4)
	s.Release()
	b.Release()
	defer full.Release()
	rec := full.NewSlice(1, 4) // offsets: "one", null, "three"; bits 0,1,1
	defer rec.Release()

	size, err := RegionSize(rec)
	if err != nil {
		t.Fatal(err)
	}
	region := make([]byte, size)
	for i := range region {
		region[i] = 0xee // old guest memory must not show through
	}
	if err := Encode(region, rec); err != nil {
		t.Fatal(err)
	}
	u := func(off int) int { return int(binary.LittleEndian.Uint32(region[off:])) }
	if u(0) != Version || u(4) != 3 || u(8) != 2 || u(12) != int(size) {
		t.Fatalf("header % x", region[:16])
	}
	d := HeaderSize // column 0: s
	if name := string(region[u(d) : u(d)+u(d+4)]); name != "s" || u(d+8) != int(TypeUTF8) {
		t.Fatalf("column 0 = %q type %d", name, u(d+8))
	}
	if v := region[u(d+12)]; v != 0b101 {
		t.Errorf("validity = %08b, want 00000101", v)
	}
	offs := u(d + 16)
	data := region[u(d+24) : u(d+24)+u(d+28)]
	if got := []int{u(offs), u(offs + 4), u(offs + 8), u(offs + 12)}; got[0] != 0 || got[1] != 3 || got[2] != 3 || got[3] != 8 || string(data) != "onethree" {
		t.Errorf("offsets %v data %q", got, data)
	}
	d += ColumnDescSize // column 1: b
	if u(d+12) != 0 || u(d+20) != 1 || region[u(d+16)] != 0b110 {
		t.Errorf("bool column: validity %d, len %d, bits %08b", u(d+12), u(d+20), region[u(d+16)])
	}
	for _, x := range []int{u(HeaderSize + 16), u(HeaderSize + 24), u(d + 16)} {
		if x%Align != 0 {
			t.Errorf("buffer at %d is not %d-aligned", x, Align)
		}
	}
}

func TestStateChecks(t *testing.T) {
	s := NewState(Limits{MaxEmits: 3, MaxKeyBytes: 4, MaxKeys: 2, MaxKeyTotalBytes: 6}, []string{"o"})
	mem := make([]byte, 64)
	copy(mem, "abcdefgh")
	if _, err := s.Key(mem, 0, 5); !isKind(err, KindLimit) {
		t.Errorf("long key: %v", err)
	}
	s.Failure = nil
	a, _ := s.Key(mem, 0, 4)
	a2, _ := s.Key(mem, 0, 4)
	b, _ := s.Key(mem, 4, 2)
	if a != 0 || a2 != 0 || b != 1 || s.KeyName(1) != "ef" || s.KeyName(9) != "" {
		t.Errorf("ids %d %d %d", a, a2, b)
	}
	if _, err := s.Key(mem, 6, 1); !isKind(err, KindLimit) {
		t.Errorf("third key: %v", err)
	}
	if _, err := s.Output(mem, 60, 8); !isKind(err, KindABI) {
		t.Errorf("name past the end: %v", err)
	}
	if err := s.Emit(mem, 0, 16, 16, 16, 1); !isKind(err, KindABI) || !strings.Contains(err.Error(), "outside a batch") {
		t.Errorf("emit outside a batch: %v", err)
	}
	var seen int
	s.BeginBatch(twoRows(), func(e *Emission) error { seen += len(e.Rows); return nil })
	if err := s.Emit(mem, 0, 16, 16, 16, 3); err != nil || seen != 3 {
		t.Errorf("emit: %v (%d seen)", err, seen)
	}
	if err := s.Emit(mem, 0, 16, 16, 16, 1); !isKind(err, KindLimit) {
		t.Errorf("emit past MaxEmits: %v", err)
	}
}

func isKind(err error, kind string) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}

func twoRows() arrow.RecordBatch {
	b := array.NewInt64Builder(memory.NewGoAllocator())
	b.AppendValues([]int64{1, 2}, nil)
	a := b.NewArray()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "n", Type: a.DataType()}}, nil), []arrow.Array{a}, 2)
}

func TestLoadBitmap(t *testing.T) {
	src := []byte{0xff, 0b1010_0101, 0, 0xff, 0b0000_0011, 0x5a, 0xc3, 0x81, 0x7e, 0xff, 0x01, 0x80}
	for _, off := range []int{0, 1, 3, 7, 8, 13} {
		for _, n := range []int{0, 1, 3, 8, 13, 33, 63, 64, 65, 80, len(src)*8 - off} {
			if off+n > len(src)*8 {
				continue
			}
			got := make([]uint64, nwords(n))
			for i := range got {
				got[i] = 0xdead // overwritten
			}
			loadBitmap(got, src, off, n)
			for r := range nwords(n) * 64 {
				want := r < n && src[(off+r)>>3]&(1<<((off+r)&7)) != 0
				if have := got[r>>6]&(1<<(r&63)) != 0; have != want {
					t.Fatalf("off=%d n=%d: bit %d = %v, want %v", off, n, r, have, want)
				}
			}
			if c := countRange(got, 0, n); c != count(got) {
				t.Fatalf("off=%d n=%d: countRange %d, count %d", off, n, c, count(got))
			}
		}
	}
}
