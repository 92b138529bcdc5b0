package snapshot

import (
	"errors"
	"fmt"
)

// Opcodes the rewriter emits or treats specially.
const (
	opUnreachable  = 0x00
	opNop          = 0x01
	opBlock        = 0x02
	opLoop         = 0x03
	opIf           = 0x04
	opElse         = 0x05
	opEnd          = 0x0b
	opCall         = 0x10
	opLocalGet     = 0x20
	opLocalSet     = 0x21
	opGlobalGet    = 0x23
	opGlobalSet    = 0x24
	opTableSet     = 0x26
	opI32Store8    = 0x3a
	opMemorySize   = 0x3f
	opMemoryGrow   = 0x40
	opI32Const     = 0x41
	opI32GeU       = 0x4f
	opI32GtU       = 0x4b
	opI32Add       = 0x6a
	opI32Sub       = 0x6b
	opI32Or        = 0x72
	opI32ShrU      = 0x76
	opPrefixMisc   = 0xfc
	opPrefixSIMD   = 0xfd
	opPrefixAtomic = 0xfe

	miscMemoryInit = 8
	miscDataDrop   = 9
	miscMemoryCopy = 10
	miscMemoryFill = 11
	miscTableInit  = 12
	miscElemDrop   = 13
	miscTableCopy  = 14
	miscTableGrow  = 15
	miscTableSize  = 16
	miscTableFill  = 17
)

// Value types.
const (
	typeI32       = 0x7f
	typeI64       = 0x7e
	typeF32       = 0x7d
	typeF64       = 0x7c
	typeV128      = 0x7b
	typeFuncref   = 0x70
	typeExternref = 0x6f
	blockEmpty    = 0x40
)

func isValType(b byte) bool {
	switch b {
	case typeI32, typeI64, typeF32, typeF64, typeV128, typeFuncref, typeExternref:
		return true
	}
	return false
}

// kind says what the rewriter does with an instruction.
type kind uint8

const (
	kCopy     kind = iota // copied as it is
	kStore                // a store: checked and marked
	kSize                 // memory.size
	kGrow                 // memory.grow
	kFill                 // memory.fill
	kCopyMem              // memory.copy
	kDataDrop             // data.drop: becomes nop
	kOpen                 // block, loop, if: opens a label
	kElse                 // else
	kEnd                  // end
)

// instr is one decoded instruction of a function body.
type instr struct {
	start, end int    // its bytes in the body
	kind       kind   //
	offset     uint32 // a store's memarg offset
	size       uint32 // a store's access size in bytes
	valType    byte   // a store's value type
}

// refusal is an instruction per-unit and block modes refuse, with why.
type refusal struct {
	name, why string
}

var (
	whyTables  = "per-unit and block modes need immutable tables"
	whyInit    = "per-unit and block modes cannot restore passive data segments"
	whyThreads = "per-unit and block modes do not support threads"
	whyEH      = "per-unit and block modes do not support exception handling"
)

// refusedError is what readInstr returns for a refused instruction; the
// caller adds the function index.
type refusedError struct{ refusal }

func (e *refusedError) Error() string { return e.name }

// storeOps are the scalar stores: access size and value type.
var storeOps = [0x3f]struct {
	size uint32
	typ  byte
}{
	0x36: {4, typeI32}, 0x37: {8, typeI64}, 0x38: {4, typeF32}, 0x39: {8, typeF64},
	0x3a: {1, typeI32}, 0x3b: {2, typeI32}, 0x3c: {1, typeI64}, 0x3d: {2, typeI64}, 0x3e: {4, typeI64},
}

// simdGaps are the unassigned opcodes of the SIMD proposal below 256.
var simdGaps = [256]bool{
	154: true, 162: true, 165: true, 166: true, 175: true, 176: true, 178: true, 179: true,
	180: true, 187: true, 194: true, 197: true, 198: true, 207: true, 208: true, 210: true,
	211: true, 212: true, 226: true, 238: true,
}

