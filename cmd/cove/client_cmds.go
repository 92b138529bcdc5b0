package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/mock"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/sdk/client"
	"github.com/covedata/cove/service"
)

const clientUsage = `over the API (-server URL or $COVE_SERVER, -token T or $COVE_TOKEN, -output table|json|csv):
  cove dataset list | get NAME | register -file DATASET.json | usage NAME
  cove grant list | get ID | create -file GRANT.json | revoke ID -reason TEXT | budget ID   (with -server)
  cove job submit -manifest FILE [-module FILE | -module-sha256 HEX] [-id ID] [-wait] | submit-dir DIR [-parallel N] [-out DIR]
                 (no module: a plan written in the manifest)
  cove job upload -module FILE   (prints the sha256 that submissions may name instead of sending the module)
  cove job status ID | get ID (with its plan) | wait ID | events ID | release ID | cancel ID [-reason TEXT] | list [-state S] | dry-run -manifest F [-module F]
  cove job run -mock -manifest FILE [-module FILE] [-rows N] [-seed N] [-dataset-file DATASET.json]
  cove review list | approve ID -reason TEXT | reject ID -reason TEXT             (with -server)
  cove ledger verify [-key F] [-checkpoint F] | prove (-seq N | -from CHECKPOINT_FILE) | checkpoint | key | entries  (with -server)
  cove statement [-month YYYY-MM] [-operator OP]                                   (with -server)
  cove report [-html FILE]                                                          (with -server)
  cove token create -role R [-subject S] [-note T] (-data-dir DIR | -server URL) | list | revoke ID
`

// remote reports whether a command runs over the API: the commands that
// exist only there, and the local ones given -server.
func remote(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "dataset", "job":
		return true
	case "token":
		return !slices.ContainsFunc(args, isFlag("data-dir"))
	case "grant", "review", "ledger", "statement", "report":
		return slices.ContainsFunc(args, isFlag("server"))
	}
	return false
}

func isFlag(name string) func(string) bool {
	return func(a string) bool {
		a = strings.TrimLeft(a, "-")
		return a == name || strings.HasPrefix(a, name+"=")
	}
}

// cli is one API command's common flags and output.
type cli struct {
	fs     *flag.FlagSet
	server string
	token  string
	output string
	caFile string
	out    io.Writer
	c      *client.Client
}

func newCLI(name string, out io.Writer) *cli {
	k := &cli{fs: flag.NewFlagSet(name, flag.ContinueOnError), out: out}
	k.fs.StringVar(&k.server, "server", os.Getenv("COVE_SERVER"), "Cove server URL")
	k.fs.StringVar(&k.token, "token", os.Getenv("COVE_TOKEN"), "bearer token (or @FILE)")
	k.fs.StringVar(&k.output, "output", "table", "table, json or csv")
	k.fs.StringVar(&k.caFile, "ca", "", "PEM file of the CA that signed the server's certificate")
	return k
}

// parse parses flags anywhere among the arguments and returns the others.
func (k *cli) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := k.fs.Parse(args); err != nil {
			return nil, err
		}
		if k.fs.NArg() == 0 {
			break
		}
		pos = append(pos, k.fs.Arg(0))
		args = k.fs.Args()[1:]
	}
	if k.output != "table" && k.output != "json" && k.output != "csv" {
		return nil, fmt.Errorf("%w: -output must be table, json or csv", cove.ErrInvalid)
	}
	return pos, nil
}

