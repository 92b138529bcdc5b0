package isolate

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/internal/abi"
	"github.com/covedata/cove/runtime/wasm"
)

// Plan makes the planning call in a sandbox of its own, which ends with
// it: the sandbox gets the schema (an Arrow IPC stream with no record) and
// answers with the plan.
func (m *module) Plan(ctx context.Context, schema *arrow.Schema, outputs []string) ([]byte, error) {
	out, err := json.Marshal(outputs)
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	w := ipc.NewWriter(&body, ipc.WithSchema(schema))
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("%w: schema: %v", cove.ErrInvalid, err)
	}
	p, err := m.e.start(ctx, m.bin)
	if err != nil {
		return nil, err
	}
	defer p.close()
	var plan []byte
	err = p.do(ctx, func() error {
		if err := writeFrame(p.in, msgPlan, deadlineBytes(ctx), binary.LittleEndian.AppendUint32(nil, uint32(len(out))), out, body.Bytes()); err != nil {
			return p.died(ctx, err)
		}
		t, b, err := readFrame(p.out, nil, abi.MaxPlanBytes)
		if err != nil {
			return p.died(ctx, err)
		}
		switch t {
		case msgOK:
			plan = b
			return nil
		case msgError:
			return decodeError(b)
		}
		return fmt.Errorf("%w: isolate: unexpected frame %q", cove.ErrGuest, t)
	})
	return plan, err
}

// InstantiateGroups starts a per-unit or block instance in a sandbox of its
// own: the sandbox runs the loop over groups itself (wasm.GroupInstance)
// and sends back each group's results. Such a sandbox is never reused.
func (m *module) InstantiateGroups(ctx context.Context, outputs []string, cfg wasm.GroupConfig) (wasm.GroupInstance, error) {
	h := groupHello{Outputs: outputs, MemoryPages: cfg.MemoryPages(), CPULimit: int64(cfg.CPULimit()), MaxEmits: cfg.MaxEmits(), Vectors: cfg.Vectors()}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if h.Vectors != nil && len(h.Vectors) != len(outputs) {
		return nil, fmt.Errorf("%w: group config: %d vector dimensions for %d outputs", cove.ErrInvalid, len(h.Vectors), len(outputs))
	}
	p, err := m.e.start(ctx, m.bin)
	if err != nil {
		return nil, err
	}
	g := &groupInstance{p: p, outputs: len(outputs), maxEmits: cfg.MaxEmits(), vectors: h.Vectors}
	err = p.do(ctx, func() error {
		if err := writeFrame(p.in, msgGroups, deadlineBytes(ctx), hb); err != nil {
			return p.died(ctx, err)
		}
		return p.reply(ctx)
	})
	if err != nil {
		p.close()
		return nil, err
	}
	return g, nil
}

// groupInstance is a per-unit or block instance in its sandbox.
type groupInstance struct {
	mu       sync.Mutex
	p        *proc
	outputs  int
	maxEmits int64
	vectors  []int
	keys     []string
	failed   error
	buf      []byte

	statsMu sync.Mutex
	stats   wasm.GroupStats
}

var _ wasm.GroupInstance = (*groupInstance)(nil)

// KeyName returns the key of id, as the sandbox sent it.
func (g *groupInstance) KeyName(id uint32) string {
	if int64(id) >= int64(len(g.keys)) {
		return ""
	}
	return g.keys[id]
}

// Stats are the sandbox's counts as of its last answer.
func (g *groupInstance) Stats() wasm.GroupStats {
	g.statsMu.Lock()
	defer g.statsMu.Unlock()
	return g.stats
}

// Close ends the sandbox.
func (g *groupInstance) Close(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed == nil {
		g.failed = fmt.Errorf("%w: instance is closed", cove.ErrGuest)
		g.p.close()
	}
	return nil
}

