package snapshot

import (
	"errors"
	"fmt"
	"math"
)

// code rewrites the code section and appends the helpers' bodies.
func (w *rewriter) code(m *module, body []byte) ([]byte, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, malformed("code section", err)
	}
	if n != uint32(len(m.funcTypes)) {
		return nil, invalid("module does not decode: %d function bodies for %d functions", n, len(m.funcTypes))
	}
	out := make([]byte, 0, len(body)*2)
	out = appendU32(out, n) // helpers are added below: the count is fixed up then
	var fn []byte
	for i := uint32(0); i < n; i++ {
		size, err := r.u32()
		if err != nil {
			return nil, malformed("code section", err)
		}
		b, err := r.bytes(size)
		if err != nil {
			return nil, malformed("code section", err)
		}
		index := m.importedFuncs + i
		fn, err = w.function(fn[:0], b, m.params[m.funcTypes[i]])
		if err != nil {
			var ref *refusedError
			if errors.As(err, &ref) {
				return nil, invalid("module uses %s (function %d): %s", ref.name, index, ref.why)
			}
			return nil, malformed(fmt.Sprintf("function %d", index), err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if !r.done() {
		return nil, malformed("code section", errors.New("bytes after the last body"))
	}
	if len(w.helpers) == 0 {
		return out, nil
	}
	fixed := appendU32(nil, n+uint32(len(w.helpers)))
	fixed = append(fixed, out[lenU32(out):]...)
	for _, b := range w.helpers {
		fixed = appendU32(fixed, uint32(len(b)))
		fixed = append(fixed, b...)
	}
	return fixed, nil
}

// Added local slots: the address (also memory.grow's operand), then one per
// stored value type.
const (
	slotAddr = iota
	slotI32
	slotI64
	slotF32
	slotF64
	slotV128
	slots
)

var slotType = [slots]byte{typeI32, typeI32, typeI64, typeF32, typeF64, typeV128}

func valueSlot(t byte) int {
	switch t {
	case typeI64:
		return slotI64
	case typeF32:
		return slotF32
	case typeF64:
		return slotF64
	case typeV128:
		return slotV128
	}
	return slotI32
}

// locals are the locals a function's rewrite adds, allocated on first use.
type locals struct {
	base  uint32 // index of the first added local
	types []byte // added locals' types, in index order
	index [slots]uint32
}

func (l *locals) get(slot int) uint32 {
	if l.index[slot] == 0 {
		l.types = append(l.types, slotType[slot])
		l.index[slot] = uint32(len(l.types))
	}
	return l.base + l.index[slot] - 1
}

// function appends the rewritten body b of function index to out.
func (w *rewriter) function(out, b []byte, params uint32) ([]byte, error) {
	r := &reader{b: b}
	groups, err := r.u32()
	if err != nil {
		return nil, err
	}
	total := uint64(params)
	for g := uint32(0); g < groups; g++ {
		c, err := r.u32()
		if err != nil {
			return nil, err
		}
		t, err := r.byte()
		if err != nil {
			return nil, err
		}
		if !isValType(t) {
			return nil, fmt.Errorf("bad local type %#x", t)
		}
		total += uint64(c)
	}
	const added = slots
	if total+added > math.MaxUint32 {
		return nil, errors.New("too many locals")
	}
	declEnd := r.off
	lc := &locals{base: uint32(total)}

	code := w.scratch[:0]
	defer func() { w.scratch = code[:0] }()
	// An empty loop first: wazero checks whether the instance was stopped
	// (the per-group CPU limit) at loop heads only, so a loop-free call tree
	// of exponential size could otherwise outrun the limit; entering this
	// loop checks on every call, for one load and compare.
	code = append(code, opLoop, blockEmpty, opEnd)
	depth := 0
	for {
		if r.done() {
			return nil, errors.New("body ends without end")
		}
		in, err := readInstr(r)
		if err != nil {
			return nil, err
		}
		switch in.kind {
		case kOpen:
			depth++
		case kElse:
			if depth == 0 {
				return nil, errors.New("else outside if")
			}
		case kEnd:
			depth--
		}
		code = w.emit(code, b[in.start:in.end], in, lc)
		if depth < 0 {
			break
		}
	}
	if !r.done() {
		return nil, errors.New("bytes after the body's end")
	}

	// Locals: the original groups, then one group per added local.
	out = appendU32(out, groups+uint32(len(lc.types)))
	out = append(out, b[lenU32(b):declEnd]...)
	for _, t := range lc.types {
		out = append(out, 1, t)
	}
	return append(out, code...), nil
}

// lenU32 is the length of the LEB128 at the start of b.
func lenU32(b []byte) int {
	r := &reader{b: b}
	_, _ = r.u32()
	return r.off
}

// emit appends the rewrite of one instruction (raw are its bytes).
func (w *rewriter) emit(code, raw []byte, in instr, lc *locals) []byte {
	switch in.kind {
	case kStore:
		return w.store(code, raw, in, lc)
	case kSize:
		return appendU32(append(code, opGlobalGet), w.vs)
	case kGrow:
		return w.grow(code, lc)
	case kFill:
		return appendU32(append(code, opCall), w.helper(&w.fill, w.fillHelper))
	case kCopyMem:
		return appendU32(append(code, opCall), w.helper(&w.copy, w.copyHelper))
	case kDataDrop:
		return append(code, opNop)
	}
	return append(code, raw...)
}

// store: save the operands, mark the first and the last page the access
// touches, then store. The marks are also the bounds check: the map ends
// where memory ends, so the mark of a byte at or beyond M·65536 lies beyond
// memory and traps before anything is written. (An address plus offset that
// wraps 32 bits marks a wrong page, harmlessly, and the store itself traps.)
func (w *rewriter) store(code, raw []byte, in instr, lc *locals) []byte {
	a := lc.get(slotAddr)
	v := lc.get(valueSlot(in.valType))
	code = appendU32(append(code, opLocalSet), v)
	code = appendU32(append(code, opLocalSet), a)
	if uint64(in.offset)+uint64(in.size) > w.layout.GuestBytes {
		code = append(code, opUnreachable) // no address fits
	} else {
		code = w.mark(code, a, in.offset)
		if in.size > 1 {
			code = w.mark(code, a, in.offset+in.size-1)
		}
	}
	code = appendU32(append(code, opLocalGet), a)
	code = appendU32(append(code, opLocalGet), v)
	return append(code, raw...)
}

// mark sets the map byte of the page of address local a plus delta: a byte
// store at MapOffset + (a + delta) >> 12, an address the engine computes
// without wrapping.
func (w *rewriter) mark(code []byte, a, delta uint32) []byte {
	code = appendU32(append(code, opLocalGet), a)
	if delta != 0 {
		code = appendI32Const(code, delta)
		code = append(code, opI32Add)
	}
	code = appendI32Const(code, pageShift)
	code = append(code, opI32ShrU)
	code = appendI32Const(code, 1)
	code = append(code, opI32Store8, 0) // align 1
	return appendU32(code, uint32(w.layout.MapOffset))
}

// grow: n ≤ cap − $vs (unsigned, $vs ≤ cap always) ? ($vs, $vs += n) : −1.
func (w *rewriter) grow(code []byte, lc *locals) []byte {
	n := lc.get(slotAddr)
	code = appendU32(append(code, opLocalSet), n)
	code = appendI32Const(code, w.growCap)
	code = appendU32(append(code, opGlobalGet), w.vs)
	code = append(code, opI32Sub)
	code = appendU32(append(code, opLocalGet), n)
	code = append(code, opI32GeU, opIf, typeI32)
	code = appendU32(append(code, opGlobalGet), w.vs)
	code = appendU32(append(code, opGlobalGet), w.vs)
	code = appendU32(append(code, opLocalGet), n)
	code = append(code, opI32Add)
	code = appendU32(append(code, opGlobalSet), w.vs)
	code = append(code, opElse)
	code = appendI32Const(code, math.MaxUint32)
	return append(code, opEnd)
}

// helper returns the function index of a helper, appending it on first use.
func (w *rewriter) helper(slot *int64, body func() []byte) uint32 {
	if *slot < 0 {
		*slot = int64(w.nextFunc)
		w.nextFunc++
		w.helpers = append(w.helpers, body())
	}
	return uint32(*slot)
}

// checkRange appends: trap unless [local p, local p + local n) lies within
// the guest's memory (p > G or n > G − p).
func (w *rewriter) checkRange(code []byte, p, n uint32) []byte {
	g := uint32(w.layout.GuestBytes)
	code = appendU32(append(code, opLocalGet), p)
	code = appendI32Const(code, g)
	code = append(code, opI32GtU)
	code = appendU32(append(code, opLocalGet), n)
	code = appendI32Const(code, g)
	code = appendU32(append(code, opLocalGet), p)
	code = append(code, opI32Sub, opI32GtU, opI32Or)
	return append(code, opIf, blockEmpty, opUnreachable, opEnd)
}

// markRange appends: when local n > 0, mark every page of [local d, local
// d + local n) with a memory.fill on the map.
func (w *rewriter) markRange(code []byte, d, n uint32) []byte {
	code = appendU32(append(code, opLocalGet), n)
	code = append(code, opIf, blockEmpty)
	// destination: map + d>>12
	code = appendU32(append(code, opLocalGet), d)
	code = appendI32Const(code, pageShift)
	code = append(code, opI32ShrU)
	code = appendI32Const(code, uint32(w.layout.MapOffset))
	code = append(code, opI32Add)
	code = appendI32Const(code, 1)
	// count: (d+n−1)>>12 − d>>12 + 1
	code = appendU32(append(code, opLocalGet), d)
	code = appendU32(append(code, opLocalGet), n)
	code = append(code, opI32Add)
	code = appendI32Const(code, 1)
	code = append(code, opI32Sub)
	code = appendI32Const(code, pageShift)
	code = append(code, opI32ShrU)
	code = appendU32(append(code, opLocalGet), d)
	code = appendI32Const(code, pageShift)
	code = append(code, opI32ShrU)
	code = append(code, opI32Sub)
	code = appendI32Const(code, 1)
	code = append(code, opI32Add)
	code = append(code, opPrefixMisc, miscMemoryFill, 0)
	return append(code, opEnd)
}

// fillHelper is func (d, v, n i32): check, mark, memory.fill.
func (w *rewriter) fillHelper() []byte {
	code := []byte{0} // no locals
	code = w.checkRange(code, 0, 2)
	code = w.markRange(code, 0, 2)
	code = append(code, opLocalGet, 0, opLocalGet, 1, opLocalGet, 2, opPrefixMisc, miscMemoryFill, 0)
	return append(code, opEnd)
}

// copyHelper is func (d, s, n i32): check both ranges, mark the
// destination, memory.copy.
func (w *rewriter) copyHelper() []byte {
	code := []byte{0}
	code = w.checkRange(code, 0, 2)
	code = w.checkRange(code, 1, 2)
	code = w.markRange(code, 0, 2)
	code = append(code, opLocalGet, 0, opLocalGet, 1, opLocalGet, 2, opPrefixMisc, miscMemoryCopy, 0, 0)
	return append(code, opEnd)
}
