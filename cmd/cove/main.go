package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/covedata/cove"
	"github.com/covedata/cove/internal/demo"
)

const usage = `usage:
  cove demo [-data-dir DIR]
  cove dp audit [flags]                    empirical ε of an aggregate on neighbouring Adult datasets
  cove report -data-dir DIR [-html FILE] [-json FILE]
  cove statement -data-dir DIR [-month YYYY-MM] [-operator OP] [-prices FILE] [-json]
  cove grant revoke -data-dir DIR -id GRANT -reason TEXT
  cove review -data-dir DIR [-job JOB (-approve | -reject) -reason TEXT]
` + ledgerUsage + serveUsage + clientUsage + providerUsage + operatorUsage

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // the flag set printed its usage
		}
		fmt.Fprintf(os.Stderr, "cove: %v (code %s)\n", err, cove.Code(err))
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("no command\n" + usage)
	}
	if remote(args) {
		return remoteCmd(ctx, args, out)
	}
	switch args[0] {
	case "serve":
		return serveCmd(ctx, args[1:], out)
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
	case "sandbox":
		return sandboxCmd()
	case "ledger":
		return ledgerCmd(ctx, args[1:], out)
	case "dp":
		return dpCmd(ctx, args[1:], out)
	case "report":
		return reportCmd(ctx, args[1:], out)
	case "statement":
		return statementCmd(ctx, args[1:], out)
	case "grant":
		return grantCmd(ctx, args[1:], out)
	case "review":
		return reviewCmd(ctx, args[1:], out)
	case "provider":
		return providerCmd(ctx, args[1:], out)
	case "operator":
		return operatorCmd(ctx, args[1:], out)
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}
