package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/store"
)

// providerUsage lists the HE key holders' commands (docs/he.md). setup,
// combine and attach run on the sandbox's side (-data-dir); keygen, encrypt
// and share on a provider's, whose directory never enters the sandbox.
const providerUsage = `  cove provider setup -data-dir DIR -name NAME -providers A,B,C [-scheme ckks|bgv] -out SETUP.json
  cove provider keygen -setup SETUP.json -dir PROVIDER_DIR [-id ID] [-out SHARE]
  cove provider combine -setup SETUP.json -shares A=SHARE,B=SHARE,... [-data-dir DIR] -out KEYS
  cove provider encrypt -keys KEYS -in TABLE -column C -bounds LO,HI [-nulls refuse|zero] [-rows START:END] -out COL.he [-present-out PRESENT.he]
  cove provider attach -data-dir DIR -keys KEYS -file COL.he -dataset DS -column C -provider ID [-nulls refuse|zero] [-rows START:[END]]
  cove provider share -dir PROVIDER_DIR -request REQ -data-dir SANDBOX_DIR -out SHARE
`

// Limits on the files the provider commands read.
const (
	maxSetupBytes = 1 << 20
	maxHEFile     = 1 << 30 // keys, keygen shares, columns, requests
)

func providerCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("provider: no subcommand\n" + providerUsage)
	}
	fs := flag.NewFlagSet("provider "+args[0], flag.ContinueOnError)
	switch args[0] {
	case "setup":
		return providerSetup(ctx, fs, args[1:], out)
	case "keygen":
		return providerKeygen(fs, args[1:], out)
	case "combine":
		return providerCombine(ctx, fs, args[1:], out)
	case "encrypt":
		return providerEncrypt(fs, args[1:], out)
	case "attach":
		return providerAttach(ctx, fs, args[1:], out)
	case "share":
		return providerShare(ctx, fs, args[1:], out)
	case "help", "-h", "--help":
		fmt.Fprint(out, providerUsage)
		return nil
	}
	return fmt.Errorf("provider: unknown subcommand %q\n%s", args[0], providerUsage)
}

func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if f := fs.Lookup(n); f == nil || f.Value.String() == "" {
			return fmt.Errorf("%w: provider %s needs -%s", cove.ErrInvalid, fs.Name(), n)
		}
	}
	return nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, the limit is %d", cove.ErrLimit, path, fi.Size(), limit)
	}
	return os.ReadFile(path)
}

func readSetup(path string) (store.HESetup, error) {
	var su store.HESetup
	b, err := readLimited(path, maxSetupBytes)
	if err != nil {
		return su, err
	}
	if err := json.Unmarshal(b, &su); err != nil {
		return su, fmt.Errorf("%w: setup %s: %v", cove.ErrInvalid, path, err)
	}
	return su, nil
}

func writeBytes(path string, b []byte) error {
	return writeFile(path, func(w io.Writer) error { _, err := w.Write(b); return err })
}

// providerSetup registers a setup in the sandbox's ledger (the seed is
// drawn there and bound to the log) and writes it for the providers.
func providerSetup(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	dir := fs.String("data-dir", "", "the sandbox's data directory")
	name := fs.String("name", "", "setup name")
	providers := fs.String("providers", "", "key holders, comma-separated")
	scheme := fs.String("scheme", "ckks", "ckks (reals) or bgv (exact integers)")
	outPath := fs.String("out", "", "write the setup here (JSON, public)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := required(fs, "data-dir", "name", "providers", "out"); err != nil {
		return err
	}
	lit := he.DefaultCKKS()
	switch *scheme {
	case "ckks":
	case "bgv":
		lit = he.DefaultBGV()
	default:
		return fmt.Errorf("%w: scheme %q is not ckks or bgv", cove.ErrInvalid, *scheme)
	}
	if _, err := he.NewParams(lit); err != nil {
		return err
	}
	params, _ := json.Marshal(lit)
	st, err := openStore(ctx, *dir)
	if err != nil {
		return err
	}
	defer st.Close()
	su, err := st.RegisterHESetup(ctx, store.HESetup{Name: *name, Params: params, Providers: strings.Split(*providers, ",")})
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(su, "", "  ")
	if err := writeBytes(*outPath, b); err != nil {
		return err
	}
	fmt.Fprintf(out, "setup %s: %d providers, %s, ledger entry %d\n", su.Name, len(su.Providers), *scheme, su.Seq)
	return nil
}