// readInstr decodes the instruction at r and says what to do with it.
func readInstr(r *reader) (instr, error) {
	in := instr{start: r.off}
	op, err := r.byte()
	if err != nil {
		return in, err
	}
	switch {
	case op == opUnreachable, op == opNop, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1,
		op >= 0x45 && op <= 0xc4:
		// No immediates (0x45–0xc4: numeric, conversions, sign extension).
	case op == opBlock, op == opLoop, op == opIf:
		in.kind = kOpen
		err = blockType(r)
	case op == opElse:
		in.kind = kElse
	case op == opEnd:
		in.kind = kEnd
	case op == 0x0c, op == 0x0d, // br, br_if
		op == opCall, op == 0x12, // call, return_call
		op >= opLocalGet && op <= opGlobalSet,
		op == 0x25, // table.get
		op == 0xd2: // ref.func
		_, err = r.u32()
	case op == 0x0e: // br_table
		var n uint32
		if n, err = r.u32(); err == nil {
			for i := uint64(0); i <= uint64(n) && err == nil; i++ {
				_, err = r.u32()
			}
		}
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect: type, table
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	case op == 0x1c: // select t*
		var n uint32
		if n, err = r.u32(); err == nil {
			for i := uint32(0); i < n && err == nil; i++ {
				var t byte
				if t, err = r.byte(); err == nil && !isValType(t) {
					err = fmt.Errorf("bad value type %#x", t)
				}
			}
		}
	case op >= 0x28 && op <= 0x35: // loads
		_, err = memarg(r)
	case op >= 0x36 && op <= 0x3e: // stores
		in.kind = kStore
		s := storeOps[op]
		in.size, in.valType = s.size, s.typ
		in.offset, err = memarg(r)
	case op == opMemorySize, op == opMemoryGrow:
		in.kind = kSize
		if op == opMemoryGrow {
			in.kind = kGrow
		}
		err = memIndex(r)
	case op == opI32Const:
		_, err = r.sleb(32)
	case op == 0x42:
		_, err = r.sleb(64)
	case op == 0x43:
		err = r.skip(4)
	case op == 0x44:
		err = r.skip(8)
	case op == 0xd0: // ref.null t
		var t byte
		if t, err = r.byte(); err == nil && t != typeFuncref && t != typeExternref {
			err = fmt.Errorf("bad reference type %#x", t)
		}
	case op == opTableSet:
		return in, &refusedError{refusal{"table.set", whyTables}}
	case op == opPrefixMisc:
		err = miscInstr(r, &in)
	case op == opPrefixSIMD:
		err = simdInstr(r, &in)
	case op == opPrefixAtomic:
		sub, _ := r.u32()
		return in, &refusedError{refusal{fmt.Sprintf("atomic instruction 0xfe %d", sub), whyThreads}}
	case op >= 0x06 && op <= 0x0a, op == 0x18, op == 0x19, op == 0x1f:
		return in, &refusedError{refusal{fmt.Sprintf("exception-handling instruction %#x", op), whyEH}}
	default:
		return in, fmt.Errorf("unknown opcode %#x", op)
	}
	in.end = r.off
	return in, err
}

func miscInstr(r *reader, in *instr) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch sub {
	case 0, 1, 2, 3, 4, 5, 6, 7: // saturating truncations
	case miscMemoryInit:
		return &refusedError{refusal{"memory.init", whyInit}}
	case miscDataDrop:
		in.kind = kDataDrop
		_, err = r.u32()
	case miscMemoryCopy:
		in.kind = kCopyMem
		if err = memIndex(r); err == nil {
			err = memIndex(r)
		}
	case miscMemoryFill:
		in.kind = kFill
		err = memIndex(r)
	case miscTableInit:
		return &refusedError{refusal{"table.init", whyTables}}
	case miscElemDrop:
		return &refusedError{refusal{"elem.drop", whyTables}}
	case miscTableCopy:
		return &refusedError{refusal{"table.copy", whyTables}}
	case miscTableGrow:
		return &refusedError{refusal{"table.grow", whyTables}}
	case miscTableSize:
		_, err = r.u32()
	case miscTableFill:
		return &refusedError{refusal{"table.fill", whyTables}}
	default:
		return fmt.Errorf("unknown opcode 0xfc %d", sub)
	}
	return err
}

func simdInstr(r *reader, in *instr) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 10, sub == 92, sub == 93: // loads, splat loads, zero loads
		_, err = memarg(r)
	case sub == 11: // v128.store
		in.kind, in.size, in.valType = kStore, 16, typeV128
		in.offset, err = memarg(r)
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		err = r.skip(16)
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		err = r.skip(1)
	case sub >= 84 && sub <= 87: // load lane
		if _, err = memarg(r); err == nil {
			err = r.skip(1)
		}
	case sub >= 88 && sub <= 91: // store lane
		in.kind, in.size, in.valType = kStore, 1<<(sub-88), typeV128
		if in.offset, err = memarg(r); err == nil {
			err = r.skip(1)
		}
	case sub < 256 && !simdGaps[sub]:
		// No immediates.
	default:
		return fmt.Errorf("unknown opcode 0xfd %d", sub)
	}
	return err
}

// memarg reads alignment and offset; an alignment with bit 6 set names a
// memory (multi-memory), which is refused.
func memarg(r *reader) (uint32, error) {
	align, err := r.u32()
	if err != nil {
		return 0, err
	}
	if align >= 64 {
		return 0, errors.New("memory access names a second memory")
	}
	return r.u32()
}

// memIndex reads a memory index, which must be 0.
func memIndex(r *reader) error {
	i, err := r.u32()
	if err == nil && i != 0 {
		err = errors.New("instruction names a second memory")
	}
	return err
}

// blockType reads a block type: empty, one value type, or a type index (s33).
func blockType(r *reader) error {
	if r.off < len(r.b) {
		if b := r.b[r.off]; b == blockEmpty || isValType(b) {
			r.off++
			return nil
		}
	}
	v, err := r.sleb(33)
	if err == nil && v < 0 {
		err = fmt.Errorf("bad block type %d", v)
	}
	return err
}