// RunGroups sends rec and the bounds to the sandbox and relays each
// group's results to sink, checked again here: groups in order, nothing of
// a failed group, rows within their group, keys the sandbox sent,
// contributions within the limit, vectors of block outputs only, of their
// dimension, once per group, finite.
func (g *groupInstance) RunGroups(ctx context.Context, rec arrow.RecordBatch, bounds []uint32, sink wasm.GroupSink) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed != nil {
		return fmt.Errorf("%w: instance failed earlier and is closed", cove.ErrGuest)
	}
	if err := wasm.CheckBounds(bounds, rec); err != nil {
		return err
	}
	var body bytes.Buffer
	w := ipc.NewWriter(&body, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		return fmt.Errorf("%w: batch: %v", cove.ErrInvalid, err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	hdr := binary.LittleEndian.AppendUint32(nil, uint32(len(bounds)))
	for _, b := range bounds {
		hdr = binary.LittleEndian.AppendUint32(hdr, b)
	}
	c := &groupCheck{g: g, bounds: bounds, last: -1}
	err := g.p.do(ctx, func() error {
		if err := writeFrame(g.p.in, msgRunGroups, deadlineBytes(ctx), hdr, body.Bytes()); err != nil {
			return g.p.died(ctx, err)
		}
		for {
			t, b, err := readFrame(g.p.out, g.buf, maxFrame)
			g.buf = b
			if err != nil {
				return g.p.died(ctx, err)
			}
			switch t {
			case msgOK:
				var st wasm.GroupStats
				if err := json.Unmarshal(b, &st); err != nil {
					return fmt.Errorf("%w: isolate: bad stats", cove.ErrGuest)
				}
				g.statsMu.Lock()
				g.stats = st
				g.statsMu.Unlock()
				return nil
			case msgError:
				return decodeError(b)
			case msgKeys:
				if err := addKeys(&g.keys, b); err != nil {
					return err
				}
			case msgGroupEmission, msgVector, msgFailed:
				if err := c.frame(t, b, sink); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%w: isolate: unexpected frame %q", cove.ErrGuest, t)
			}
		}
	})
	if err != nil {
		g.failed = err
		g.p.close()
	}
	return err
}

// groupCheck checks one RunGroups' frames from the sandbox.
type groupCheck struct {
	g      *groupInstance
	bounds []uint32
	last   int    // the group of the last frame
	failed bool   // the last group failed
	gave   []bool // the last group's block outputs given
	emits  int64  // the last group's contributions
}

func (c *groupCheck) bad(what string) error {
	return fmt.Errorf("%w: isolate: %s", cove.ErrGuest, what)
}

// group moves the check to group gr of a frame.
func (c *groupCheck) group(gr uint32) error {
	if int64(gr) >= int64(len(c.bounds)-1) || int(gr) < c.last {
		return c.bad("results of a group out of order")
	}
	if int(gr) > c.last {
		c.last, c.failed, c.emits = int(gr), false, 0
		c.gave = make([]bool, c.g.outputs)
	}
	if c.failed {
		return c.bad("results of a failed group")
	}
	return nil
}

func (c *groupCheck) frame(t byte, b []byte, sink wasm.GroupSink) error {
	le := binary.LittleEndian
	if len(b) < 4 {
		return c.bad("short group frame")
	}
	gr := le.Uint32(b)
	if err := c.group(gr); err != nil {
		return err
	}
	g := c.g
	switch t {
	case msgFailed:
		if len(b) != 4 || c.emits > 0 || anyTrue(c.gave) {
			return c.bad("a group failed after it gave results")
		}
		c.failed = true
		return sink.Failed(int(gr))
	case msgVector:
		if len(b) < 12 {
			return c.bad("short vector")
		}
		o, n := le.Uint32(b[4:]), le.Uint32(b[8:])
		if int64(o) >= int64(g.outputs) || int(o) >= len(g.vectors) || g.vectors[o] == 0 || int64(n) != int64(g.vectors[o]) || len(b) != 12+8*int(n) || c.gave[o] {
			return c.bad("vector that does not fit its output")
		}
		v := f64s(b[12:])
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return c.bad("vector that is not finite")
			}
		}
		c.gave[o] = true
		return sink.Vector(int(gr), int(o), v)
	default: // msgGroupEmission
		em, err := decodeEmission(b[4:])
		if err != nil {
			return err
		}
		if em.Output >= g.outputs || (em.Output < len(g.vectors) && g.vectors[em.Output] > 0) {
			return c.bad("emission to an output that takes none")
		}
		lo, hi := c.bounds[gr], c.bounds[gr+1]
		for j, r := range em.Rows {
			if r < lo || r >= hi {
				return c.bad("emission names a row outside its group")
			}
			if int64(em.Keys[j]) >= int64(len(g.keys)) {
				return fmt.Errorf("%w: isolate: emission names key %d before the sandbox sent it", cove.ErrGuest, em.Keys[j])
			}
		}
		c.emits += int64(len(em.Rows))
		if c.emits > g.maxEmits {
			return c.bad("a group emitted past its limit")
		}
		return sink.Emit(int(gr), em)
	}
}

func anyTrue(b []bool) bool {
	for _, x := range b {
		if x {
			return true
		}
	}
	return false
}
