package guestbuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// CFlags are the clang flags of a C guest module (a WASI reactor).
var CFlags = []string{"--target=wasm32-wasi", "-O2", "-mexec-model=reactor"}

// ErrNoC says that C guests cannot be built here; tests skip with it.
var ErrNoC = errors.New("guestbuild: no clang for wasm32-wasi; install Debian's clang lld wasi-libc libclang-rt-14-dev-wasm32 (as .ci/run does) to build C guests")

var (
	cOnce sync.Once
	cErr  error
)

// CHeaderDir is the directory of cove.h in this repository.
func CHeaderDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "sdk", "guest", "c")
}

func clang() (string, error) {
	for _, name := range []string{"clang", "clang-14"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoC
}

// HaveC reports, as ErrNoC, when clang cannot build a C guest here: it
// builds an empty reactor once.
func HaveC(ctx context.Context) error {
	cOnce.Do(func() {
		dir, err := os.MkdirTemp("", "guestbuild-c-")
		if err != nil {
			cErr = err
			return
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "probe.c")
		if err := os.WriteFile(src, []byte("#include <stdlib.h>\nint probe(int n){ return (int)(long)malloc(n); }\n"), 0o644); err != nil {
			cErr = err
			return
		}
		if _, err := BuildC(ctx, src); err != nil {
			cErr = fmt.Errorf("%w (%v)", ErrNoC, err)
		}
	})
	return cErr
}

// BuildC compiles C sources into a guest module with clang (CFlags, cove.h
// on the include path). The build is reproducible.
func BuildC(ctx context.Context, srcs ...string) ([]byte, error) {
	cc, err := clang()
	if err != nil {
		return nil, err
	}
	out, err := os.MkdirTemp("", "guestbuild-c-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	target := filepath.Join(out, "job.wasm")
	args := append(append([]string{}, CFlags...), "-I", CHeaderDir(), "-o", target)
	args = append(args, srcs...)
	cmd := exec.CommandContext(ctx, cc, args...)
	var stderr bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("guestbuild: clang %v: %v\n%s", srcs, err, stderr.String())
	}
	return os.ReadFile(target)
}