func (k *cli) connect() error {
	if k.server == "" {
		return fmt.Errorf("%w: give -server URL (or set COVE_SERVER)", cove.ErrInvalid)
	}
	tok := k.token
	if path, ok := strings.CutPrefix(tok, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		tok = strings.TrimSpace(string(b))
	}
	hc := &http.Client{Timeout: 10 * time.Minute}
	if k.caFile != "" {
		pem, err := os.ReadFile(k.caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%w: no certificate in %s", cove.ErrInvalid, k.caFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	c, err := client.New(k.server, client.WithToken(tok), client.WithHTTPClient(hc))
	k.c = c
	return err
}

// emit prints v as JSON, or rows as a table or CSV.
func (k *cli) emit(v any, header []string, rows [][]string) error {
	switch k.output {
	case "json":
		enc := json.NewEncoder(k.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "csv":
		w := csv.NewWriter(k.out)
		w.Write(header)
		w.WriteAll(rows)
		return w.Error()
	}
	tw := tabwriter.NewWriter(k.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(header, "\t")))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func f64(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }

func needArgs(pos []string, n int, usage string) error {
	if len(pos) != n {
		return fmt.Errorf("%w: usage: %s", cove.ErrInvalid, usage)
	}
	return nil
}

func readJSONFile(path string, v any) error {
	if path == "" {
		return fmt.Errorf("%w: give -file", cove.ErrInvalid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := strictJSON(b, v); err != nil {
		return fmt.Errorf("%w: %s: %v", cove.ErrInvalid, path, err)
	}
	return nil
}

// remoteCmd runs a command over the API.
func remoteCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: which subcommand?\n%s", cove.ErrInvalid, clientUsage)
	}
	group, sub := args[0], args[1]
	rest := args[2:]
	if group == "statement" || group == "report" {
		sub, rest = "", args[1:]
	}
	switch group {
	case "dataset":
		return datasetRemote(ctx, sub, rest, out)
	case "grant":
		return grantRemote(ctx, sub, rest, out)
	case "job":
		return jobRemote(ctx, sub, rest, out)
	case "review":
		return reviewRemote(ctx, sub, rest, out)
	case "ledger":
		return ledgerRemote(ctx, sub, rest, out)
	case "statement":
		return statementRemote(ctx, rest, out)
	case "report":
		return reportRemote(ctx, rest, out)
	case "token":
		return tokenCmd(ctx, sub, rest, out)
	}
	return fmt.Errorf("%w: unknown command %q\n%s", cove.ErrInvalid, group, clientUsage)
}

func datasetRows(ds []client.Dataset) [][]string {
	var rows [][]string
	for _, d := range ds {
		rows = append(rows, []string{d.Name, d.Title, d.Domain, d.Provider, d.Sharing, strconv.Itoa(d.Level), strconv.FormatInt(d.Rows, 10), strconv.Itoa(len(d.Columns))})
	}
	return rows
}

var datasetHeader = []string{"name", "title", "domain", "provider", "sharing", "level", "rows", "columns"}

func datasetRemote(ctx context.Context, sub string, args []string, out io.Writer) error {
	k := newCLI("dataset "+sub, out)
	file := k.fs.String("file", "", "catalog entry (JSON)")
	pos, err := k.parse(args)
	if err != nil {
		return err
	}
	if err := k.connect(); err != nil {
		return err
	}
	switch sub {
	case "list":
		ds, err := k.c.Datasets(ctx)
		if err != nil {
			return err
		}
		return k.emit(ds, datasetHeader, datasetRows(ds))
	case "get":
		if err := needArgs(pos, 1, "cove dataset get NAME"); err != nil {
			return err
		}
		d, err := k.c.Dataset(ctx, pos[0])
		if err != nil {
			return err
		}
		if k.output != "table" {
			return k.emit(d, datasetHeader, datasetRows([]client.Dataset{d}))
		}
		var rows [][]string
		for _, c := range d.Columns {
			rows = append(rows, []string{c.Name, c.Type, c.Role, strconv.Itoa(len(c.Domain))})
		}
		fmt.Fprintf(out, "%s — %s (%s, level %d, %d rows)\n", d.Name, d.Title, d.Sharing, d.Level, d.Rows)
		return k.emit(d, []string{"column", "type", "role", "domain values"}, rows)
	case "register":
		var d client.Dataset
		if err := readJSONFile(*file, &d); err != nil {
			return err
		}
		d, err := k.c.RegisterDataset(ctx, d)
		if err != nil {
			return err
		}
		return k.emit(d, datasetHeader, datasetRows([]client.Dataset{d}))
	case "usage":
		if err := needArgs(pos, 1, "cove dataset usage NAME"); err != nil {
			return err
		}
		u, err := k.c.DatasetUsage(ctx, pos[0])
		if err != nil {
			return err
		}
		return k.emit(u, []string{"dataset", "jobs", "releases", "rejected", "rows read", "ε spent"},
			[][]string{{u.Dataset, strconv.Itoa(u.Jobs), strconv.Itoa(u.Releases), strconv.Itoa(u.Rejected), strconv.FormatInt(u.Rows, 10), f64(u.Epsilon)}})
	}
	return fmt.Errorf("%w: dataset %s\n%s", cove.ErrInvalid, sub, clientUsage)
}

func grantRows(gs []client.Grant) [][]string {
	var rows [][]string
	for _, g := range gs {
		state := "active"
		if g.RevokedAt != nil {
			state = "revoked"
		} else if time.Now().After(g.ValidUntil) {
			state = "expired"
		}
		rows = append(rows, []string{g.ID, g.Operator, g.Mode, strings.Join(g.Datasets, ","), strings.Join(g.Purposes, ","), g.ValidUntil.Format("2006-01-02"), state})
	}
	return rows
}

var grantHeader = []string{"id", "operator", "mode", "datasets", "purposes", "valid until", "state"}

func grantRemote(ctx context.Context, sub string, args []string, out io.Writer) error {
	k := newCLI("grant "+sub, out)
	file := k.fs.String("file", "", "grant (JSON)")
	reason := k.fs.String("reason", "", "why (recorded in the ledger)")
	id := k.fs.String("id", "", "grant id (or as an argument)")
	pos, err := k.parse(args)
	if err != nil {
		return err
	}
	if *id != "" {
		pos = append([]string{*id}, pos...)
	}
	if err := k.connect(); err != nil {
		return err
	}
	switch sub {
	case "list":
		gs, err := k.c.Grants(ctx)
		if err != nil {
			return err
		}
		return k.emit(gs, grantHeader, grantRows(gs))
	case "get":
		if err := needArgs(pos, 1, "cove grant get ID"); err != nil {
			return err
		}
		g, err := k.c.Grant(ctx, pos[0])
		if err != nil {
			return err
		}
		return k.emit(g, grantHeader, grantRows([]client.Grant{g}))
	case "create":
		var g client.Grant
		if err := readJSONFile(*file, &g); err != nil {
			return err
		}
		g, err := k.c.CreateGrant(ctx, g)
		if err != nil {
			return err
		}
		return k.emit(g, grantHeader, grantRows([]client.Grant{g}))
	case "revoke":
		if err := needArgs(pos, 1, "cove grant revoke ID -reason TEXT"); err != nil {
			return err
		}
		if *reason == "" {
			return fmt.Errorf("%w: give -reason", cove.ErrInvalid)
		}
		r, err := k.c.RevokeGrant(ctx, pos[0], *reason)
		if err != nil {
			return err
		}
		return k.emit(r, []string{"grant", "cancelled jobs"}, [][]string{{r.Grant, strings.Join(r.Cancelled, ",")}})
	case "budget":
		if err := needArgs(pos, 1, "cove grant budget ID"); err != nil {
			return err
		}
		bs, err := k.c.Budgets(ctx, pos[0])
		if err != nil {
			return err
		}
		var rows [][]string
		for _, b := range bs {
			rows = append(rows, []string{b.Dataset, b.Budget.Period.Format("2006-01-02"), f64(b.Budget.Cap), f64(b.Budget.Spent), f64(b.Budget.Reserved), f64(b.Left)})
		}
		return k.emit(bs, []string{"dataset", "period", "ε cap", "spent", "reserved", "left"}, rows)
	}
	return fmt.Errorf("%w: grant %s\n%s", cove.ErrInvalid, sub, clientUsage)
}

func jobRows(js []client.Job) [][]string {
	var rows [][]string
	for _, j := range js {
		rows = append(rows, []string{j.ID, j.Operator, j.Dataset, j.Mode, j.State, f64(j.Epsilon), j.Created.Local().Format("2006-01-02 15:04:05"), j.Reason})
	}
	return rows
}

var jobHeader = []string{"id", "operator", "dataset", "mode", "state", "ε", "created", "reason"}

// emitJob shows one job; in a table, a plan job's canonical plan follows.
func (k *cli) emitJob(j client.Job) error {
	if err := k.emit(j, jobHeader, jobRows([]client.Job{j})); err != nil || k.output != "table" || j.Plan == "" {
		return err
	}
	fmt.Fprintf(k.out, "plan %s:\n", j.PlanSHA256)
	for _, line := range strings.Split(j.Plan, "\n") {
		fmt.Fprintf(k.out, "  %s\n", line)
	}
	return nil
}

// readSubmission reads a job's manifest and its module, or names a module
// uploaded before by its sha256. The SDK uploads a module once per run of
// the command, however many jobs carry it (submit-dir).
func readSubmission(manifest, module, moduleSHA256, id string) (client.Submission, error) {
	if manifest == "" || (module != "" && moduleSHA256 != "") {
		return client.Submission{}, fmt.Errorf("%w: give -manifest FILE and -module FILE or -module-sha256 HEX (neither for a plan written in the manifest)", cove.ErrInvalid)
	}
	m, err := os.ReadFile(manifest)
	if err != nil {
		return client.Submission{}, err
	}
	if module == "" && moduleSHA256 == "" {
		return client.Submission{ID: id, Manifest: m}, nil
	}
	if moduleSHA256 != "" {
		return client.Submission{ID: id, Manifest: m, ModuleSHA256: moduleSHA256}, nil
	}
	w, err := os.ReadFile(module)
	if err != nil {
		return client.Submission{}, err
	}
	return client.Submission{ID: id, Manifest: m, Module: w}, nil
}

func jobRemote(ctx context.Context, sub string, args []string, out io.Writer) error {
	k := newCLI("job "+sub, out)
	manifest := k.fs.String("manifest", "", "job manifest (YAML or JSON)")
	module := k.fs.String("module", "", "job module (WebAssembly)")
	moduleSHA := k.fs.String("module-sha256", "", "sha256 of a module uploaded before (cove job upload), instead of -module")
	id := k.fs.String("id", "", "job id: an idempotency key")
	wait := k.fs.Bool("wait", false, "wait for the job's end (submit)")
	state := k.fs.String("state", "", "only jobs in this state (list)")
	reason := k.fs.String("reason", "", "why (cancel)")
	parallel := k.fs.Int("parallel", 8, "submissions in flight at once (submit-dir)")
	outDir := k.fs.String("out", "", "write each release as JSON here (submit-dir)")
	useMock := k.fs.Bool("mock", false, "run locally on mock data (run)")
	rows := k.fs.Int("rows", 1000, "mock rows (run)")
	seed := k.fs.Uint64("seed", 1, "mock data seed (run)")
	datasetFile := k.fs.String("dataset-file", "", "catalog entry (JSON) instead of asking the server (run)")
	progress := k.fs.Bool("progress", true, "show progress while waiting")
	pos, err := k.parse(args)
	if err != nil {
		return err
	}
	if sub == "run" {
		return mockRun(ctx, k, *useMock, *manifest, *module, *datasetFile, *rows, *seed)
	}
	if err := k.connect(); err != nil {
		return err
	}
	switch sub {
	case "submit":
		s, err := readSubmission(*manifest, *module, *moduleSHA, *id)
		if err != nil {
			return err
		}
		j, err := k.c.Submit(ctx, s)
		if err != nil {
			return err
		}
		if *wait {
			return k.waitAndShow(ctx, j.ID, *progress)
		}
		return k.emitJob(j)
	case "dry-run":
		s, err := readSubmission(*manifest, *module, *moduleSHA, "")
		if err != nil {
			return err
		}
		d, err := k.c.DryRun(ctx, s)
		if err != nil {
			return err
		}
		return k.emit(d, []string{"admissible", "review", "flags"}, [][]string{{"yes", strconv.FormatBool(d.Review), strings.Join(d.Flags, "; ")}})
	case "upload":
		if *module == "" {
			return fmt.Errorf("%w: give -module FILE", cove.ErrInvalid)
		}
		w, err := os.ReadFile(*module)
		if err != nil {
			return err
		}
		info, err := k.c.UploadModule(ctx, w)
		if err != nil {
			return err
		}
		return k.emit(info, []string{"sha256", "size"}, [][]string{{info.SHA256, strconv.FormatInt(info.Size, 10)}})
	case "list":
		js, err := k.c.Jobs(ctx, client.JobFilter{State: *state})
		if err != nil {
			return err
		}
		return k.emit(js, jobHeader, jobRows(js))
	case "status", "get":
		if err := needArgs(pos, 1, "cove job "+sub+" ID"); err != nil {
			return err
		}
		j, err := k.c.Job(ctx, pos[0])
		if err != nil {
			return err
		}
		return k.emitJob(j)
	case "wait":
		if err := needArgs(pos, 1, "cove job wait ID"); err != nil {
			return err
		}
		return k.waitAndShow(ctx, pos[0], *progress)
	case "events":
		if err := needArgs(pos, 1, "cove job events ID"); err != nil {
			return err
		}
		es, err := k.c.Events(ctx, pos[0])
		if err != nil {
			return err
		}
		var rows [][]string
		for _, e := range es {
			rows = append(rows, []string{strconv.FormatUint(e.Seq, 10), e.Time, e.Kind, e.State})
		}
		return k.emit(es, []string{"seq", "time", "kind", "state"}, rows)
	case "release":
		if err := needArgs(pos, 1, "cove job release ID"); err != nil {
			return err
		}
		r, err := k.c.Release(ctx, pos[0])
		if err != nil {
			return err
		}
		return k.showRelease(r)
	case "cancel":
		if err := needArgs(pos, 1, "cove job cancel ID"); err != nil {
			return err
		}
		j, err := k.c.Cancel(ctx, pos[0], *reason)
		if err != nil {
			return err
		}
		return k.emit(j, jobHeader, jobRows([]client.Job{j}))
	case "submit-dir":
		if err := needArgs(pos, 1, "cove job submit-dir DIR"); err != nil {
			return err
		}
		return k.submitDir(ctx, pos[0], *parallel, *outDir)
	}
	return fmt.Errorf("%w: job %s\n%s", cove.ErrInvalid, sub, clientUsage)
}

func (k *cli) showRelease(r *client.Release) error {
	header := []string{"output", "aggregate", "key", "value", "noise σ", "ci95 low", "ci95 high"}
	var rows [][]string
	for _, o := range r.Outputs {
		for _, row := range o.Rows {
			rows = append(rows, []string{o.Name, o.Aggregate, strings.Join(row.Key, "/"), f64(row.Value), f64(row.NoiseStdDev), f64(row.CILow), f64(row.CIHigh)})
		}
	}
	if k.output == "table" {
		fmt.Fprintf(k.out, "job %s on %s under %s: ε %s spent\n", r.Job, r.Dataset, r.Grant, f64(r.Epsilon))
	}
	return k.emit(r, header, rows)
}

// waitAndShow waits for a job with a progress bar on stderr, then shows
// its release or how it ended.
func (k *cli) waitAndShow(ctx context.Context, id string, show bool) error {
	bar := newBar(os.Stderr, id, show)
	j, err := k.c.Wait(ctx, id, bar.update)
	bar.done()
	if err != nil {
		return err
	}
	if j.State != client.StateReleased {
		k.emit(j, jobHeader, jobRows([]client.Job{j}))
		return &client.JobError{Job: j}
	}
	r, err := k.c.Release(ctx, id)
	if err != nil {
		return err
	}
	return k.showRelease(r)
}

// bar draws a job's progress through its states: on a terminal one line
// redrawn with the elapsed time, elsewhere one line per state.
type bar struct {
	w     io.Writer
	id    string
	tty   bool
	show  bool
	start time.Time
	mu    sync.Mutex
	state string
	stop  chan struct{}
	wg    sync.WaitGroup
}

var barSteps = map[string]int{client.StateSubmitted: 1, client.StateInReview: 2, client.StateAdmitted: 3, client.StateRunning: 4}

func newBar(w *os.File, id string, show bool) *bar {
	b := &bar{w: w, id: id, show: show, start: time.Now(), stop: make(chan struct{})}
	if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		b.tty = true
	}
	if show && b.tty {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-b.stop:
					return
				case <-t.C:
					b.draw()
				}
			}
		}()
	}
	return b
}

