package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/service"
)

const serveUsage = `  cove serve -data-dir DIR [-addr 127.0.0.1:8080] [-tls-cert FILE -tls-key FILE] [-workers N]
             [-job-deadline 60s] [-max-module-bytes N] [-init-token FILE]
`

// serveCmd runs the HTTP API until interrupted.
func serveCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "Cove data directory (created if needed)")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address (port 0: any free port, printed)")
	cert := fs.String("tls-cert", "", "TLS certificate (PEM); with -tls-key, serve HTTPS")
	key := fs.String("tls-key", "", "TLS private key (PEM)")
	workers := fs.Int("workers", service.DefaultWorkers, "jobs run at once")
	deadline := fs.Duration("job-deadline", service.DefaultJobDeadline, "longest run of one job")
	maxModule := fs.Int64("max-module-bytes", service.DefaultMaxModuleBytes, "largest module accepted")
	initToken := fs.String("init-token", "", "if no token exists yet, issue an authority token and write it to this file (mode 0600)")
	inProcess := fs.Bool("in-process-guests", false, "run guests in this process instead of a sandbox process each (development only)")
	pool := fs.Int("sandbox-pool", service.DefaultSandboxPool, "idle sandboxes kept started ahead (0: none; experimental, see runtime/isolate)")
	reuse := fs.Bool("sandbox-reuse", true, "let a sandbox serve the next guest of the same operator, module, dataset and columns (see runtime/isolate)")
	verbose := fs.Bool("v", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("%w: give -data-dir", cove.ErrInvalid)
	}
	if (*cert == "") != (*key == "") {
		return fmt.Errorf("%w: give both -tls-cert and -tls-key", cove.ErrInvalid)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := service.New(ctx, service.Options{DataDir: *dir, Workers: *workers, JobDeadline: *deadline,
		MaxModuleBytes: *maxModule, Logger: logger, InProcessGuests: *inProcess, SandboxPool: *pool, NoSandboxReuse: !*reuse})
	if err != nil {
		return err
	}
	defer srv.Close()
	if *initToken != "" {
		if err := initAuthorityToken(ctx, srv.Tokens(), *initToken); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if *cert != "" {
		scheme = "https"
	}
	srv.Start()
	fmt.Fprintf(out, "cove serve: listening on %s://%s (data directory %s, %d workers)\n", scheme, ln.Addr(), *dir, *workers)
	if f, ok := out.(*os.File); ok {
		f.Sync()
	}
	err = srv.Serve(ctx, ln, *cert, *key)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// initAuthorityToken issues the first authority token, once.
func initAuthorityToken(ctx context.Context, toks *service.Tokens, path string) error {
	list, err := toks.List(ctx)
	if err != nil || len(list) > 0 {
		return err
	}
	tok, _, err := toks.Create(ctx, service.Authority, "authority", "issued by cove serve -init-token at "+time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(tok+"\n"), 0o600)
}
