package isolate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/wasm"
)

// ServeIfChild serves as a sandbox and exits when the process was started
// as one (EnvChild is set); otherwise it returns at once. Test binaries
// that start sandboxes call it first thing in TestMain.
func ServeIfChild() {
	if os.Getenv(EnvChild) != "" {
		os.Exit(Serve())
	}
}

// Serve is the sandbox: it reads requests on stdin and answers on stdout
// until stdin closes, and returns the exit code. `cove sandbox` calls it.
func Serve() int {
	if os.Getenv(EnvChild) == "" {
		fmt.Fprintln(os.Stderr, "cove sandbox: not started by a Cove host")
		return 2
	}
	closeInherited()
	s := &sandbox{in: bufio.NewReaderSize(os.Stdin, 1<<16), out: bufio.NewWriterSize(os.Stdout, 1<<16)}
	// SIGTERM from the parent's watchdog cancels the running guest call.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	s.cancel = make(chan struct{})
	go func() {
		<-term
		close(s.cancel)
	}()
	if err := s.serve(); err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "cove sandbox:", err)
		return 1
	}
	return 0
}

type sandbox struct {
	in     *bufio.Reader
	out    *bufio.Writer
	cancel chan struct{}
	eng    wasm.Runtime
	mod    wasm.Module
	inst   wasm.Instance
	ginst  wasm.GroupInstance // per-unit or block mode (childgroups.go)
	sent   int                // keys sent to the parent
	cpu    uint64
}

func (s *sandbox) serve() error {
	ctx := context.Background()
	var buf []byte
	for {
		t, b, err := readFrame(s.in, buf, maxFrame)
		if err != nil {
			return err
		}
		buf = b
		if err := s.handle(ctx, t, b); err != nil {
			return err
		}
		if err := s.out.Flush(); err != nil {
			return err
		}
	}
}

// reply answers a request: OK, or the error as a wireError.
func (s *sandbox) reply(err error) error {
	if err == nil {
		return writeFrame(s.out, msgOK)
	}
	we := wireError{Code: cove.Code(err), Msg: err.Error()}
	for _, sentinel := range []error{cove.ErrInvalid, cove.ErrLimit, cove.ErrDeadline, cove.ErrGuest} {
		if errors.Is(err, sentinel) {
			we.Msg = strings.TrimPrefix(we.Msg, sentinel.Error()+": ")
			break
		}
	}
	var ge *wasm.GuestError
	if errors.As(err, &ge) {
		we = wireError{Kind: string(ge.Kind), Phase: ge.Phase, Msg: ge.Message()}
	}
	we.NoPlan = errors.Is(err, wasm.ErrNoPlanExport)
	b, _ := json.Marshal(we)
	return writeFrame(s.out, msgError, b)
}

func (s *sandbox) handle(ctx context.Context, t byte, b []byte) error {
	switch t {
	case msgConfig:
		if s.eng != nil {
			return errors.New("a second configuration")
		}
		var h hello
		if err := json.Unmarshal(b, &h); err != nil {
			return err
		}
		if err := setLimits(h.AddressSpace, h.CPUSeconds, max(h.Uses, 1)); err != nil {
			return fmt.Errorf("rlimits: %w", err)
		}
		s.cpu = h.CPUSeconds
		var err error
		if h.Engine == EngineWasmer {
			s.eng, err = newWasmer(ctx, h.Limits, os.Stderr)
		} else {
			s.eng, err = wasm.NewEngine(ctx, wasm.NewConfig().WithLimits(h.Limits, os.Stderr))
		}
		if err != nil {
			return err
		}
		return s.reply(nil)
	case msgModule:
		if s.eng == nil || s.mod != nil {
			return errors.New("module before configuration, or a second module")
		}
		m, err := s.eng.Compile(ctx, b)
		s.mod = m
		return s.reply(err)
	case msgPlan, msgGroups, msgRunGroups:
		return s.handleGroups(ctx, t, b)
	case msgInstantiate:
		if s.mod == nil || s.inst != nil || s.ginst != nil || len(b) < 8 {
			return errors.New("instantiate out of order")
		}
		var outputs []string
		if err := json.Unmarshal(b[8:], &outputs); err != nil {
			return err
		}
		cctx, cancel := s.callContext(ctx, b[:8])
		defer cancel()
		inst, err := s.mod.Instantiate(cctx, outputs)
		if err == nil {
			s.inst = inst
			err = s.sendKeys(inst, -1)
		}
		return s.reply(err)
	case msgBatch:
		if s.inst == nil || len(b) < 8 {
			return errors.New("batch before instantiate")
		}
		cctx, cancel := s.callContext(ctx, b[:8])
		defer cancel()
		return s.reply(s.batch(cctx, b[8:]))
	case msgReset:
		// The instance is done; a scoped sandbox serves the next one of
		// the same module (Config.WithReuse).
		if s.inst == nil {
			return errors.New("reset without an instance")
		}
		err := s.inst.Close(ctx)
		s.inst, s.sent = nil, 0
		return s.reply(err)
	case msgProbe:
		return s.probe()
	}
	return fmt.Errorf("unknown request %q", t)
}

