package snapshot

import (
	"fmt"

	"github.com/covedata/cove"
)

const (
	// PageSize is the granule of dirty tracking: one map byte per 4 KiB of
	// guest memory.
	PageSize = 4096
	// WasmPageSize is a WebAssembly page.
	WasmPageSize = 65536
	// MaxGuestPages is the largest guest memory M: M plus its map's pages
	// must fit the 65536 pages of a 32-bit memory.
	MaxGuestPages = 65520

	mapBytesPerWasmPage = WasmPageSize / PageSize // 16
	pageShift           = 12                      // log2(PageSize)
)

// Layout is where things lie in an instrumented module's linear memory: the
// guest's M pages, then the map's pages, whose last MapLen bytes are the
// dirty map. The map ends where memory ends, so that the mark of any page
// at or beyond M lies beyond memory: a store outside the guest's pages
// traps on its own mark, before it writes (see "The rewrite" in the
// package doc).
type Layout struct {
	GuestPages uint32 // M: the guest-visible memory, in 64 KiB pages
	Pages      uint32 // M + the map's pages: the memory's fixed initial = maximum
	GuestBytes uint64 // M·65536: host calls must see only mem[:GuestBytes]
	MapOffset  uint64 // Pages·65536 − MapLen: the dirty map starts here
	MapLen     uint64 // M·16: one byte per 4 KiB page of the guest's memory
}

// NewLayout is the layout of a guest of guestPages pages. It refuses, with
// cove.ErrInvalid, guestPages outside 1..MaxGuestPages.
func NewLayout(guestPages uint32) (Layout, error) {
	if guestPages < 1 || guestPages > MaxGuestPages {
		return Layout{}, fmt.Errorf("%w: guest memory of %d pages is outside 1..%d", cove.ErrInvalid, guestPages, MaxGuestPages)
	}
	mapLen := uint64(guestPages) * mapBytesPerWasmPage
	mapPages := (mapLen + WasmPageSize - 1) / WasmPageSize
	return Layout{
		GuestPages: guestPages,
		Pages:      guestPages + uint32(mapPages),
		GuestBytes: uint64(guestPages) * WasmPageSize,
		MapOffset:  (uint64(guestPages)+mapPages)*WasmPageSize - mapLen,
		MapLen:     mapLen,
	}, nil
}

// MemoryBytes is the size of the whole linear memory.
func (l Layout) MemoryBytes() uint64 { return uint64(l.Pages) * WasmPageSize }