func (b *bar) update(j client.Job) {
	b.mu.Lock()
	changed := j.State != b.state
	b.state = j.State
	b.mu.Unlock()
	if !b.show {
		return
	}
	if b.tty {
		b.draw()
	} else if changed {
		fmt.Fprintf(b.w, "job %s: %s (%.1fs)\n", b.id, j.State, time.Since(b.start).Seconds())
	}
}

func (b *bar) draw() {
	b.mu.Lock()
	defer b.mu.Unlock()
	step := barSteps[b.state]
	if client.Final(b.state) {
		step = 5
	}
	fill := strings.Repeat("█", step*4) + strings.Repeat("░", (5-step)*4)
	fmt.Fprintf(b.w, "\r%s [%s] %-10s %5.1fs", b.id, fill, b.state, time.Since(b.start).Seconds())
}

func (b *bar) done() {
	close(b.stop)
	b.wg.Wait()
	if b.show && b.tty {
		b.draw()
		fmt.Fprintln(b.w)
	}
}

// batchJob is one job of a submit-dir batch.
type batchJob struct {
	Dir     string          `json:"dir"`
	Job     string          `json:"job"`
	State   string          `json:"state"`
	Error   string          `json:"error,omitempty"`
	Release *client.Release `json:"release,omitempty"`
}

