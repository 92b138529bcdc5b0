package wasm

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/internal/snapshot"
)

// Defaults of NewGroupConfig.
const (
	DefaultGroupMemoryPages = 256 // 16 MiB of guest-visible memory
	DefaultGroupCPULimit    = 100 * time.Millisecond
	DefaultGroupMaxEmits    = 1 << 20
	// MaxVectorDim bounds the dimension of a block output's vector.
	MaxVectorDim = 1 << 16
)

// GroupConfig configures the per-unit and block modes of an instance
// (Module.InstantiateGroups). It is an immutable value: each WithX returns
// a copy; InstantiateGroups validates it.
type GroupConfig struct {
	memoryPages uint32
	cpuLimit    time.Duration
	maxEmits    int64
	vectors     []int
}

// NewGroupConfig returns the defaults: 16 MiB of guest memory, 100 ms per
// group, 1M contributions per group, every output taking contributions.
func NewGroupConfig() GroupConfig {
	return GroupConfig{memoryPages: DefaultGroupMemoryPages, cpuLimit: DefaultGroupCPULimit, maxEmits: DefaultGroupMaxEmits}
}

// WithMemoryPages sets the guest-visible linear memory, in 64 KiB pages: at
// least the module's declared initial memory, at most the engine's memory
// limit (Config.WithMemoryLimitPages). The guest's memory.size starts at
// its declared initial and memory.grow succeeds up to this size, never
// past it.
func (c GroupConfig) WithMemoryPages(pages uint32) GroupConfig { c.memoryPages = pages; return c }

// WithCPULimit caps the CPU time of one group's calls (cove_alloc and
// cove_batch); a group that uses more is stopped and fails. It is the CPU
// time of the thread running the guest where the OS reports it (Linux),
// so that a starved process (a container's CPU quota) fails no group, and
// wall time elsewhere; a group is stopped at ten times the limit of wall
// time in any case.
func (c GroupConfig) WithCPULimit(d time.Duration) GroupConfig { c.cpuLimit = d; return c }

// WithMaxEmits caps the contributions of one group; one more fails it.
func (c GroupConfig) WithMaxEmits(n int64) GroupConfig { c.maxEmits = n; return c }

// WithVectors makes outputs block outputs: vectors[o] = d > 0 means that
// output o takes, per group, one vector of d values through import result
// (and refuses emit and k_emit); 0 means it takes contributions. nil (the
// default) makes every output take contributions; otherwise it has one
// entry per output.
func (c GroupConfig) WithVectors(vectors []int) GroupConfig {
	c.vectors = append([]int(nil), vectors...)
	return c
}

// MemoryPages is the guest-visible memory in 64 KiB pages.
func (c GroupConfig) MemoryPages() uint32 { return c.memoryPages }

// CPULimit is the time one group may run.
func (c GroupConfig) CPULimit() time.Duration { return c.cpuLimit }

// MaxEmits is the contributions one group may make.
func (c GroupConfig) MaxEmits() int64 { return c.maxEmits }

// Vectors is the dimension of each output's block vector (0: the output
// takes contributions); nil when no output is a block output.
func (c GroupConfig) Vectors() []int { return append([]int(nil), c.vectors...) }

