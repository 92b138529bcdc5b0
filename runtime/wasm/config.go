package wasm

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/covedata/cove"
)

// Defaults of NewConfig.
const (
	DefaultMemoryLimitPages = 4096     // 256 MiB of linear memory (64 KiB pages)
	DefaultMaxModuleBytes   = 32 << 20 // 32 MiB of module binary
	DefaultMaxEmits         = 10_000_000
	DefaultMaxKeyBytes      = 4 << 10 // 4 KiB per key
	DefaultMaxKeys          = 1 << 20
	DefaultMaxKeyTotalBytes = 64 << 20 // host memory held by one instance's keys
	DefaultMaxBatchBytes    = 64 << 20 // one encoded batch region
	DefaultMaxDebugBytes    = 1 << 20  // guest stdout+stderr shown per instance
	DefaultDeadline         = 10 * time.Minute
)

// Config configures an Engine. It is an immutable value: each WithX returns
// a copy. NewEngine validates it.
type Config struct {
	memoryLimitPages uint32
	maxModuleBytes   int
	maxEmits         int64
	maxKeyBytes      int
	maxKeys          int
	maxBatchBytes    int64
	cacheDir         string
	debug            io.Writer
	deadline         time.Duration
	compileWorkers   int
}

// NewConfig returns the defaults: 256 MiB of guest memory, modules up to
// 32 MiB, 10M contributions per instance, keys up to 4 KiB and 1M distinct
// keys (64 MiB in all), batch regions up to 64 MiB, no compilation cache on
// disk, guest output discarded.
func NewConfig() Config {
	return Config{
		memoryLimitPages: DefaultMemoryLimitPages,
		maxModuleBytes:   DefaultMaxModuleBytes,
		maxEmits:         DefaultMaxEmits,
		maxKeyBytes:      DefaultMaxKeyBytes,
		maxKeys:          DefaultMaxKeys,
		maxBatchBytes:    DefaultMaxBatchBytes,
		deadline:         DefaultDeadline,
	}
}

// WithDeadline caps the life of each instance, from Instantiate to its last
// batch, whatever the callers' contexts say (10 minutes by default). A
// job's own, usually shorter, deadline comes with its context.
func (c Config) WithDeadline(d time.Duration) Config { c.deadline = d; return c }

// WithCompileWorkers sets how many goroutines compile a module's functions
// (0, the default: GOMAXPROCS). A cache hit compiles nothing.
func (c Config) WithCompileWorkers(n int) Config { c.compileWorkers = n; return c }

func (c Config) workers() int {
	if c.compileWorkers > 0 {
		return c.compileWorkers
	}
	return runtime.GOMAXPROCS(0)
}

// Limits are a Config's settings as plain values, to hand a configuration
// to a sandbox process. Debug stands for WithDebugOutput (the receiver picks
// the writer).
type Limits struct {
	MemoryLimitPages uint32
	MaxModuleBytes   int
	MaxEmits         int64
	MaxKeyBytes      int
	MaxKeys          int
	MaxBatchBytes    int64
	CacheDir         string
	Debug            bool
	Deadline         time.Duration
}

// Limits returns c's settings.
func (c Config) Limits() Limits {
	return Limits{MemoryLimitPages: c.memoryLimitPages, MaxModuleBytes: c.maxModuleBytes, MaxEmits: c.maxEmits,
		MaxKeyBytes: c.maxKeyBytes, MaxKeys: c.maxKeys, MaxBatchBytes: c.maxBatchBytes, CacheDir: c.cacheDir,
		Debug: c.debug != nil, Deadline: c.deadline}
}

// WithLimits returns c with l's settings; debug writes to debug when
// l.Debug is set.
func (c Config) WithLimits(l Limits, debug io.Writer) Config {
	c.memoryLimitPages, c.maxModuleBytes, c.maxEmits = l.MemoryLimitPages, l.MaxModuleBytes, l.MaxEmits
	c.maxKeyBytes, c.maxKeys, c.maxBatchBytes, c.cacheDir = l.MaxKeyBytes, l.MaxKeys, l.MaxBatchBytes, l.CacheDir
	c.deadline, c.debug = l.Deadline, nil
	if l.Debug {
		c.debug = debug
	}
	return c
}

// WithMemoryLimitPages caps each instance's linear memory, in 64 KiB pages
// (1 to 65536). A guest's memory.grow past it fails.
func (c Config) WithMemoryLimitPages(pages uint32) Config { c.memoryLimitPages = pages; return c }

// WithMaxModuleBytes caps the size of a module binary Compile accepts.
func (c Config) WithMaxModuleBytes(n int) Config { c.maxModuleBytes = n; return c }

// WithMaxEmits caps the contributions one instance may emit over its life;
// one more ends the run with cove.ErrLimit.
func (c Config) WithMaxEmits(n int64) Config { c.maxEmits = n; return c }

// WithMaxKeyBytes caps the length of one key.
func (c Config) WithMaxKeyBytes(n int) Config { c.maxKeyBytes = n; return c }

// WithMaxKeys caps the distinct keys one instance may intern.
func (c Config) WithMaxKeys(n int) Config { c.maxKeys = n; return c }

// WithMaxBatchBytes caps the encoded size of one batch; a larger batch is
// refused with cove.ErrLimit before the guest sees it (split it).
func (c Config) WithMaxBatchBytes(n int64) Config { c.maxBatchBytes = n; return c }

// WithCompilationCacheDir keeps compiled modules in dir, shared by engines
// and processes ("" for none).
func (c Config) WithCompilationCacheDir(dir string) Config { c.cacheDir = dir; return c }

// WithDebugOutput shows guests' stdout and stderr on w (up to 1 MiB per
// instance), and puts exit codes, batch return codes and guest-supplied
// names in errors. For runs on mock data only: on real data a guest could
// write rows there. nil turns it off.
func (c Config) WithDebugOutput(w io.Writer) Config { c.debug = w; return c }

func (c Config) validate() error {
	var bad []string
	if c.memoryLimitPages < 1 || c.memoryLimitPages > 65536 {
		bad = append(bad, fmt.Sprintf("memory limit of %d pages is outside [1,65536]", c.memoryLimitPages))
	}
	if c.maxModuleBytes < 8 {
		bad = append(bad, fmt.Sprintf("module limit of %d bytes is too small", c.maxModuleBytes))
	}
	if c.maxEmits < 0 {
		bad = append(bad, "negative emit limit")
	}
	if c.maxKeyBytes < 0 || c.maxKeys < 0 {
		bad = append(bad, "negative key limit")
	}
	if c.maxBatchBytes < 64 || c.maxBatchBytes > 1<<32-1 {
		bad = append(bad, fmt.Sprintf("batch limit of %d bytes is outside [64,4GiB)", c.maxBatchBytes))
	}
	if c.compileWorkers < 0 {
		bad = append(bad, "negative compile workers")
	}
	if c.deadline <= 0 {
		bad = append(bad, "deadline must be positive")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: wasm config: %v", cove.ErrInvalid, bad)
	}
	return nil
}