// callContext is ctx with the parent's deadline, canceled by SIGTERM; the
// CPU limit is set to what the deadline allows (never past the hard limit
// set at configuration, one instance's worth per use).
func (s *sandbox) callContext(ctx context.Context, dl []byte) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if ns := int64(binary.LittleEndian.Uint64(dl)); ns != 0 {
		d := time.Unix(0, ns)
		ctx, cancel = context.WithDeadline(ctx, d)
		// CPU time is the process's total: allow what it used, the time
		// left and two seconds.
		if left := time.Until(d).Seconds(); left > 0 {
			boundCPU(usedCPU() + uint64(math.Ceil(left)) + 2)
		}
	}
	stop := make(chan struct{})
	go func() {
		select {
		case <-s.cancel:
			cancel()
		case <-stop:
		}
	}()
	return ctx, func() { close(stop); cancel() }
}

func (s *sandbox) batch(ctx context.Context, body []byte) error {
	rd, err := ipc.NewReader(bytes.NewReader(body), ipc.WithAllocator(memory.NewGoAllocator()))
	if err != nil {
		return fmt.Errorf("%w: batch: %v", cove.ErrInvalid, err)
	}
	defer rd.Release()
	if !rd.Next() {
		return fmt.Errorf("%w: batch: no record", cove.ErrInvalid)
	}
	rec := rd.RecordBatch()
	var frame []byte
	rows := int(rec.NumRows())
	return s.inst.ProcessBatchRuns(ctx, rec, func(em wasm.Emission) error {
		maxKey := -1
		for _, k := range em.Keys {
			maxKey = max(maxKey, int(k))
		}
		for _, r := range em.Runs {
			maxKey = max(maxKey, int(r.Key))
		}
		if err := s.sendKeys(s.inst, maxKey); err != nil {
			return err
		}
		if em.Runs != nil {
			// Ranged: the selection, the values by row and the runs go as
			// they are, no contribution per row.
			if len(em.Select) != (rows+63)/64 || (em.ByRow != nil && len(em.ByRow) != rows) {
				return fmt.Errorf("%w: isolate: ranged emission does not fit the batch", cove.ErrGuest)
			}
			var flags uint32
			if em.ByRow != nil {
				flags = 1
			}
			var hdr [runsHeader]byte
			binary.LittleEndian.PutUint32(hdr[0:], uint32(em.Output))
			binary.LittleEndian.PutUint32(hdr[4:], uint32(rows))
			binary.LittleEndian.PutUint32(hdr[8:], uint32(len(em.Runs)))
			binary.LittleEndian.PutUint32(hdr[12:], flags)
			return writeFrame(s.out, msgRuns, hdr[:], leBytes(em.Select), leBytes(em.ByRow), leBytes(em.Runs))
		}
		n := len(em.Rows)
		frame = frame[:0]
		frame = binary.LittleEndian.AppendUint32(frame, uint32(em.Output))
		frame = binary.LittleEndian.AppendUint32(frame, uint32(n))
		for _, r := range em.Rows {
			frame = binary.LittleEndian.AppendUint32(frame, r)
		}
		for _, k := range em.Keys {
			frame = binary.LittleEndian.AppendUint32(frame, k)
		}
		for _, v := range em.Values {
			frame = binary.LittleEndian.AppendUint64(frame, math.Float64bits(v))
		}
		return writeFrame(s.out, msgEmission, frame)
	})
}

// keyNamer is an instance's key table.
type keyNamer interface{ KeyName(id uint32) string }

// sendKeys sends the keys interned since the last call, up to id upTo.
func (s *sandbox) sendKeys(inst keyNamer, upTo int) error {
	if upTo < s.sent {
		return nil
	}
	frame := binary.LittleEndian.AppendUint32(nil, uint32(s.sent))
	for id := s.sent; id <= upTo; id++ {
		k := inst.KeyName(uint32(id))
		frame = binary.LittleEndian.AppendUint32(frame, uint32(len(k)))
		frame = append(frame, k...)
	}
	s.sent = upTo + 1
	return writeFrame(s.out, msgKeys, frame)
}

// probe reports what the sandbox sees, for tests: its descriptors, network
// namespace and limits.
func (s *sandbox) probe() error {
	var fds []string
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the listing's own descriptor, closed by now
		}
		fd, _ := strconv.Atoi(e.Name())
		if !cloexec(fd) {
			target += " (inherited)"
		}
		fds = append(fds, e.Name()+"="+target)
	}
	var as, cpu syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_AS, &as)
	_ = syscall.Getrlimit(syscall.RLIMIT_CPU, &cpu)
	b, _ := json.Marshal(Probe{FDs: fds, NetNS: netNamespace(), AddressSpace: as.Cur, CPUSeconds: cpu.Cur, PID: os.Getpid()})
	return writeFrame(s.out, msgOK, b)
}

// Probe is what a sandbox reports of itself (tests).
type Probe struct {
	FDs          []string `json:"fds"`
	NetNS        string   `json:"netns"`
	AddressSpace uint64   `json:"address_space"`
	CPUSeconds   uint64   `json:"cpu_seconds"`
	PID          int      `json:"pid"`
}