// validate checks c for an instance with outputs, on an engine whose memory
// limit is limitPages, for a module declaring initialPages.
func (c GroupConfig) validate(outputs int, limitPages, initialPages uint32) error {
	var bad []string
	if c.memoryPages < 1 || c.memoryPages > snapshot.MaxGuestPages {
		bad = append(bad, fmt.Sprintf("guest memory of %d pages is outside [1,%d]", c.memoryPages, snapshot.MaxGuestPages))
	} else if c.memoryPages > limitPages {
		bad = append(bad, fmt.Sprintf("guest memory of %d pages exceeds the engine's limit of %d pages", c.memoryPages, limitPages))
	}
	if c.memoryPages < initialPages {
		bad = append(bad, fmt.Sprintf("guest memory of %d pages is less than the module's initial %d pages", c.memoryPages, initialPages))
	}
	if c.cpuLimit <= 0 {
		bad = append(bad, "CPU limit must be positive")
	}
	if c.maxEmits < 0 {
		bad = append(bad, "negative emit limit")
	}
	if c.vectors != nil && len(c.vectors) != outputs {
		bad = append(bad, fmt.Sprintf("%d vector dimensions for %d outputs", len(c.vectors), outputs))
	}
	for o, d := range c.vectors {
		if d < 0 || d > MaxVectorDim {
			bad = append(bad, fmt.Sprintf("output %d: vector dimension %d is outside [0,%d]", o, d, MaxVectorDim))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: group config: %v", cove.ErrInvalid, bad)
	}
	return nil
}

// GroupInstance is a guest instance of per-unit or block mode: it calls
// the guest once per group of rows (a privacy unit, or a block of units),
// each call from the same snapshot of the guest's state, so that nothing
// one group's rows caused can reach another group. Its methods must not be
// called concurrently, but KeyName may be called from the sink's methods.
type GroupInstance interface {
	// RunGroups calls the guest once per group of rec: group g is rows
	// [bounds[g], bounds[g+1]) (bounds ascending, the last at most
	// rec.NumRows()), restoring the snapshot before each. A successful
	// group's contributions and vectors reach sink before the next group
	// starts; a failed group's never do (sink.Failed instead). A group fails
	// when its call traps, exits, is refused a host call, returns nonzero,
	// runs past the CPU limit, or leaves a block output without its vector.
	// RunGroups returns an error only for what is not a group's doing: ctx
	// done, a sink error (returned unchanged), a failure to restart the
	// instance, the key table of the instance's life full. After an error
	// the instance is closed.
	RunGroups(ctx context.Context, rec arrow.RecordBatch, bounds []uint32, sink GroupSink) error
	// KeyName returns the key of id ("" if none). Ids in emissions index a
	// host-side table stable for the instance's life (a consumer may cache
	// what it derives from a key by id), not the guest's own ids.
	KeyName(id uint32) string
	// Stats reports what the instance did so far.
	Stats() GroupStats
	// Close ends the instance.
	Close(ctx context.Context) error
}

// GroupSink receives the results of successful groups, and the failures.
type GroupSink interface {
	// Emit receives contributions of group g in the listed form: Rows
	// index RunGroups' rec (within the group's rows), Keys the instance's
	// key table (KeyName). The slices are valid only during the call.
	Emit(g int, e Emission) error
	// Vector receives group g's vector for block output o (its dimension
	// long, every value finite); valid only during the call.
	Vector(g int, o int, v []float64) error
	// Failed says that group g failed: nothing of it was or will be given.
	Failed(g int) error
}

// GroupStats are an instance's counts, for benchmarks and accounting. They
// name no failure kind: which way a group failed is the guest's choice,
// and so a channel.
type GroupStats struct {
	Groups        int64         // groups run
	Failed        int64         // of which failed
	RestoredPages int64         // 4 KiB pages copied back from the snapshot
	RestoreTime   time.Duration // spent restoring (pages, globals, host state)
	CallTime      time.Duration // spent in groups: encoding the rows and the guest's calls
	Restarts      int64         // re-instantiations after a group closed the instance (exit, CPU limit)
}

// Add returns the sum of s and t.
func (s GroupStats) Add(t GroupStats) GroupStats {
	return GroupStats{Groups: s.Groups + t.Groups, Failed: s.Failed + t.Failed, RestoredPages: s.RestoredPages + t.RestoredPages,
		RestoreTime: s.RestoreTime + t.RestoreTime, CallTime: s.CallTime + t.CallTime, Restarts: s.Restarts + t.Restarts}
}

// checkBounds checks group bounds against a batch of rows rows.
func checkBounds(bounds []uint32, rows int64) error {
	if len(bounds) == 0 {
		return fmt.Errorf("%w: group bounds: none (want groups+1 offsets)", cove.ErrInvalid)
	}
	for g := 1; g < len(bounds); g++ {
		if bounds[g] < bounds[g-1] {
			return fmt.Errorf("%w: group bounds: not ascending at group %d", cove.ErrInvalid, g-1)
		}
	}
	if int64(bounds[len(bounds)-1]) > rows {
		return fmt.Errorf("%w: group bounds: past the batch's %d rows", cove.ErrInvalid, rows)
	}
	return nil
}

// CheckBounds checks group bounds against rec (for other implementations
// of GroupInstance).
func CheckBounds(bounds []uint32, rec arrow.RecordBatch) error {
	return checkBounds(bounds, rec.NumRows())
}
