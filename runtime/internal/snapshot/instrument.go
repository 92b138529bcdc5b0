package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/covedata/cove"
)

// ValType is the type of a restorable global, in the binary encoding
// (equal to wazero's api.ValueType).
type ValType byte

// The value types of restorable globals.
const (
	I32 ValType = typeI32
	I64 ValType = typeI64
	F32 ValType = typeF32
	F64 ValType = typeF64
)

// Global is a mutable global of an instrumented module, exported so that the
// host can save and set it.
type Global struct {
	Name  string  // export name: "cove$g" and the index
	Index uint32  // global index in the instrumented module
	Type  ValType //
	Size  bool    // the added virtual memory size $vs, in pages
}

// Module is an instrumented module.
type Module struct {
	Wasm    []byte   // the rewritten binary
	Layout  Layout   // where guest memory and map lie
	Globals []Global // every mutable global, $vs included, in index order
}

// GlobalPrefix starts the export name of every restorable global.
const GlobalPrefix = "cove$g"

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// sectionOrder is each known section's rank in a module.
var sectionOrder = map[byte]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secTag: 6, secGlobal: 7,
	secExport: 8, secStart: 9, secElement: 10, secDataCount: 11, secCode: 12, secData: 13,
}

// fillType is the helpers' type: (dst, value or src, len i32) -> ().
var fillType = []byte{0x60, 3, typeI32, typeI32, typeI32, 0}

type section struct {
	id   byte
	body []byte
	name string // of a custom section
}

type global struct {
	typ byte
	mut bool
}

// module is what Instrument learns of the input.
type module struct {
	sections      []section
	types         [][]byte // each function type's encoding, 0x60 included
	params        []uint32 // each type's parameter count
	importedFuncs uint32
	importedGlobs uint32
	funcTypes     []uint32 // each defined function's type index
	memMin        uint32
	memMax        uint32
	memHasMax     bool
	memories      int
	globals       []global
	exports       map[string]bool
}

// Instrument rewrites module for a guest memory of guestPages pages (the
// doc comment of the package says how). It refuses, with an error wrapping
// cove.ErrInvalid, a module that does not decode, that uses what per-unit
// and block modes cannot restore, or whose memory needs more than
// guestPages. It does not fully validate the module: compile the original
// with the engine first.
func Instrument(wasm []byte, guestPages uint32) (*Module, error) {
	l, err := NewLayout(guestPages)
	if err != nil {
		return nil, err
	}
	m, err := parse(wasm)
	if err != nil {
		return nil, err
	}
	if m.memories == 0 {
		return nil, invalid("module defines no memory")
	}
	if m.memMin > guestPages {
		return nil, invalid("module needs %d pages of memory at start, more than the %d pages configured for it", m.memMin, guestPages)
	}
	if m.memHasMax && m.memMax < m.memMin {
		return nil, invalid("module's memory has a maximum below its minimum")
	}
	r := rewriter{
		layout:   l,
		growCap:  guestPages,
		vs:       m.importedGlobs + uint32(len(m.globals)),
		nextFunc: m.importedFuncs + uint32(len(m.funcTypes)),
		fill:     -1,
		copy:     -1,
	}
	if m.memHasMax && m.memMax < r.growCap {
		r.growCap = m.memMax
	}
	out, globals, err := r.build(m)
	if err != nil {
		return nil, err
	}
	return &Module{Wasm: out, Layout: l, Globals: globals}, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{cove.ErrInvalid}, args...)...)
}

// malformed wraps a decoding error.
func malformed(what string, err error) error {
	if errors.Is(err, cove.ErrInvalid) {
		return err
	}
	return invalid("module does not decode: %s: %v", what, err)
}

