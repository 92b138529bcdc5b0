package wasmer

import (
	"bytes"
	"testing"
)

// binWithMemory is a minimal binary with the given memory section body (nil for
// none) between a type section and a custom section.
func binWithMemory(mem []byte) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	b = append(b, 1, 1, 0) // type section: zero types
	if mem != nil {
		b = append(b, 5)
		b = appendULEB(b, uint32(len(mem)))
		b = append(b, mem...)
	}
	return append(b, 0, 3, 1, 'x', 7) // custom section "x"
}

func TestCapMemory(t *testing.T) {
	tests := []struct {
		name     string
		mem      []byte
		limit    uint32
		want     []byte // the memory section after capping
		wantFail bool
	}{
		{name: "no maximum gets the limit", mem: []byte{1, 0, 17}, limit: 4096, want: []byte{1, 1, 17, 0x80, 0x20}},
		{name: "larger maximum is lowered", mem: []byte{1, 1, 2, 0x80, 0x80, 4}, limit: 300, want: []byte{1, 1, 2, 0xac, 2}},
		{name: "smaller maximum is kept", mem: []byte{1, 1, 1, 3}, limit: 300, want: []byte{1, 1, 1, 3}},
		{name: "full 4 GiB", mem: []byte{1, 0, 0}, limit: 65536, want: []byte{1, 1, 0, 0x80, 0x80, 4}},
		{name: "initial over the limit", mem: []byte{1, 0, 0x81, 1}, limit: 100, wantFail: true},
		{name: "shared memory", mem: []byte{1, 3, 1, 2}, limit: 100, wantFail: true},
		{name: "memory64", mem: []byte{1, 4, 1}, limit: 100, wantFail: true},
		{name: "truncated", mem: []byte{1, 1, 1}, limit: 100, wantFail: true},
		{name: "trailing bytes", mem: []byte{1, 0, 1, 9}, limit: 100, wantFail: true},
		{name: "overlong integer", mem: []byte{1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0}, limit: 100, wantFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := capMemory(binWithMemory(tc.mem), tc.limit)
			if tc.wantFail {
				if err == nil {
					t.Fatalf("capMemory accepted %x", tc.mem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := binWithMemory(tc.want); !bytes.Equal(got, want) {
				t.Errorf("got  %x\nwant %x", got, want)
			}
		})
	}
	if got, err := capMemory(binWithMemory(nil), 10); err != nil || !bytes.Equal(got, binWithMemory(nil)) {
		t.Errorf("module without memory: %x, %v", got, err)
	}
	for _, bad := range [][]byte{nil, []byte("\x00asm"), []byte("notwasm!"), append(binWithMemory(nil), 1, 0x7f)} {
		if _, err := capMemory(bad, 10); err == nil {
			t.Errorf("capMemory accepted %x", bad)
		}
	}
}