// submitDir submits every job of a directory (each subdirectory holds a
// manifest.yaml, .yml or .json and one .wasm module), waits for all, and
// reports each; it fails if any job ended without a release.
func (k *cli) submitDir(ctx context.Context, dir string, parallel int, outDir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var subs []string
	for _, e := range entries {
		if e.IsDir() {
			subs = append(subs, e.Name())
		}
	}
	if len(subs) == 0 {
		return fmt.Errorf("%w: no job directories in %s", cove.ErrInvalid, dir)
	}
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return err
		}
	}
	results := make([]batchJob, len(subs))
	sem := make(chan struct{}, max(1, parallel))
	var wg sync.WaitGroup
	for i, name := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := &results[i]
			r.Dir = name
			sub, err := dirSubmission(filepath.Join(dir, name))
			if err == nil {
				var j client.Job
				if j, err = k.c.Submit(ctx, sub); err == nil {
					r.Job = j.ID
					j, err = k.c.Wait(ctx, j.ID, func(j client.Job) {
						fmt.Fprintf(os.Stderr, "%-20s %s: %s\n", name, j.ID, j.State)
					})
					r.State = j.State
					if err == nil && j.State == client.StateReleased {
						r.Release, err = k.c.Release(ctx, j.ID)
					} else if err == nil {
						err = &client.JobError{Job: j}
					}
				}
			}
			if err != nil {
				r.Error = err.Error()
				var ae *client.Error
				if errors.As(err, &ae) && ae.Job != "" {
					r.Job, r.State = ae.Job, client.StateRejected
				}
			}
			if r.Release != nil && outDir != "" {
				b, _ := json.MarshalIndent(r.Release, "", "  ")
				os.WriteFile(filepath.Join(outDir, name+".json"), b, 0o644)
			}
		}()
	}
	wg.Wait()
	var rows [][]string
	failed := 0
	for _, r := range results {
		if r.State != client.StateReleased {
			failed++
		}
		outputs := ""
		if r.Release != nil {
			outputs = strconv.Itoa(len(r.Release.Outputs))
		}
		rows = append(rows, []string{r.Dir, r.Job, r.State, outputs, r.Error})
	}
	if err := k.emit(results, []string{"dir", "job", "state", "outputs", "error"}, rows); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d jobs ended without a release", failed, len(results))
	}
	return nil
}

