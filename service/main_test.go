package service_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/covedata/cove/runtime/isolate"
	"github.com/covedata/cove/service"
)

// TestMain doubles as a server process: with COVE_SERVE_CHILD set, the test
// binary serves that data directory (the crash test SIGKILLs it).
func TestMain(m *testing.M) {
	isolate.ServeIfChild() // the servers' sandboxes run this binary
	if dir := os.Getenv("COVE_SERVE_CHILD"); dir != "" {
		os.Exit(serveChild(dir))
	}
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

func serveChild(dir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	workers, _ := strconv.Atoi(os.Getenv("COVE_SERVE_WORKERS"))
	srv, err := service.New(ctx, service.Options{DataDir: dir, Workers: workers, Logger: quietLogger(), InProcessGuests: raceEnabled})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	srv.Start()
	fmt.Printf("listening on http://%s\n", ln.Addr())
	err = srv.Serve(ctx, ln, "", "")
	srv.Close()
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}
