package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"sync"

	"github.com/covedata/cove/runtime/wasm"
)

// maxKeptModules bounds the compiled modules the server keeps open.
const maxKeptModules = 64

// modules checks submitted modules by compiling them once per content hash,
// one compilation at a time, and keeps the compiled modules open: a batch
// of the same module is compiled once, and the engine answers the runner's
// later compilations of it from memory. It also keeps the bytes of the
// modules submitted by hash most recently, so that a batch of submissions
// naming one module reads it from the store once.
type modules struct {
	eng wasm.Runtime

	compile sync.Mutex // one compilation at a time bounds its memory

	mu    sync.Mutex
	kept  map[[32]byte]wasm.Module
	order [][32]byte // oldest first

	bin      map[[32]byte][]byte // immutable: shared by every request that names the module
	binOrder [][32]byte          // oldest first
	binBytes int64
	binMax   int64
}

func newModules(eng wasm.Runtime, maxBinBytes int64) *modules {
	return &modules{eng: eng, kept: map[[32]byte]wasm.Module{}, bin: map[[32]byte][]byte{}, binMax: maxBinBytes}
}

// check compiles b, whose sha256 is sum, unless a module of the same hash
// compiled before. b may be a request's scratch memory: what is compiled is
// a copy.
func (m *modules) check(ctx context.Context, sum [32]byte, b []byte) error {
	if m.has(sum) {
		return nil
	}
	m.compile.Lock()
	defer m.compile.Unlock()
	if m.has(sum) {
		return nil
	}
	mod, err := m.eng.Compile(ctx, bytes.Clone(b))
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kept[sum] = mod
	m.order = append(m.order, sum)
	if len(m.order) > maxKeptModules {
		old := m.order[0]
		m.order = m.order[1:]
		m.kept[old].Close(context.WithoutCancel(ctx))
		delete(m.kept, old)
	}
	return nil
}

func (m *modules) has(h [32]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.kept[h]
	return ok
}

// bytes returns the kept bytes of a module, or nil. They must not be
// modified.
func (m *modules) bytes(sum [32]byte) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bin[sum]
}

// keepBytes keeps b (which the caller will not modify) as the bytes of the
// module sum, evicting the oldest kept while over the bound.
func (m *modules) keepBytes(sum [32]byte, b []byte) {
	if int64(len(b)) > m.binMax {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.bin[sum]; ok {
		return
	}
	m.bin[sum] = b
	m.binOrder = append(m.binOrder, sum)
	m.binBytes += int64(len(b))
	for m.binBytes > m.binMax {
		old := m.binOrder[0]
		m.binOrder = m.binOrder[1:]
		m.binBytes -= int64(len(m.bin[old]))
		delete(m.bin, old)
	}
}

func (m *modules) close(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mod := range m.kept {
		mod.Close(ctx)
	}
	m.kept = map[[32]byte]wasm.Module{}
	m.order = nil
	m.bin, m.binOrder, m.binBytes = map[[32]byte][]byte{}, nil, 0
}

// scratch holds request buffers for modules in transit: a submission's
// module is streamed into one and handed to the store, which copies it; the
// buffer then serves the next request.
var scratch = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getScratch() *bytes.Buffer { return scratch.Get().(*bytes.Buffer) }

// putScratch returns a buffer to the pool unless it grew past max: a rare
// huge one is left to the collector.
func putScratch(b *bytes.Buffer, max int64) {
	if int64(b.Cap()) > max+64<<10 {
		return
	}
	b.Reset()
	scratch.Put(b)
}

// presize grows b to hold a body of the declared length (at most max, and
// the 512 bytes more that bytes.Buffer.ReadFrom wants free), so that reading
// it does not copy it on the way. Only authenticated routes call it: a
// declared length costs memory before the bytes arrive.
func presize(b *bytes.Buffer, declared, max int64) {
	if declared > 0 {
		b.Grow(int(min(declared, max)) + bytes.MinRead)
	}
}

func hexSum(sum [32]byte) string { return hex.EncodeToString(sum[:]) }

func parseSum(s string) ([32]byte, bool) {
	var sum [32]byte
	if !validSHA256(s) {
		return sum, false
	}
	_, err := hex.Decode(sum[:], []byte(s))
	return sum, err == nil
}