func dirSubmission(dir string) (client.Submission, error) {
	var manifest, module string
	for _, m := range []string{"manifest.yaml", "manifest.yml", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, m)); err == nil {
			manifest = filepath.Join(dir, m)
			break
		}
	}
	mods, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if manifest == "" || len(mods) != 1 {
		return client.Submission{}, fmt.Errorf("%w: %s needs a manifest.yaml (or .yml, .json) and exactly one .wasm", cove.ErrInvalid, dir)
	}
	module = mods[0]
	return readSubmission(manifest, module, "", "")
}

// mockRun runs a job locally on mock data of its dataset, whose catalog
// entry comes from the server or a file.
func mockRun(ctx context.Context, k *cli, useMock bool, manifest, module, datasetFile string, rows int, seed uint64) error {
	if !useMock {
		return fmt.Errorf("%w: cove job run runs only on mock data: give -mock (submit real jobs with cove job submit)", cove.ErrInvalid)
	}
	s, err := readSubmission(manifest, module, "", "")
	if err != nil {
		return err
	}
	var d policy.Dataset
	if datasetFile != "" {
		if err := readJSONFile(datasetFile, &d); err != nil {
			return err
		}
	} else {
		if err := k.connect(); err != nil {
			return err
		}
		name, err := manifestDataset(s.Manifest)
		if err != nil {
			return err
		}
		cd, err := k.c.Dataset(ctx, name)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(cd)
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
	}
	_, err = mock.Run(ctx, mock.RunOptions{Dataset: d, Manifest: s.Manifest, Module: s.Module, Rows: rows, Seed: seed, Out: k.out})
	return err
}

