package isolate

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/wasm"
)

// handleGroups serves the planning call and per-unit and block instances.
func (s *sandbox) handleGroups(ctx context.Context, t byte, b []byte) error {
	if len(b) < 8 {
		return errors.New("short request")
	}
	cctx, cancel := s.callContext(ctx, b[:8])
	defer cancel()
	b = b[8:]
	switch t {
	case msgPlan:
		if s.mod == nil || s.inst != nil || s.ginst != nil || len(b) < 4 {
			return errors.New("plan out of order")
		}
		n := int(binary.LittleEndian.Uint32(b))
		if n > len(b)-4 {
			return errors.New("bad plan request")
		}
		var outputs []string
		if err := json.Unmarshal(b[4:4+n], &outputs); err != nil {
			return err
		}
		rd, err := ipc.NewReader(bytes.NewReader(b[4+n:]), ipc.WithAllocator(memory.NewGoAllocator()))
		if err != nil {
			return s.reply(fmt.Errorf("%w: schema: %v", cove.ErrInvalid, err))
		}
		schema := rd.Schema()
		rd.Release()
		plan, err := s.mod.Plan(cctx, schema, outputs)
		if err != nil {
			return s.reply(err)
		}
		return writeFrame(s.out, msgOK, plan)
	case msgGroups:
		if s.mod == nil || s.inst != nil || s.ginst != nil {
			return errors.New("groups out of order")
		}
		var h groupHello
		if err := json.Unmarshal(b, &h); err != nil {
			return err
		}
		g, err := s.mod.InstantiateGroups(cctx, h.Outputs, h.config())
		if err == nil {
			s.ginst = g // keys go to the parent as emissions name them
		}
		return s.reply(err)
	default: // msgRunGroups
		if s.ginst == nil || len(b) < 4 {
			return errors.New("groups before their instance")
		}
		n := int(binary.LittleEndian.Uint32(b))
		if n > (len(b)-4)/4 {
			return errors.New("bad group bounds")
		}
		bounds := make([]uint32, n)
		for k := range bounds {
			bounds[k] = binary.LittleEndian.Uint32(b[4+4*k:])
		}
		err := s.runGroups(cctx, bounds, b[4+4*n:])
		if err != nil {
			return s.reply(err)
		}
		st, _ := json.Marshal(s.ginst.Stats())
		return writeFrame(s.out, msgOK, st)
	}
}

func (s *sandbox) runGroups(ctx context.Context, bounds []uint32, body []byte) error {
	rd, err := ipc.NewReader(bytes.NewReader(body), ipc.WithAllocator(memory.NewGoAllocator()))
	if err != nil {
		return fmt.Errorf("%w: batch: %v", cove.ErrInvalid, err)
	}
	defer rd.Release()
	if !rd.Next() {
		return fmt.Errorf("%w: batch: no record", cove.ErrInvalid)
	}
	return s.ginst.RunGroups(ctx, rd.RecordBatch(), bounds, &childSink{s: s})
}

// childSink streams a group instance's results to the parent, keys first.
type childSink struct {
	s     *sandbox
	frame []byte
}

func (c *childSink) Emit(g int, e wasm.Emission) error {
	maxKey := -1
	for _, k := range e.Keys {
		maxKey = max(maxKey, int(k))
	}
	if err := c.s.sendKeys(c.s.ginst, maxKey); err != nil {
		return err
	}
	le := binary.LittleEndian
	f := c.frame[:0]
	f = le.AppendUint32(f, uint32(g))
	f = le.AppendUint32(f, uint32(e.Output))
	f = le.AppendUint32(f, uint32(len(e.Rows)))
	for _, r := range e.Rows {
		f = le.AppendUint32(f, r)
	}
	for _, k := range e.Keys {
		f = le.AppendUint32(f, k)
	}
	for _, v := range e.Values {
		f = le.AppendUint64(f, math.Float64bits(v))
	}
	c.frame = f
	return writeFrame(c.s.out, msgGroupEmission, f)
}

func (c *childSink) Vector(g, o int, v []float64) error {
	le := binary.LittleEndian
	f := c.frame[:0]
	f = le.AppendUint32(f, uint32(g))
	f = le.AppendUint32(f, uint32(o))
	f = le.AppendUint32(f, uint32(len(v)))
	for _, x := range v {
		f = le.AppendUint64(f, math.Float64bits(x))
	}
	c.frame = f
	return writeFrame(c.s.out, msgVector, f)
}

func (c *childSink) Failed(g int) error {
	return writeFrame(c.s.out, msgFailed, binary.LittleEndian.AppendUint32(nil, uint32(g)))
}