func providerKeygen(fs *flag.FlagSet, args []string, out io.Writer) error {
	setupPath := fs.String("setup", "", "the setup (JSON)")
	dir := fs.String("dir", "", "the provider's own directory (its secret share lives here, mode 0600)")
	id := fs.String("id", "", "the provider's id (needed the first time)")
	outPath := fs.String("out", "", "also write the keygen share here (default: only DIR/keygen-SETUP.share)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := required(fs, "setup", "dir"); err != nil {
		return err
	}
	su, err := readSetup(*setupPath)
	if err != nil {
		return err
	}
	b, err := jobs.ProviderKeygen(*dir, *id, su)
	if err != nil {
		return err
	}
	if *outPath != "" {
		if err := writeBytes(*outPath, b); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "keygen share for setup %s: %d bytes in %s\n", su.Name, len(b), filepath.Join(*dir, "keygen-"+su.Name+".share"))
	return nil
}

func providerCombine(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	setupPath := fs.String("setup", "", "the setup (JSON)")
	sharesArg := fs.String("shares", "", "ID=FILE,... (or FILE,... in the setup's provider order)")
	dir := fs.String("data-dir", "", "register the keys in this sandbox (a copy goes to DIR/he/)")
	outPath := fs.String("out", "", "write the collective public keys here (for the providers to encrypt with)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := required(fs, "setup", "shares", "out"); err != nil {
		return err
	}
	su, err := readSetup(*setupPath)
	if err != nil {
		return err
	}
	shares := map[string][]byte{}
	for i, a := range strings.Split(*sharesArg, ",") {
		id, path, ok := strings.Cut(a, "=")
		if !ok {
			if i >= len(su.Providers) {
				return fmt.Errorf("%w: more shares than providers", cove.ErrInvalid)
			}
			id, path = su.Providers[i], a
		}
		if shares[id], err = readLimited(path, maxHEFile); err != nil {
			return err
		}
	}
	keys, sums, err := jobs.CombineKeys(su, shares)
	if err != nil {
		return err
	}
	b, err := keys.MarshalBinary()
	if err != nil {
		return err
	}
	if err := writeBytes(*outPath, b); err != nil {
		return err
	}
	fp := keys.Fingerprint()
	if *dir != "" {
		st, err := openStore(ctx, *dir)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := os.MkdirAll(filepath.Join(*dir, "he"), 0o755); err != nil {
			return err
		}
		rel := filepath.Join("he", fmt.Sprintf("%x.keys", fp[:8]))
		if _, err := jobs.RegisterKeys(ctx, st, su, keys, sums, filepath.Join(*dir, rel), rel); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "collective keys of setup %s: fingerprint %x, %d bytes\n", su.Name, fp, len(b))
	return nil
}

func readKeys(path string) (*he.PublicKeys, error) {
	b, err := readLimited(path, maxHEFile)
	if err != nil {
		return nil, err
	}
	return he.UnmarshalPublicKeys(b)
}

func providerEncrypt(fs *flag.FlagSet, args []string, out io.Writer) error {
	keysPath := fs.String("keys", "", "the collective public keys")
	in := fs.String("in", "", "the provider's table (Parquet, CSV or Arrow IPC)")
	column := fs.String("column", "", "the column to encrypt")
	bounds := fs.String("bounds", "", "LO,HI: public clamping bounds (they size the DP noise)")
	nulls := fs.String("nulls", jobs.NullsRefuse, "refuse (a null is an error) or zero (entered as 0; see -present-out)")
	outPath := fs.String("out", "", "write the encrypted column here")
	presentOut := fs.String("present-out", "", "with -nulls zero: write the encrypted presence indicator (1 where a value was present) here")
	rows := fs.String("rows", "", "START:END: encrypt only rows [START, END) of the table (a segment; default: every row)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := required(fs, "keys", "in", "column", "bounds", "out"); err != nil {
		return err
	}
	loS, hiS, ok := strings.Cut(*bounds, ",")
	lo, err1 := strconv.ParseFloat(strings.TrimSpace(loS), 64)
	hi, err2 := strconv.ParseFloat(strings.TrimSpace(hiS), 64)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("%w: -bounds must be LO,HI", cove.ErrInvalid)
	}
	if *presentOut != "" && *nulls != jobs.NullsZero {
		return fmt.Errorf("%w: -present-out goes with -nulls zero", cove.ErrInvalid)
	}
	keys, err := readKeys(*keysPath)
	if err != nil {
		return err
	}
	start, end, err := parseRows(*rows, true)
	if err != nil {
		return err
	}
	col, present, err := jobs.EncryptColumn(keys, *in, *column, jobs.EncryptOptions{Lo: lo, Hi: hi, Nulls: *nulls, Start: int(start), End: int(end)})
	if err != nil {
		return err
	}
	b, err := col.MarshalBinary()
	if err != nil {
		return err
	}
	if err := writeBytes(*outPath, b); err != nil {
		return err
	}
	if *presentOut != "" {
		pb, err := present.MarshalBinary()
		if err != nil {
			return err
		}
		if err := writeBytes(*presentOut, pb); err != nil {
			return err
		}
	}
	what := *column
	if *rows != "" {
		what += fmt.Sprintf(" rows [%d, %d) of the table", start, end)
	}
	fmt.Fprintf(out, "encrypted %s: %d rows, bounds [%v, %v], nulls %s, %d bytes\n", what, col.Rows(), lo, hi, *nulls, len(b))
	return nil
}