// manifestDataset reads the dataset a manifest names, without validating
// the rest (mock.Run does).
func manifestDataset(manifest []byte) (string, error) {
	for _, line := range strings.Split(string(manifest), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "dataset:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"'`), nil
		}
	}
	var m struct {
		Dataset string `json:"dataset"`
	}
	if json.Unmarshal(manifest, &m) == nil && m.Dataset != "" {
		return m.Dataset, nil
	}
	return "", fmt.Errorf("%w: the manifest names no dataset", cove.ErrInvalid)
}

func reviewRemote(ctx context.Context, sub string, args []string, out io.Writer) error {
	k := newCLI("review "+sub, out)
	reason := k.fs.String("reason", "", "the decision's reason (recorded in the ledger)")
	pos, err := k.parse(args)
	if err != nil {
		return err
	}
	if err := k.connect(); err != nil {
		return err
	}
	switch sub {
	case "list":
		js, err := k.c.Reviews(ctx)
		if err != nil {
			return err
		}
		var rows [][]string
		for _, j := range js {
			rows = append(rows, []string{j.ID, j.Operator, j.Grant, j.Dataset, f64(j.Epsilon), strings.Join(j.Decision.Flags, "; ")})
		}
		return k.emit(js, []string{"id", "operator", "grant", "dataset", "ε", "flags"}, rows)
	case "approve", "reject":
		if err := needArgs(pos, 1, "cove review "+sub+" ID -reason TEXT"); err != nil {
			return err
		}
		if *reason == "" {
			return fmt.Errorf("%w: give -reason", cove.ErrInvalid)
		}
		j, err := k.c.Review(ctx, pos[0], sub == "approve", *reason)
		if err != nil {
			return err
		}
		return k.emit(j, jobHeader, jobRows([]client.Job{j}))
	}
	return fmt.Errorf("%w: review %s\n%s", cove.ErrInvalid, sub, clientUsage)
}

