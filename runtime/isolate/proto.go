package isolate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
	"unsafe"

	"github.com/covedata/cove/runtime/wasm"
)

// Frames between parent and sandbox: a type byte, a little-endian u32
// length, the payload.
const (
	// parent → sandbox
	msgConfig      = 'C' // JSON hello: wasm.Limits, rlimits; then the module frame
	msgModule      = 'W' // the module bytes: the sandbox compiles and checks them
	msgInstantiate = 'I' // i64 deadline (unix ns, 0 none) + JSON outputs
	msgBatch       = 'B' // i64 deadline + an Arrow IPC stream of one record batch
	msgProbe       = 'P' // tests: the sandbox answers with what it can see
	msgReset       = 'X' // close the instance; the sandbox may get another msgInstantiate
	// msgPlan: i64 deadline, u32 n, n bytes of JSON outputs, an Arrow IPC
	// stream of the schema (no record); answered by msgOK carrying the plan.
	msgPlan = 'L'
	// msgGroups: i64 deadline + JSON groupHello: start a per-unit or block
	// instance (the sandbox serves nothing else after it).
	msgGroups = 'G'
	// msgRunGroups: i64 deadline, u32 n, n u32 group bounds, an Arrow IPC
	// stream of one record batch; answered by msgKeys, msgGroupEmission,
	// msgVector and msgFailed frames, group by group, then msgOK carrying
	// the instance's JSON wasm.GroupStats (or msgError).
	msgRunGroups = 'U'
	// sandbox → parent
	msgOK       = 'K' // the request succeeded
	msgError    = 'E' // JSON wireError: the request failed, the instance is done
	msgKeys     = 'N' // u32 first id, then (u32 len, bytes) per key: newly interned keys
	msgEmission = 'M' // listed: u32 output, u32 n, n×u32 rows, n×u32 keys, n×f64 values
	// ranged (wasm.Emission with Runs): u32 output, u32 rows, u32 nruns,
	// u32 flags (1: values), ⌈rows/64⌉×u64 selection words, with flag 1
	// rows×f64 values by row, then nruns×(u32 start, u32 end, u32 key)
	msgRuns = 'R'
	// per-unit and block modes: u32 group first, then as msgEmission
	msgGroupEmission = 'Q'
	// u32 group, u32 output, u32 n, n×f64: a block's vector
	msgVector = 'V'
	// u32 group: the group failed
	msgFailed = 'F'
)

// runsHeader is the fixed part of a msgRuns frame.
const runsHeader = 16

// leBytes is s as little-endian bytes: a view on a little-endian host.
func leBytes[T uint64 | float64 | wasm.Run](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))
	}
	b, _ := binary.Append(nil, binary.LittleEndian, s)
	return b
}

// leView reads n values of T from little-endian b: a view when the host is
// little-endian and b aligned for T, else a copy.
func leView[T uint64 | float64 | wasm.Run](b []byte, n int) []T {
	out := make([]T, 0)
	if n == 0 {
		return out
	}
	var zero T
	p := unsafe.Pointer(unsafe.SliceData(b))
	if littleEndian && uintptr(p)%unsafe.Alignof(zero) == 0 {
		return unsafe.Slice((*T)(p), n)
	}
	out = make([]T, n)
	_, _ = binary.Decode(b, binary.LittleEndian, out)
	return out
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// maxFrame bounds a frame read from the other side.
const maxFrame = 1 << 30

func writeFrame(w io.Writer, typ byte, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > maxFrame {
		return fmt.Errorf("isolate: frame of %d bytes", n)
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.LittleEndian.PutUint32(hdr[1:], uint32(n))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// readFrame reads one frame, reusing buf when it is large enough.
func readFrame(r io.Reader, buf []byte, limit int) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.LittleEndian.Uint32(hdr[1:]))
	if n > limit {
		return 0, nil, fmt.Errorf("isolate: frame of %d bytes exceeds %d", n, limit)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], buf, nil
}

// wireError is an error crossing the process boundary: a guest error's
// kind, phase and message, or a category code and message.
type wireError struct {
	Kind  string `json:"kind,omitempty"`
	Phase string `json:"phase,omitempty"`
	Code  string `json:"code,omitempty"`
	Msg   string `json:"msg"`
	// NoPlan marks wasm.ErrNoPlanExport: the module has no planning call.
	NoPlan bool `json:"no_plan,omitempty"`
}

// groupHello configures a per-unit or block instance (wasm.GroupConfig).
type groupHello struct {
	Outputs     []string `json:"outputs"`
	MemoryPages uint32   `json:"memory_pages"`
	CPULimit    int64    `json:"cpu_limit_ns"`
	MaxEmits    int64    `json:"max_emits"`
	Vectors     []int    `json:"vectors,omitempty"`
}

func (h groupHello) config() wasm.GroupConfig {
	c := wasm.NewGroupConfig().WithMemoryPages(h.MemoryPages).WithCPULimit(time.Duration(h.CPULimit)).WithMaxEmits(h.MaxEmits)
	if h.Vectors != nil {
		c = c.WithVectors(h.Vectors)
	}
	return c
}

// hello is the sandbox's configuration.
type hello struct {
	Limits       wasm.Limits `json:"limits"`
	Engine       string      `json:"engine"`        // EngineWazero or EngineWasmer
	AddressSpace uint64      `json:"address_space"` // RLIMIT_AS bytes, 0 for none
	CPUSeconds   uint64      `json:"cpu_seconds"`   // RLIMIT_CPU per instance, 0 for none
	Uses         int         `json:"uses"`          // instances the sandbox may serve in sequence (0: 1)
}
