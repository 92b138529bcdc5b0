package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/covedata/cove"
	"github.com/covedata/cove/internal/demo"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/store"
)

const usage = `usage:
  cove demo [-data-dir DIR]
  cove ledger verify (-data-dir DIR | -file FILE) [-head SIZE:HASH]
  cove ledger export -data-dir DIR
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "cove: %v (code %s)\n", err, cove.Code(err))
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("no command\n" + usage)
	}
	switch args[0] {
	case "demo":
		fs := flag.NewFlagSet("demo", flag.ContinueOnError)
		dir := fs.String("data-dir", "", "keep state here instead of a fresh temporary directory")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir != "" {
			if err := os.MkdirAll(*dir, 0o755); err != nil {
				return err
			}
		}
		_, err := demo.Run(ctx, demo.Options{DataDir: *dir, Out: out})
		return err
	case "ledger":
		return ledgerCmd(ctx, args[1:], out)
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func ledgerCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("ledger: verify or export?\n" + usage)
	}
	fs := flag.NewFlagSet("ledger "+args[0], flag.ContinueOnError)
	dir := fs.String("data-dir", "", "Cove data directory")
	file := fs.String("file", "", "an exported ledger (JSON lines)")
	headFlag := fs.String("head", "", "a published head SIZE:HASH the log must still contain")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var entries iter.Seq2[ledger.Entry, error]
	switch {
	case *file != "" && args[0] == "verify":
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		entries = readJSONL(f)
	case *dir != "":
		st, err := store.Open(ctx, filepath.Join(*dir, "cove.db"))
		if err != nil {
			return err
		}
		defer st.Close()
		entries = st.Entries(ctx)
	default:
		return errors.New("ledger: give -data-dir (or -file for verify)")
	}
	switch args[0] {
	case "verify":
		var want ledger.Head
		if *headFlag != "" {
			size, hash, ok := strings.Cut(*headFlag, ":")
			n, err := strconv.ParseUint(size, 10, 64)
			if !ok || err != nil || len(hash) != 64 {
				return fmt.Errorf("%w: -head must be SIZE:HASH", cove.ErrInvalid)
			}
			want = ledger.Head{Size: n, Hash: hash}
		}
		head, err := ledger.VerifyHead(entries, want)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "ledger verified: %d entries, head %d:%s\n", head.Size, head.Size, head.Hash)
		return nil
	case "export":
		enc := json.NewEncoder(out)
		for e, err := range entries {
			if err != nil {
				return err
			}
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("ledger: unknown subcommand %q\n%s", args[0], usage)
}

// readJSONL reads an exported ledger; each line is bounded so a hostile file
// cannot exhaust memory.
func readJSONL(r io.Reader) iter.Seq2[ledger.Entry, error] {
	return func(yield func(ledger.Entry, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		line := 0
		for sc.Scan() {
			line++
			var e ledger.Entry
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				yield(e, fmt.Errorf("line %d: %v", line, err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(ledger.Entry{}, fmt.Errorf("line %d: %v", line+1, err))
		}
	}
}