func ledgerRemote(ctx context.Context, sub string, args []string, out io.Writer) error {
	k := newCLI("ledger "+sub, out)
	keyFile := k.fs.String("key", "", "file holding the log's verifier key, from a source you trust")
	cpFile := k.fs.String("checkpoint", "", "a signed checkpoint you kept earlier")
	seq := k.fs.Uint64("seq", 0, "entry to prove")
	from := k.fs.String("from", "", "older checkpoint file to prove consistency from")
	fromSeq := k.fs.Uint64("from-seq", 1, "first entry (entries)")
	limit := k.fs.Uint64("limit", 100, "entries to list (entries)")
	if _, err := k.parse(args); err != nil {
		return err
	}
	if err := k.connect(); err != nil {
		return err
	}
	switch sub {
	case "key":
		key, err := k.c.VerifierKey(ctx)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, key)
		return err
	case "checkpoint":
		cp, err := k.c.SignCheckpoint(ctx)
		if errors.Is(err, client.ErrForbidden) || errors.Is(err, client.ErrUnauthenticated) {
			cp, err = k.c.LatestCheckpoint(ctx)
		}
		if err != nil {
			return err
		}
		_, err = io.WriteString(out, cp.Note)
		return err
	case "entries":
		es, err := k.c.LedgerEntries(ctx, *fromSeq, *limit)
		if err != nil {
			return err
		}
		var rows [][]string
		for _, e := range es {
			rows = append(rows, []string{strconv.FormatUint(e.Seq, 10), e.Time.Format(time.RFC3339), e.Kind, e.Subject})
		}
		return k.emit(es, []string{"seq", "time", "kind", "subject"}, rows)
	case "prove":
		var v any
		var err error
		switch {
		case *seq > 0 && *from == "":
			v, err = k.c.InclusionProof(ctx, *seq, 0)
		case *seq == 0 && *from != "":
			msg, rerr := readSmall(*from)
			if rerr != nil {
				return rerr
			}
			size, perr := noteSize(msg)
			if perr != nil {
				return perr
			}
			v, err = k.c.ConsistencyProof(ctx, size, 0)
		default:
			return fmt.Errorf("%w: give -seq N or -from CHECKPOINT_FILE", cove.ErrInvalid)
		}
		if err != nil {
			return err
		}
		return json.NewEncoder(out).Encode(v)
	case "verify":
		return verifyRemote(ctx, k, *keyFile, *cpFile)
	}
	return fmt.Errorf("%w: ledger %s\n%s", cove.ErrInvalid, sub, clientUsage)
}

// noteSize reads the tree size of a checkpoint note without its key (the
// server checks the note; the caller verifies the proof with its own key).
func noteSize(msg []byte) (uint64, error) {
	lines := strings.SplitN(string(msg), "\n", 3)
	if len(lines) < 3 {
		return 0, fmt.Errorf("%w: not a checkpoint note", cove.ErrInvalid)
	}
	n, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: not a checkpoint note", cove.ErrInvalid)
	}
	return n, nil
}

// verifyRemote verifies the server's ledger: with the authority's token,
// the whole export (every entry, the checkpoint, a kept checkpoint); else
// the latest checkpoint's signature and, with -checkpoint, its consistency
// with the kept one.
func verifyRemote(ctx context.Context, k *cli, keyFile, cpFile string) error {
	who, err := k.c.WhoAmI(ctx)
	if err != nil {
		return err
	}
	if who.Role == "authority" {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(k.c.LedgerExport(ctx, pw)) }()
		err := verifyExport(pr, keyFile, cpFile, k.out)
		pr.Close()
		return err
	}
	// Not the authority: check what the public can.
	var vkey string
	if keyFile != "" {
		_, vkey, err = readKey(keyFile)
	} else {
		vkey, err = k.c.VerifierKey(ctx)
		fmt.Fprintln(k.out, "warning: checked with the key the server gave; pass -key with the key published for this log")
	}
	if err != nil {
		return err
	}
	v, err := ledger.NewVerifier(vkey)
	if err != nil {
		return err
	}
	latest, err := k.c.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	cp, err := ledger.OpenCheckpoint([]byte(latest.Note), v)
	if err != nil {
		return err
	}
	fmt.Fprintf(k.out, "latest checkpoint verified: %d entries, tree head %s, signed by %s\n", cp.Size, cp.Hash, v.Name())
	if cpFile == "" {
		return nil
	}
	msg, err := readSmall(cpFile)
	if err != nil {
		return err
	}
	kept, err := ledger.OpenCheckpoint(msg, v)
	if err != nil {
		return fmt.Errorf("kept %w", err)
	}
	p, err := k.c.ConsistencyProof(ctx, kept.Size, cp.Size)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(p)
	var lp ledger.ConsistencyProof
	if err := json.Unmarshal(b, &lp); err != nil {
		return err
	}
	older, newer, err := lp.Verify(v)
	if err != nil {
		return err
	}
	if older != kept.Head || newer != cp.Head {
		return fmt.Errorf("%w: the proof is not between the kept and the latest checkpoints", cove.ErrLedger)
	}
	fmt.Fprintf(k.out, "kept checkpoint %d: consistency proof %d -> %d checked\n", kept.Size, kept.Size, cp.Size)
	return nil
}

