package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/report"
	"github.com/covedata/cove/store"
)

// openStore opens the state of a data directory that must exist.
func openStore(ctx context.Context, dir string) (*store.Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: give -data-dir", cove.ErrInvalid)
	}
	path := filepath.Join(dir, "cove.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: no Cove state in %s", cove.ErrNotFound, dir)
	}
	return store.Open(ctx, path)
}

// reportCmd writes the disclosure report (art. 32) from the ledger alone.
func reportCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "Cove data directory")
	htmlPath := fs.String("html", "", "write the report as a static HTML page here")
	jsonPath := fs.String("json", "", "write the report as JSON here (default: stdout when -html is not given)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx, *dir)
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := disclosure(ctx, st)
	if err != nil {
		return err
	}
	if *htmlPath != "" {
		if err := writeFile(*htmlPath, d.WriteHTML); err != nil {
			return err
		}
	}
	writeJSON := func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	switch {
	case *jsonPath != "":
		return writeFile(*jsonPath, writeJSON)
	case *htmlPath == "":
		return writeJSON(out)
	}
	return nil
}

// disclosure verifies the ledger and derives the report from it.
func disclosure(ctx context.Context, st *store.Store) (*report.Disclosure, error) {
	log, err := st.VerifyLedger(ctx)
	if err != nil {
		return nil, err
	}
	return report.NewDisclosure(st.Entries(ctx), log.Head(), time.Now())
}

// writeFile writes through a temporary file so a failure leaves nothing half-written.
func writeFile(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cove-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// statementCmd prices an operator's month from the ledger.
func statementCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("statement", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "Cove data directory")
	month := fs.String("month", time.Now().UTC().Format("2006-01"), "month, YYYY-MM")
	operator := fs.String("operator", "", "one operator (default: all)")
	pricesPath := fs.String("prices", "", "price schedule (JSON); default: the built-in placeholder")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	prices := report.DefaultPrices
	if *pricesPath != "" {
		b, err := os.ReadFile(*pricesPath)
		if err != nil {
			return err
		}
		if len(b) > 1<<20 {
			return fmt.Errorf("%w: price schedule over 1 MiB", cove.ErrLimit)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&prices); err != nil {
			return fmt.Errorf("%w: price schedule %s: %v", cove.ErrInvalid, *pricesPath, err)
		}
	}
	st, err := openStore(ctx, *dir)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.VerifyLedger(ctx); err != nil {
		return err
	}
	sts, err := report.Statements(st.Entries(ctx), prices, *month, *operator, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(sts)
	}
	printStatements(out, sts)
	return nil
}

func printStatements(out io.Writer, sts []report.Statement) {
	if len(sts) == 0 {
		fmt.Fprintln(out, "no metered jobs or queries in that month")
	}
	for _, s := range sts {
		fmt.Fprintf(out, "statement %s %s: %d jobs, %d releases, %d encrypted queries, %d rows, ε %.2f — total %.2f %s\n",
			s.Operator, s.Month, s.Jobs, s.Releases, s.Queries, s.Rows, s.Epsilon, s.Total, s.Currency)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  job or query\tgrant\tdataset\tpricing\trows\tguest s\tε\tamount")
		for _, l := range s.Lines {
			amount := fmt.Sprintf("%.2f", l.Amount)
			if l.Free {
				amount = "free"
			}
			name := l.Job
			if l.Kind == "he.query" {
				name = "query " + l.Job
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%.1f\t%.2f\t%s\n", name, l.Grant, l.Dataset, l.Pricing, l.Rows, l.GuestSeconds, l.Epsilon, amount)
		}
		tw.Flush()
	}
}

// grantCmd: cove grant revoke -data-dir DIR -id G -reason R.
func grantCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "revoke" {
		return errors.New("grant: usage: cove grant revoke -data-dir DIR -id GRANT -reason TEXT")
	}
	fs := flag.NewFlagSet("grant revoke", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "Cove data directory")
	id := fs.String("id", "", "grant id")
	reason := fs.String("reason", "", "why (recorded in the ledger)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *id == "" || *reason == "" {
		return fmt.Errorf("%w: give -id and -reason", cove.ErrInvalid)
	}
	st, err := openStore(ctx, *dir)
	if err != nil {
		return err
	}
	defer st.Close()
	ids, err := st.RevokeGrant(ctx, *id, *reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "grant %s revoked; %d job(s) cancelled and refunded\n", *id, len(ids))
	return nil
}

// reviewCmd: cove review -data-dir DIR -job J (-approve | -reject) -reason R.
func reviewCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("review", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "Cove data directory")
	job := fs.String("job", "", "job id (empty: list the jobs waiting)")
	approve := fs.Bool("approve", false, "approve the job")
	reject := fs.Bool("reject", false, "reject the job")
	reason := fs.String("reason", "", "the decision's reason (recorded in the ledger)")
	reviewer := fs.String("reviewer", "authority", "who decides")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx, *dir)
	if err != nil {
		return err
	}
	defer st.Close()
	if *job == "" {
		waiting, err := st.Jobs(ctx, store.JobFilter{States: []string{store.StateInReview}})
		if err != nil {
			return err
		}
		for _, j := range waiting {
			fmt.Fprintf(out, "%s\toperator %s\tgrant %s\tdataset %s\tε %.2f\tflags %v\n", j.ID, j.Operator, j.Grant, j.Dataset, j.Epsilon, j.Decision.Flags)
		}
		return nil
	}
	if *approve == *reject || *reason == "" {
		return fmt.Errorf("%w: give exactly one of -approve or -reject, and -reason", cove.ErrInvalid)
	}
	if err := st.Review(ctx, *job, *approve, *reviewer, *reason); err != nil {
		return err
	}
	fmt.Fprintf(out, "job %s %s\n", *job, map[bool]string{true: "approved", false: "rejected"}[*approve])
	return nil
}