// parse decodes the sections of wasm and what the rewrite needs of them.
func parse(wasm []byte) (*module, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return nil, invalid("module does not decode: not a WebAssembly binary")
	}
	if !bytes.Equal(wasm[4:8], []byte{1, 0, 0, 0}) {
		return nil, invalid("module does not decode: unsupported binary version")
	}
	m := &module{exports: map[string]bool{}}
	r := &reader{b: wasm, off: 8}
	last := 0
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, malformed("section", err)
		}
		size, err := r.u32()
		if err != nil {
			return nil, malformed("section size", err)
		}
		body, err := r.bytes(size)
		if err != nil {
			return nil, malformed(fmt.Sprintf("section %d", id), err)
		}
		s := section{id: id, body: body}
		if id == secCustom {
			cr := &reader{b: body}
			if s.name, err = cr.name(); err != nil {
				return nil, malformed("custom section name", err)
			}
			m.sections = append(m.sections, s)
			continue
		}
		rank, ok := sectionOrder[id]
		if !ok {
			return nil, invalid("module does not decode: unknown section %d", id)
		}
		if rank <= last {
			return nil, invalid("module does not decode: section %d out of order or repeated", id)
		}
		last = rank
		if err := m.decode(s); err != nil {
			return nil, err
		}
		m.sections = append(m.sections, s)
	}
	return m, nil
}

// vec reads a vector's length and calls each for every element.
func vec(r *reader, what string, each func(i uint32) error) error {
	n, err := r.u32()
	if err != nil {
		return malformed(what, err)
	}
	if uint64(n) > uint64(len(r.b)-r.off) {
		return malformed(what, errTruncated) // every element takes at least a byte
	}
	for i := uint32(0); i < n; i++ {
		if err := each(i); err != nil {
			return malformed(what, err)
		}
	}
	if !r.done() {
		return malformed(what, errors.New("bytes after the last element"))
	}
	return nil
}

func (m *module) decode(s section) error {
	r := &reader{b: s.body}
	switch s.id {
	case secType:
		return vec(r, "type section", func(uint32) error {
			start := r.off
			form, err := r.byte()
			if err != nil {
				return err
			}
			if form != 0x60 {
				return fmt.Errorf("type form %#x is not a function type", form)
			}
			var params uint32
			for k := 0; k < 2; k++ {
				n, err := r.u32()
				if err != nil {
					return err
				}
				if k == 0 {
					params = n
				}
				b, err := r.bytes(n)
				if err != nil {
					return err
				}
				for _, t := range b {
					if !isValType(t) {
						return fmt.Errorf("unsupported value type %#x", t)
					}
				}
			}
			m.types = append(m.types, s.body[start:r.off])
			m.params = append(m.params, params)
			return nil
		})
	case secImport:
		return vec(r, "import section", func(uint32) error {
			if _, err := r.name(); err != nil {
				return err
			}
			if _, err := r.name(); err != nil {
				return err
			}
			kind, err := r.byte()
			if err != nil {
				return err
			}
			switch kind {
			case 0x00:
				if _, err := r.u32(); err != nil {
					return err
				}
				m.importedFuncs++
			case 0x01:
				t, err := r.byte()
				if err != nil {
					return err
				}
				if t != typeFuncref && t != typeExternref {
					return fmt.Errorf("unsupported table type %#x", t)
				}
				if _, _, _, err := limits(r); err != nil {
					return err
				}
			case 0x02:
				return invalid("module imports its memory: per-unit and block modes need a memory the module defines")
			case 0x03:
				t, err := r.byte()
				if err != nil {
					return err
				}
				mut, err := r.byte()
				if err != nil {
					return err
				}
				if !isValType(t) || mut > 1 {
					return errors.New("unsupported global type")
				}
				if mut == 1 {
					return invalid("module imports mutable global %d: per-unit and block modes cannot restore imported globals", m.importedGlobs)
				}
				m.importedGlobs++
			case 0x04:
				return invalid("module imports a tag: per-unit and block modes do not support exception handling")
			default:
				return fmt.Errorf("bad import kind %#x", kind)
			}
			return nil
		})
	case secFunction:
		return vec(r, "function section", func(uint32) error {
			t, err := r.u32()
			if err != nil {
				return err
			}
			if t >= uint32(len(m.types)) {
				return fmt.Errorf("type index %d out of range", t)
			}
			m.funcTypes = append(m.funcTypes, t)
			return nil
		})
	case secMemory:
		return vec(r, "memory section", func(uint32) error {
			m.memories++
			if m.memories > 1 {
				return invalid("module defines more than one memory: per-unit and block modes need exactly one")
			}
			var err error
			m.memMin, m.memMax, m.memHasMax, err = limits(r)
			if err == nil && (m.memMin > 65536 || m.memHasMax && m.memMax > 65536) {
				err = errors.New("memory limits above 65536 pages")
			}
			return err
		})
	case secTag:
		return invalid("module defines tags: per-unit and block modes do not support exception handling")
	case secGlobal:
		return vec(r, "global section", func(i uint32) error {
			t, err := r.byte()
			if err != nil {
				return err
			}
			mut, err := r.byte()
			if err != nil {
				return err
			}
			if !isValType(t) || mut > 1 {
				return errors.New("unsupported global type")
			}
			index := m.importedGlobs + i
			if mut == 1 {
				switch t {
				case typeV128:
					return invalid("module has a mutable v128 global (global %d): per-unit and block modes restore only i32, i64, f32 and f64 globals", index)
				case typeFuncref, typeExternref:
					return invalid("module has a mutable reference global (global %d): per-unit and block modes restore only i32, i64, f32 and f64 globals", index)
				}
			}
			m.globals = append(m.globals, global{typ: t, mut: mut == 1})
			return constExpr(r)
		})
	case secExport:
		return vec(r, "export section", func(uint32) error {
			name, err := r.name()
			if err != nil {
				return err
			}
			if m.exports[name] {
				return fmt.Errorf("duplicate export %q", name)
			}
			m.exports[name] = true
			if _, err := r.byte(); err != nil {
				return err
			}
			_, err = r.u32()
			return err
		})
	case secData:
		return vec(r, "data section", func(i uint32) error { return m.dataSegment(r, i) })
	}
	return nil
}

