package snapshot

import "encoding/binary"

// Take returns a snapshot of the guest's memory, a copy of mem[:GuestBytes],
// and clears the dirty map, so that the next Restore copies back only what
// is written after it. mem is the whole linear memory.
func Take(mem []byte, l Layout) []byte {
	snap := make([]byte, l.GuestBytes)
	copy(snap, mem[:l.GuestBytes])
	clear(mem[l.MapOffset : l.MapOffset+l.MapLen])
	return snap
}

// Restore copies back from snap every 4 KiB page whose map byte is set,
// clears the map, and returns the number of pages copied. mem is the whole
// linear memory, snap a result of Take for the same layout. The map is read
// 32 bytes at a time and runs of dirty pages are copied at once, so the
// cost is a scan of MapLen/32 strides plus the copy of what was dirtied.
func Restore(mem, snap []byte, l Layout) int {
	m := mem[l.MapOffset : l.MapOffset+l.MapLen]
	mem = mem[:l.GuestBytes]
	snap = snap[:l.GuestBytes]
	pages := 0
	run := -1 // first page of the current run of dirty pages, or -1
	const stride = 32
	i := 0
	for ; i <= len(m)-stride; i += stride {
		s := m[i : i+stride : i+stride]
		if le.Uint64(s)|le.Uint64(s[8:])|le.Uint64(s[16:])|le.Uint64(s[24:]) == 0 {
			if run >= 0 {
				pages += flush(mem, snap, run, i)
				run = -1
			}
			continue
		}
		pages += scan(mem, snap, s, i, &run)
	}
	if i < len(m) { // MapLen is a multiple of 16: one half stride left
		pages += scan(mem, snap, m[i:], i, &run)
	}
	if run >= 0 {
		pages += flush(mem, snap, run, len(m))
	}
	return pages
}

var le = binary.LittleEndian

// scan restores the dirty pages of map bytes s (pages from first on),
// extending or ending the current run, and clears s.
func scan(mem, snap, s []byte, first int, run *int) int {
	pages := 0
	for j, c := range s {
		switch {
		case c != 0 && *run < 0:
			*run = first + j
		case c == 0 && *run >= 0:
			pages += flush(mem, snap, *run, first+j)
			*run = -1
		}
	}
	clear(s)
	return pages
}

// flush copies pages [from, to) back and returns their number.
func flush(mem, snap []byte, from, to int) int {
	copy(mem[from<<pageShift:to<<pageShift], snap[from<<pageShift:to<<pageShift])
	return to - from
}

// Mark marks the pages of [off, off+n) as dirty: the host calls it for
// every write of its own into guest memory. The part of the range beyond
// the guest's memory is ignored.
func Mark(mem []byte, l Layout, off, n uint64) {
	if n == 0 || off >= l.GuestBytes {
		return
	}
	end := l.GuestBytes
	if n < end-off {
		end = off + n
	}
	m := mem[l.MapOffset : l.MapOffset+l.MapLen]
	for p := off >> pageShift; p <= (end-1)>>pageShift; p++ {
		m[p] = 1
	}
}
