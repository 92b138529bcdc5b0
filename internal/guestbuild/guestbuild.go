package guestbuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Flags are the go build flags of a guest module.
var Flags = []string{"-buildmode=c-shared", "-trimpath", "-ldflags=-buildid=", "-buildvcs=false"}

// Build compiles the Go main package in dir for GOOS=wasip1 GOARCH=wasm as a
// reactor and returns the module. dir is resolved within its enclosing Go
// module (the repository's, so guests use the local guest SDK).
func Build(ctx context.Context, dir string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	out, err := os.MkdirTemp("", "guestbuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	target := filepath.Join(out, "job.wasm")
	args := append([]string{"build"}, Flags...)
	args = append(args, "-o", target, ".")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off", "GOWASM=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("guestbuild: go build in %s: %v\n%s", dir, err, stderr.String())
	}
	return os.ReadFile(target)
}

var (
	cacheMu sync.Mutex
	cache   = map[string][]byte{}
)

// Cached is Build, done once per directory for the life of the process:
// test binaries build each guest once however many tests use it. Callers
// must not modify the returned bytes.
func Cached(ctx context.Context, dir string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if b, ok := cache[abs]; ok {
		return b, nil
	}
	b, err := Build(ctx, abs)
	if err != nil {
		return nil, err
	}
	cache[abs] = b
	return b, nil
}
