package service

import (
	"context"
	"crypto/sha256"
	"sync"

	"github.com/covedata/cove/runtime/wasm"
)

// maxKeptModules bounds the compiled modules the server keeps open.
const maxKeptModules = 64

// modules checks submitted modules by compiling them once per content hash,
// one compilation at a time, and keeps the compiled modules open: a batch
// of the same module is compiled once, and the engine answers the runner's
// later compilations of it from memory.
type modules struct {
	eng wasm.Runtime

	compile sync.Mutex // one compilation at a time bounds its memory

	mu    sync.Mutex
	kept  map[[32]byte]wasm.Module
	order [][32]byte // oldest first
}

func newModules(eng wasm.Runtime) *modules {
	return &modules{eng: eng, kept: map[[32]byte]wasm.Module{}}
}

// check compiles b unless a module of the same hash compiled before.
func (m *modules) check(ctx context.Context, b []byte) error {
	h := sha256.Sum256(b)
	if m.has(h) {
		return nil
	}
	m.compile.Lock()
	defer m.compile.Unlock()
	if m.has(h) {
		return nil
	}
	mod, err := m.eng.Compile(ctx, b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kept[h] = mod
	m.order = append(m.order, h)
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

func (m *modules) close(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mod := range m.kept {
		mod.Close(ctx)
	}
	m.kept = map[[32]byte]wasm.Module{}
	m.order = nil
}
