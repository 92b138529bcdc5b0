package connectors

import (
	"encoding/binary"
	"fmt"
	"io"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/covedata/cove"
)

// MaxIPCColumns bounds the fields (nested ones included) and metadata
// entries of an Arrow IPC schema.
const MaxIPCColumns = 10000

// arrow-go sizes slices from the vector lengths of an IPC schema before it
// reads them (make([]arrow.Field, n) with n from the input), so four hostile
// bytes can ask for gigabytes and end the process with a fatal, unrecoverable
// out-of-memory error. These checks walk the schema's flatbuffer first and
// refuse any vector longer than MaxIPCColumns or than the bytes that would
// hold it.

// checkIPCStream checks the schema message at the start of a stream.
func checkIPCStream(name string, head []byte) error {
	if len(head) < 8 {
		return nil // too short for a schema: arrow-go reports it
	}
	n, off := binary.LittleEndian.Uint32(head), 4
	if n == 0xFFFFFFFF {
		n, off = binary.LittleEndian.Uint32(head[4:]), 8
	}
	if int64(n) > int64(len(head)-off) {
		return nil // metadata cut short: arrow-go reports it
	}
	return checkFB(name, head[off:off+int(n)], func(g *fbGuard, root flatbuffers.Table) {
		// Message: header_type (slot 6) 1 = Schema, header (slot 8).
		if t, ok := g.table(root, 8); ok && root.GetByteSlot(6, 0) == 1 {
			g.schema(t)
		}
	})
}

// checkIPCFile checks the footer (and its schema) of an IPC file.
func checkIPCFile(name string, ra io.ReaderAt, size int64) error {
	if size < 10 {
		return nil
	}
	var tail [4]byte
	if _, err := ra.ReadAt(tail[:], size-10); err != nil {
		return err
	}
	n := int64(int32(binary.LittleEndian.Uint32(tail[:])))
	if n <= 0 || n > size-10 || n > ipcMetaLimit {
		return nil // arrow-go reports a bad footer size
	}
	footer := make([]byte, n)
	if _, err := ra.ReadAt(footer, size-10-n); err != nil {
		return err
	}
	return checkFB(name, footer, func(g *fbGuard, root flatbuffers.Table) {
		// Footer: schema (slot 6), dictionaries (8), recordBatches (10);
		// a Block is a 24-byte struct.
		if t, ok := g.table(root, 6); ok {
			g.schema(t)
		}
		g.blocks(root, 8, size-10-n)
		g.blocks(root, 10, size-10-n)
	})
}

// ipcMetaLimit is the metadata size limit given to arrow-go.
const ipcMetaLimit = 64 << 20

type fbGuard struct {
	buf    []byte
	fields int
	err    error
}

func checkFB(name string, buf []byte, walk func(*fbGuard, flatbuffers.Table)) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s: corrupt Arrow IPC metadata (offset out of range)", cove.ErrInvalid, name)
		}
	}()
	if len(buf) < 4 {
		return nil
	}
	g := &fbGuard{buf: buf}
	root := flatbuffers.Table{Bytes: buf, Pos: flatbuffers.GetUOffsetT(buf)}
	walk(g, root)
	if g.err != nil {
		return fmt.Errorf("%w: %s: corrupt Arrow IPC metadata: %v", cove.ErrInvalid, name, g.err)
	}
	return nil
}

// table follows the table reference in slot.
func (g *fbGuard) table(t flatbuffers.Table, slot flatbuffers.VOffsetT) (flatbuffers.Table, bool) {
	o := flatbuffers.UOffsetT(t.Offset(slot))
	if o == 0 || g.err != nil {
		return flatbuffers.Table{}, false
	}
	pos := t.Indirect(o + t.Pos)
	if int(pos)+4 > len(g.buf) {
		g.err = fmt.Errorf("table at %d beyond %d bytes", pos, len(g.buf))
		return flatbuffers.Table{}, false
	}
	return flatbuffers.Table{Bytes: g.buf, Pos: pos}, true
}

// vector checks the vector in slot: at most MaxIPCColumns elements of elem
// bytes, all inside the buffer. It returns its start and length.
func (g *fbGuard) vector(t flatbuffers.Table, slot flatbuffers.VOffsetT, elem int) (flatbuffers.UOffsetT, int) {
	o := flatbuffers.UOffsetT(t.Offset(slot))
	if o == 0 || g.err != nil {
		return 0, 0
	}
	n, start := t.VectorLen(o), t.Vector(o)
	switch {
	case n > MaxIPCColumns:
		g.err = fmt.Errorf("a vector of %d entries, limit %d", n, MaxIPCColumns)
	case int64(start)+int64(n)*int64(elem) > int64(len(g.buf)):
		g.err = fmt.Errorf("a vector of %d entries overruns the %d-byte metadata", n, len(g.buf))
	default:
		return start, n
	}
	return 0, 0
}

// blocks checks a vector of Block structs {offset int64, metaDataLength
// int32, pad, bodyLength int64}: each must lie inside the first end bytes
// of the file, since arrow-go allocates the body size it names.
func (g *fbGuard) blocks(t flatbuffers.Table, slot flatbuffers.VOffsetT, end int64) {
	start, n := g.vector(t, slot, 24)
	for i := 0; i < n && g.err == nil; i++ {
		p := int(start) + 24*i
		off := int64(binary.LittleEndian.Uint64(g.buf[p:]))
		meta := int64(int32(binary.LittleEndian.Uint32(g.buf[p+8:])))
		body := int64(binary.LittleEndian.Uint64(g.buf[p+16:]))
		if off < 0 || meta <= 0 || body < 0 || off > end || meta > end-off || body > end-off-meta {
			g.err = fmt.Errorf("block %d lies outside the file", i)
		}
	}
}

// schema checks Schema: fields (slot 6), custom_metadata (8), features (10).
func (g *fbGuard) schema(s flatbuffers.Table) {
	g.fieldList(s, 6, 0)
	g.vector(s, 8, 4)
	g.vector(s, 10, 8)
}

// fieldList checks a vector of Field tables and their children (Field
// slot 14) and custom_metadata (slot 16).
func (g *fbGuard) fieldList(t flatbuffers.Table, slot flatbuffers.VOffsetT, depth int) {
	start, n := g.vector(t, slot, 4)
	if depth > 64 {
		g.err = fmt.Errorf("fields nested more than 64 deep")
		return
	}
	g.fields += n
	if g.fields > MaxIPCColumns {
		g.err = fmt.Errorf("more than %d fields", MaxIPCColumns)
		return
	}
	for i := 0; i < n && g.err == nil; i++ {
		pos := t.Indirect(start + flatbuffers.UOffsetT(i*4))
		if int(pos)+4 > len(g.buf) {
			g.err = fmt.Errorf("field at %d beyond %d bytes", pos, len(g.buf))
			return
		}
		f := flatbuffers.Table{Bytes: g.buf, Pos: pos}
		g.fieldList(f, 14, depth+1)
		g.vector(f, 16, 4)
	}
}