// limits reads a table's or memory's limits. Shared and 64-bit memories
// are refused.
func limits(r *reader) (min, max uint32, hasMax bool, err error) {
	flag, err := r.byte()
	if err != nil {
		return 0, 0, false, err
	}
	switch flag {
	case 0x00, 0x01:
	case 0x02, 0x03:
		return 0, 0, false, invalid("module uses a shared memory: per-unit and block modes do not support threads")
	default:
		return 0, 0, false, invalid("module uses limits of kind %#x (64-bit memory?): per-unit and block modes need a 32-bit memory", flag)
	}
	if min, err = r.u32(); err != nil || flag == 0 {
		return min, 0, false, err
	}
	max, err = r.u32()
	return min, max, true, err
}

// constExpr skips a constant expression up to its end.
func constExpr(r *reader) error {
	for {
		in, err := readInstr(r)
		if err != nil {
			return err
		}
		switch in.kind {
		case kEnd:
			return nil
		case kCopy:
		default:
			return errors.New("constant expression uses a non-constant instruction")
		}
	}
}

// dataSegment checks that an active segment lies within the declared
// initial memory, where the original module would put it (or fail to
// instantiate): the rewritten memory is larger, and a segment beyond the
// declared memory would otherwise land in guest pages or the map.
func (m *module) dataSegment(r *reader, i uint32) error {
	mode, err := r.u32()
	if err != nil {
		return err
	}
	var offset uint64
	switch mode {
	case 1: // passive
	case 0, 2:
		if mode == 2 {
			if err := memIndex(r); err != nil {
				return err
			}
		}
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c != opI32Const {
			return invalid("data segment %d has an offset that is not an i32.const: per-unit and block modes need constant offsets", i)
		}
		v, err := r.sleb(32)
		if err != nil {
			return err
		}
		if e, err := r.byte(); err != nil || e != opEnd {
			return invalid("data segment %d has an offset that is not an i32.const: per-unit and block modes need constant offsets", i)
		}
		offset = uint64(uint32(v))
	default:
		return fmt.Errorf("bad data segment mode %d", mode)
	}
	n, err := r.u32()
	if err != nil {
		return err
	}
	if err := r.skip(int(n)); err != nil {
		return err
	}
	if mode != 1 && offset+uint64(n) > uint64(m.memMin)*WasmPageSize {
		return invalid("data segment %d ends at byte %d, beyond the module's initial memory", i, offset+uint64(n))
	}
	return nil
}

// rewriter builds the instrumented module.
type rewriter struct {
	layout   Layout
	growCap  uint32 // the most pages memory.grow may reach
	vs       uint32 // index of $vs
	nextFunc uint32 // index of the next appended helper
	fill     int64  // index of the fill helper, or -1
	copy     int64  // index of the copy helper, or -1
	helpers  [][]byte
	scratch  []byte // a function's rewritten code, reused
}