func statementRemote(ctx context.Context, args []string, out io.Writer) error {
	k := newCLI("statement", out)
	month := k.fs.String("month", "", "month, YYYY-MM (default: this month)")
	operator := k.fs.String("operator", "", "one operator (authority; default all)")
	if _, err := k.parse(args); err != nil {
		return err
	}
	if err := k.connect(); err != nil {
		return err
	}
	sts, err := k.c.Statements(ctx, *month, *operator)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, s := range sts {
		rows = append(rows, []string{s.Operator, s.Month, strconv.Itoa(s.Jobs), strconv.Itoa(s.Releases), strconv.Itoa(s.Queries), strconv.FormatInt(s.Rows, 10), f64(s.Epsilon), fmt.Sprintf("%.2f %s", s.Total, s.Currency)})
	}
	return k.emit(sts, []string{"operator", "month", "jobs", "releases", "he queries", "rows", "ε", "total"}, rows)
}

func reportRemote(ctx context.Context, args []string, out io.Writer) error {
	k := newCLI("report", out)
	htmlPath := k.fs.String("html", "", "write the report as HTML here")
	if _, err := k.parse(args); err != nil {
		return err
	}
	if err := k.connect(); err != nil {
		return err
	}
	if *htmlPath != "" {
		b, err := k.c.DisclosureHTML(ctx)
		if err != nil {
			return err
		}
		return writeFile(*htmlPath, func(w io.Writer) error { _, err := w.Write(b); return err })
	}
	d, err := k.c.Disclosure(ctx)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, u := range d.Usage {
		rows = append(rows, []string{u.Dataset, strconv.Itoa(u.Jobs), strconv.Itoa(u.Releases), strconv.Itoa(u.Rejected), strconv.FormatInt(u.Rows, 10), f64(u.Epsilon)})
	}
	if k.output == "table" {
		fmt.Fprintf(out, "disclosure: %d grants, %d products, ledger %d entries (%s)\n", len(d.Grants), len(d.Products), d.Ledger.Size, d.Ledger.Hash)
	}
	return k.emit(d, []string{"dataset", "jobs", "releases", "rejected", "rows read", "ε spent"}, rows)
}

// tokenCmd issues, lists and revokes tokens: over the API, or directly in a
// data directory (-data-dir) to issue the first authority token.
func tokenCmd(ctx context.Context, sub string, args []string, out io.Writer) error {
	k := newCLI("token "+sub, out)
	dir := k.fs.String("data-dir", "", "issue directly in this data directory's token store")
	role := k.fs.String("role", "", "authority, provider, operator or public")
	subject := k.fs.String("subject", "", "the operator or provider the token acts for")
	note := k.fs.String("note", "", "a note kept with the token")
	pos, err := k.parse(args)
	if err != nil {
		return err
	}
	infoRows := func(ts []client.TokenInfo) [][]string {
		var rows [][]string
		for _, t := range ts {
			rev := ""
			if t.Revoked != nil {
				rev = t.Revoked.Format(time.RFC3339)
			}
			rows = append(rows, []string{t.ID, t.Role, t.Subject, t.Created.Format(time.RFC3339), rev, t.Note})
		}
		return rows
	}
	header := []string{"id", "role", "subject", "created", "revoked", "note"}
	if *dir != "" {
		toks, err := service.OpenTokens(ctx, filepath.Join(*dir, service.TokensFile))
		if err != nil {
			return err
		}
		defer toks.Close()
		switch sub {
		case "create":
			tok, _, err := toks.Create(ctx, service.Role(*role), *subject, *note)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(out, tok)
			return err
		case "revoke":
			if err := needArgs(pos, 1, "cove token revoke ID"); err != nil {
				return err
			}
			return toks.Revoke(ctx, pos[0])
		case "list":
			ts, err := toks.List(ctx)
			if err != nil {
				return err
			}
			b, _ := json.Marshal(ts)
			var cts []client.TokenInfo
			json.Unmarshal(b, &cts)
			return k.emit(cts, header, infoRows(cts))
		}
		return fmt.Errorf("%w: token %s\n%s", cove.ErrInvalid, sub, clientUsage)
	}
	if err := k.connect(); err != nil {
		return err
	}
	switch sub {
	case "create":
		t, err := k.c.CreateToken(ctx, *role, *subject, *note)
		if err != nil {
			return err
		}
		if k.output == "json" {
			return k.emit(t, nil, nil)
		}
		_, err = fmt.Fprintln(out, t.Token)
		return err
	case "list":
		ts, err := k.c.Tokens(ctx)
		if err != nil {
			return err
		}
		return k.emit(ts, header, infoRows(ts))
	case "revoke":
		if err := needArgs(pos, 1, "cove token revoke ID"); err != nil {
			return err
		}
		t, err := k.c.RevokeToken(ctx, pos[0])
		if err != nil {
			return err
		}
		return k.emit(t, header, infoRows([]client.TokenInfo{t}))
	}
	return fmt.Errorf("%w: token %s\n%s", cove.ErrInvalid, sub, clientUsage)
}