func providerAttach(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	dir := fs.String("data-dir", "", "the sandbox's data directory")
	keysPath := fs.String("keys", "", "the collective public keys (registered)")
	file := fs.String("file", "", "the encrypted column")
	dataset := fs.String("dataset", "", "the dataset whose rows the column follows")
	column := fs.String("column", "", "the column's name in the dataset's catalog entry")
	provider := fs.String("provider", "", "the provider that encrypted it")
	nulls := fs.String("nulls", jobs.NullsRefuse, "how the provider entered nulls (recorded)")
	rows := fs.String("rows", "", "START:[END]: the segment's rows [START, END) of the dataset's table (END defaults to START + the column's rows); default: the whole table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := required(fs, "data-dir", "keys", "file", "dataset", "column", "provider"); err != nil {
		return err
	}
	start, end, err := parseRows(*rows, false)
	if err != nil {
		return err
	}
	keys, err := readKeys(*keysPath)
	if err != nil {
		return err
	}
	b, err := readLimited(*file, maxHEFile)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, *dir)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := os.MkdirAll(filepath.Join(*dir, "he"), 0o755); err != nil {
		return err
	}
	name := *dataset + "." + *column
	if *rows != "" {
		if end == 0 {
			end = jobs.SegmentToEnd
			name += fmt.Sprintf(".%d-", start)
		} else {
			name += fmt.Sprintf(".%d-%d", start, end)
		}
	}
	rel := filepath.Join("he", name+".he")
	c := store.HEColumn{Dataset: *dataset, Column: *column, Provider: *provider, Nulls: *nulls, Start: start, End: end}
	if err := jobs.AttachColumn(ctx, st, keys, b, filepath.Join(*dir, rel), rel, c); err != nil {
		return err
	}
	if *rows == "" {
		fmt.Fprintf(out, "attached %s.%s (%d bytes)\n", *dataset, *column, len(b))
		return nil
	}
	reg, err := st.HEColumnSegment(ctx, *dataset, *column, start)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "attached %s.%s rows [%d, %d) from %s (%d bytes)\n", *dataset, *column, reg.Start, reg.End, reg.Provider, len(b))
	return nil
}

// parseRows parses -rows START:END (END required when needEnd, else
// optional: 0 means START + the column's rows). "" is 0, 0: every row.
func parseRows(s string, needEnd bool) (start, end int64, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, ":")
	start, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	var err2 error
	if b = strings.TrimSpace(b); b != "" {
		end, err2 = strconv.ParseInt(b, 10, 64)
	}
	if !ok || err1 != nil || err2 != nil || start < 0 || (needEnd && b == "") || (b != "" && end <= start) {
		return 0, 0, fmt.Errorf("%w: -rows must be START:END with 0 ≤ START < END", cove.ErrInvalid)
	}
	return start, end, nil
}

func providerShare(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	dir := fs.String("dir", "", "the provider's own directory")
	reqPath := fs.String("request", "", "the share request (from the sandbox)")
	dataDir := fs.String("data-dir", "", "the sandbox's data directory, whose ledger must record the approval")
	outPath := fs.String("out", "", "write the key-switch share here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := required(fs, "dir", "request", "data-dir", "out"); err != nil {
		return err
	}
	req, err := readLimited(*reqPath, maxHEFile)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	b, err := jobs.ProviderShare(ctx, *dir, st, req)
	if err != nil {
		return err
	}
	if err := writeBytes(*outPath, b); err != nil {
		return err
	}
	fmt.Fprintf(out, "share written: %d bytes\n", len(b))
	return nil
}