func (w *rewriter) build(m *module) ([]byte, []Global, error) {
	bodies := map[byte][]byte{}
	for _, s := range m.sections {
		if s.id == secCode {
			code, err := w.code(m, s.body)
			if err != nil {
				return nil, nil, err
			}
			bodies[secCode] = code
		}
	}
	if len(m.funcTypes) > 0 && bodies[secCode] == nil {
		return nil, nil, invalid("module does not decode: functions without a code section")
	}

	// Types and functions of the helpers.
	helperType := uint32(len(m.types))
	for i, t := range m.types {
		if bytes.Equal(t, fillType) {
			helperType = uint32(i)
			break
		}
	}
	if len(w.helpers) > 0 && helperType == uint32(len(m.types)) {
		bodies[secType] = appendVec(m.types, fillType)
	}
	if len(w.helpers) > 0 {
		var fns []byte
		for _, t := range m.funcTypes {
			fns = appendU32(fns, t)
		}
		for range w.helpers {
			fns = appendU32(fns, helperType)
		}
		bodies[secFunction] = append(appendU32(nil, uint32(len(m.funcTypes)+len(w.helpers))), fns...)
	}

	// Memory: fixed at M + map pages.
	mem := []byte{1, 0x01}
	mem = appendU32(mem, w.layout.Pages)
	bodies[secMemory] = appendU32(mem, w.layout.Pages)

	// Globals: the original ones and $vs.
	var gs []Global
	for i, g := range m.globals {
		if g.mut {
			idx := m.importedGlobs + uint32(i)
			gs = append(gs, Global{Name: GlobalPrefix + strconv.FormatUint(uint64(idx), 10), Index: idx, Type: ValType(g.typ)})
		}
	}
	gs = append(gs, Global{Name: GlobalPrefix + strconv.FormatUint(uint64(w.vs), 10), Index: w.vs, Type: I32, Size: true})
	vsGlobal := appendI32Const([]byte{typeI32, 1}, m.memMin)
	vsGlobal = append(vsGlobal, opEnd)
	bodies[secGlobal] = extendVec(sectionBody(m, secGlobal), uint32(len(m.globals)), 1, vsGlobal)

	// Exports: the original ones and every restorable global.
	var ex []byte
	for _, g := range gs {
		if m.exports[g.Name] {
			return nil, nil, invalid("module exports %q, a name per-unit and block modes reserve", g.Name)
		}
		ex = appendName(ex, g.Name)
		ex = append(ex, 0x03)
		ex = appendU32(ex, g.Index)
	}
	bodies[secExport] = extendVec(sectionBody(m, secExport), uint32(len(m.exports)), uint32(len(gs)), ex)

	// Assemble in section order; new sections go where their rank says.
	out := append([]byte(nil), "\x00asm\x01\x00\x00\x00"...)
	emitted := map[byte]bool{}
	emitBefore := func(rank int) {
		for _, id := range []byte{secType, secFunction, secMemory, secGlobal, secExport, secCode} {
			if sectionOrder[id] < rank && !emitted[id] && bodies[id] != nil {
				out = appendSection(out, id, bodies[id])
				emitted[id] = true
			}
		}
	}
	for _, s := range m.sections {
		if s.id == secCustom {
			if s.name == "name" {
				out = appendSection(out, secCustom, s.body)
			}
			continue
		}
		emitBefore(sectionOrder[s.id])
		body := s.body
		if b, ok := bodies[s.id]; ok {
			body = b
		}
		out = appendSection(out, s.id, body)
		emitted[s.id] = true
	}
	emitBefore(math.MaxInt)
	return out, gs, nil
}

// sectionBody is the body of m's section id, or nil.
func sectionBody(m *module, id byte) []byte {
	for _, s := range m.sections {
		if s.id == id {
			return s.body
		}
	}
	return nil
}

// extendVec appends k encoded elements to a vector section of n elements.
func extendVec(body []byte, n, k uint32, more []byte) []byte {
	if n > 0 {
		r := &reader{b: body}
		_, _ = r.u32() // decoded before
		body = body[r.off:]
	} else {
		body = nil
	}
	out := appendU32(nil, n+k)
	out = append(out, body...)
	return append(out, more...)
}

func appendVec(elems [][]byte, more ...[]byte) []byte {
	out := appendU32(nil, uint32(len(elems)+len(more)))
	for _, e := range append(elems, more...) {
		out = append(out, e...)
	}
	return out
}
