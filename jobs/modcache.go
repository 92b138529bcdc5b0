package jobs

import (
	"context"
	"sync"

	"github.com/covedata/cove/runtime/wasm"
)

// moduleCacheSize bounds the compiled modules a Runner keeps: compiling a
// 2 MB Go guest costs more than running a small job, and operators resubmit
// the same module with other manifests.
const moduleCacheSize = 32

// moduleCache shares compiled modules between jobs by the sha256 of their
// bytes. A module in use is never closed; an idle one is evicted when the
// cache is full.
type moduleCache struct {
	mu      sync.Mutex
	entries map[string]*cachedModule
	clock   uint64
}

type cachedModule struct {
	mod      wasm.Module
	users    int
	lastUsed uint64
}

// moduleBytes reads a module's bytes: only on a cache miss, since a 2 MB
// module read from the store costs more than starting its guest.
type moduleBytes func() ([]byte, error)

// inline is the moduleBytes of bytes at hand.
func inline(b []byte) moduleBytes { return func() ([]byte, error) { return b, nil } }

// get returns the compiled module whose sha256 is hash, compiling what load
// reads if it is not cached, and a function to call when done with it.
func (c *moduleCache) get(ctx context.Context, eng wasm.Runtime, hash string, load moduleBytes) (wasm.Module, func(), error) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*cachedModule{}
	}
	if e, ok := c.entries[hash]; ok {
		e.users++
		c.mu.Unlock()
		return e.mod, c.release(hash), nil
	}
	c.mu.Unlock()
	bin, err := load()
	if err != nil {
		return nil, nil, err
	}
	// Compile outside the lock: another job may compile the same module at
	// the same time; the first to finish is kept.
	mod, err := eng.Compile(ctx, bin)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[hash]; ok {
		e.users++
		go mod.Close(context.WithoutCancel(ctx))
		return e.mod, c.release(hash), nil
	}
	c.evict(ctx)
	c.entries[hash] = &cachedModule{mod: mod, users: 1}
	return mod, c.release(hash), nil
}

func (c *moduleCache) release(hash string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.clock++
			if e, ok := c.entries[hash]; ok {
				e.users--
				e.lastUsed = c.clock
			}
		})
	}
}

// evict closes the least recently used idle module while the cache is full.
func (c *moduleCache) evict(ctx context.Context) {
	for len(c.entries) >= moduleCacheSize {
		victim := ""
		for h, e := range c.entries {
			if e.users == 0 && (victim == "" || e.lastUsed < c.entries[victim].lastUsed) {
				victim = h
			}
		}
		if victim == "" {
			return // all in use: grow past the bound rather than close a running module
		}
		c.entries[victim].mod.Close(context.WithoutCancel(ctx))
		delete(c.entries, victim)
	}
}
