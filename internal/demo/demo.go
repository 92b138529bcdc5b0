package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/report"
	"github.com/covedata/cove/runtime/isolate"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

// The demo's operator and grant.
const (
	Operator = "acme-analytics"
	GrantID  = "g-acme-2026"
	Purpose  = "public-research"
)

// GrantedColumns are the columns the demo grant opens per dataset.
var GrantedColumns = map[string][]string{
	"beijing-air-quality": {"station", "year", "month", "day", "hour", "PM2.5", "PM10", "TEMP", "DEWP", "WSPM"},
	"adult":               {"age", "education", "occupation", "hours-per-week", "income"},
}

// Options configures a demo run.
type Options struct {
	// DataDir holds the state, the ledger and the datasets. Empty: a fresh
	// temporary directory, removed at the end.
	DataDir string
	// Out receives the report; nil discards it.
	Out io.Writer
	// Runner settings (deadline, batch size, allocator).
	Config jobs.Config
}

// Result is what the demo did, for tests.
type Result struct {
	DataDir    string
	Releases   []*jobs.Release
	Rejections []error
	Ledger     ledger.Head
	Budgets    map[string]policy.Budget
	Disclosure *report.Disclosure
}

// Run runs the demo.
func Run(ctx context.Context, opt Options) (_ *Result, err error) {
	out := opt.Out
	if out == nil {
		out = io.Discard
	}
	dir := opt.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cove-demo-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, "datasets"), 0o755); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, filepath.Join(dir, "cove.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	// Each guest runs in a sandbox process of its own (runtime/isolate).
	eng, err := isolate.NewEngine(ctx, isolate.NewConfig(wasm.NewConfig().WithCompilationCacheDir(filepath.Join(dir, "wasm-cache"))))
	if err != nil {
		return nil, err
	}
	defer eng.Close(ctx)
	cfg := opt.Config
	if cfg == (jobs.Config{}) {
		cfg = jobs.NewConfig()
	}
	runner := jobs.NewRunner(st, eng, cfg.WithDataDir(dir))
	res := &Result{DataDir: dir, Budgets: map[string]policy.Budget{}}

	fmt.Fprintf(out, "Cove demo — data directory %s\n\n", dir)
	fmt.Fprintln(out, "1. The authority registers two public datasets")
	for _, ds := range demodata.Datasets() {
		d, err := register(ctx, runner, dir, ds)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "   %-20s %7d rows, %2d columns, sha256 %s…  (%s)\n", d.Name, d.Rows, len(d.Columns), d.SHA256[:12], d.Title)
	}

	now := st.Now()
	g := policy.Grant{
		ID: GrantID, Operator: Operator, Mode: policy.Scenario, Purposes: []string{Purpose},
		Mechanisms: []string{policy.MechanismDP}, Pricing: policy.PublicWelfare,
		Agreement: "demo agreement 2026-001",
		Datasets:  []string{"beijing-air-quality", "adult"}, Columns: GrantedColumns,
		EpsilonCap: map[string]float64{"beijing-air-quality": 1.5, "adult": 1.0},
		ValidFrom:  now.Add(-time.Minute), ValidUntil: now.AddDate(0, 3, 0),
	}
	if err := st.CreateGrant(ctx, g); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\n2. The authority grants %s (grant %s, %s mode, purpose %s, %s pricing, until %s)\n",
		Operator, GrantID, g.Mode, Purpose, g.Pricing, g.ValidUntil.Format("2006-01-02"))
	for _, name := range g.Datasets {
		fmt.Fprintf(out, "   %-20s ε cap %.1f, columns %s\n", name, g.EpsilonCap[name], strings.Join(GrantedColumns[name], ", "))
	}

	fmt.Fprintln(out, "\n3. The operator submits four example jobs, one per way a job runs on real data (docs/privacy.md):")
	fmt.Fprintln(out, "   two plan jobs (the Go modules' planning calls see the schema only; the host runs the plans natively),")
	fmt.Fprintln(out, "   a C job called once per station-day from a restored snapshot (mode unit), and a C regression")
	fmt.Fprintln(out, "   fitted on 1,000 disjoint blocks of station-days whose clamped coefficients are averaged (mode block)")
	for _, ex := range []examples.Job{examples.AirQuality(), examples.Adult(), examples.PM25Days(), examples.PM25Regress()} {
		job, err := runner.Submit(ctx, jobs.Submission{Operator: Operator, Manifest: ex.Manifest, Module: ex.Module})
		if err != nil {
			return nil, fmt.Errorf("example %s: %w", ex.Name, err)
		}
		fmt.Fprintf(out, "\n   job %s (%s, mode %s) on %s: admitted", job.ID, ex.Name, job.Mode, job.Dataset)
		if job.Plan != "" {
			fmt.Fprintf(out, " with plan %s…:\n", job.PlanSHA256[:12])
			for _, line := range strings.Split(job.Plan, "\n") {
				fmt.Fprintf(out, "     %s\n", line)
			}
		} else {
			fmt.Fprintf(out, " (module %s…)\n", job.ModuleSHA256[:12])
		}
		if job.State == store.StateInReview {
			d, _ := st.Dataset(ctx, job.Dataset)
			fmt.Fprintf(out, "\n   job %s on %s waits for review (%s data, level %d); the authority approves it\n", job.ID, job.Dataset, d.Sharing, d.Level)
			if err := runner.Review(ctx, job.ID, true, "authority", "aggregates only, public-research purpose"); err != nil {
				return nil, err
			}
		}
		rel, err := runner.Execute(ctx, job.ID)
		if err != nil {
			return nil, fmt.Errorf("example %s: %w", ex.Name, err)
		}
		res.Releases = append(res.Releases, rel)
		printRelease(out, rel)
	}

	fmt.Fprintf(out, "\n   (each guest ran in a sandbox process of its own: %s)\n", eng.Isolation())
	fmt.Fprintln(out, "\n4. Budget left")
	for _, name := range g.Datasets {
		b, err := st.Budget(ctx, GrantID, name)
		if err != nil {
			return nil, err
		}
		res.Budgets[name] = b
		fmt.Fprintf(out, "   %-20s spent ε %.2f of %.2f, left %.2f\n", name, b.Spent, b.Cap, b.Left())
	}

	fmt.Fprintln(out, "\n5. Jobs the policy refuses")
	adult := examples.Adult()
	bad := []struct{ what, manifest string }{
		{"the Adult job again (needs ε 0.6)", string(adult.Manifest)},
		{"an Adult job with ε 0.2 that also reads column race, outside the grant", strings.NewReplacer(
			"columns: [education, occupation, hours-per-week, income]", "columns: [education, occupation, hours-per-week, income, race]",
			"epsilon: 0.3", "epsilon: 0.1").Replace(string(adult.Manifest))},
	}
	for _, b := range bad {
		_, err := runner.Run(ctx, jobs.Submission{Operator: Operator, Manifest: []byte(b.manifest), Module: adult.Module})
		var rej *policy.Rejection
		if !errors.As(err, &rej) {
			return nil, fmt.Errorf("demo: %s was not rejected by policy: %v", b.what, err)
		}
		res.Rejections = append(res.Rejections, err)
		fmt.Fprintf(out, "   %s:\n", b.what)
		for _, v := range rej.Violations {
			fmt.Fprintf(out, "     rejected [%s] %s\n", v.Code, v.Message)
		}
	}

	fmt.Fprintln(out, "\n6. Anyone holding the ledger verifies it, and derives the reports from it")
	log, err := st.VerifyLedger(ctx)
	if err != nil {
		return nil, err
	}
	res.Ledger = log.Head()
	cp, err := st.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	if err := log.Check(cp.Head); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "   ledger verified: %d entries, tree head %s\n", res.Ledger.Size, res.Ledger.Hash)
	fmt.Fprintf(out, "   checkpoint signed with Ed25519 by %s (publish it: any later log must stay consistent with it)\n", st.VerifierKey())
	disc, err := report.NewDisclosure(st.Entries(ctx), res.Ledger, st.Now())
	if err != nil {
		return nil, err
	}
	res.Disclosure = disc
	htmlPath := filepath.Join(dir, "disclosure.html")
	f, err := os.Create(htmlPath)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(disc.WriteHTML(f), f.Close()); err != nil {
		return nil, err
	}
	where := "HTML at " + htmlPath
	if opt.DataDir == "" {
		where = "HTML written to the temporary directory (run with -data-dir DIR to keep it)"
	}
	fmt.Fprintf(out, "   disclosure report: %d grant(s), %d data product(s); %s\n", len(disc.Grants), len(disc.Products), where)
	sts, err := report.Statements(st.Entries(ctx), report.DefaultPrices, st.Now().UTC().Format("2006-01"), Operator, st.Now())
	if err != nil {
		return nil, err
	}
	for _, s := range sts {
		fmt.Fprintf(out, "   statement %s %s: %d jobs, %d rows read, ε %.2f, %s pricing — total %.2f %s\n",
			s.Operator, s.Month, s.Jobs, s.Rows, s.Epsilon, g.Pricing, s.Total, s.Currency)
	}
	return res, nil
}

// classification is how the demo authority grades its two datasets: air
// quality is open environmental data; Adult holds personal data, shared only
// on conditions (privacy computing, after review).
var classification = map[string]struct {
	registration string
	domain       string
	sharing      policy.Sharing
	level        int
	personal     bool
	roles        map[string]policy.Role
	domains      map[string][]string
}{
	"beijing-air-quality": {
		registration: "DR-ENV-2017-0001", domain: "environment", sharing: policy.Open, level: 1,
		// One hourly reading of one station is the unit: unique per row.
		roles: map[string]policy.Role{"No": policy.Attribute, "station": policy.PrivacyUnitRole, "year": policy.PrivacyUnitRole,
			"month": policy.PrivacyUnitRole, "day": policy.PrivacyUnitRole, "hour": policy.PrivacyUnitRole},
		domains: map[string][]string{"station": demodata.AirQualityStations()},
	},
	"adult": {
		registration: "DR-SOC-1996-0001", domain: "social", sharing: policy.Conditional, level: 2, personal: true,
		roles: map[string]policy.Role{
			"age": policy.QuasiIdentifier, "sex": policy.QuasiIdentifier, "race": policy.QuasiIdentifier,
			"native-country": policy.QuasiIdentifier, "education": policy.QuasiIdentifier, "occupation": policy.QuasiIdentifier,
			"marital-status": policy.QuasiIdentifier, "fnlwgt": policy.Sensitive, "income": policy.Sensitive,
			"capital-gain": policy.Sensitive, "capital-loss": policy.Sensitive,
		},
		domains: map[string][]string{"education": demodata.AdultEducation(), "occupation": demodata.AdultOccupations()},
	},
}

// register writes an embedded dataset into the data directory and enters it
// in the catalog with its schema and content hash.
func register(ctx context.Context, runner *jobs.Runner, dir string, ds demodata.Dataset) (policy.Dataset, error) {
	b, err := demodata.Open(ds.Name)
	if err != nil {
		return policy.Dataset{}, err
	}
	rel := filepath.Join("datasets", ds.Name+".parquet")
	path := filepath.Join(dir, rel)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return policy.Dataset{}, err
	}
	schema, err := connectors.ReadSchema(path)
	if err != nil {
		return policy.Dataset{}, err
	}
	c := classification[ds.Name]
	d := policy.Dataset{
		Name: ds.Name, RegistrationID: c.registration, Title: ds.Title, Domain: c.domain, Provider: "UCI Machine Learning Repository",
		Source: ds.Source, Citation: ds.Citation, License: ds.License, Sharing: c.sharing, Level: c.level, Personal: c.personal,
		Location: rel, SHA256: ds.SHA256, Rows: ds.Rows,
	}
	for _, f := range schema.Fields() {
		d.Columns = append(d.Columns, policy.Column{Name: f.Name, Type: f.Type.String(), Role: c.roles[f.Name], Domain: c.domains[f.Name]})
	}
	return d, runner.RegisterDataset(ctx, d)
}

func printRelease(out io.Writer, rel *jobs.Release) {
	fmt.Fprintf(out, "   job %s on %s: released, ε %.2f spent\n", rel.Job, rel.Dataset, rel.Epsilon)
	if f := rel.Failures; f != nil {
		fmt.Fprintf(out, "   %s whose guest call failed (a noisy count, ε %.2g): %d (σ %.0f)\n", f.Of, f.Epsilon, f.Count, f.NoiseStdDev)
	}
	for _, o := range rel.Outputs {
		bounds := ""
		if o.Aggregate != "count" {
			bounds = fmt.Sprintf(", values clamped to [%g, %g]", o.Lower, o.Upper)
		}
		if o.Aggregate == "block_mean" {
			fmt.Fprintf(out, "   output %s: block_mean — %s noise, ε %.2f, each block's vector clamped per coordinate, the mean over the blocks\n",
				o.Name, o.Mechanism, o.Epsilon)
		} else {
			fmt.Fprintf(out, "   output %s: %s by %s — %s noise, ε %.2f%s, each unit ≤ %d partition(s) × %d contribution(s)\n",
				o.Name, o.Aggregate, strings.Join(o.GroupBy, " × "), o.Mechanism, o.Epsilon, bounds, o.MaxPartitions, o.MaxContributions)
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "\t%s\tvalue\tnoise σ\t95%% CI\t\n", strings.Join(o.GroupBy, "\t"))
		for _, r := range o.Rows {
			fmt.Fprintf(tw, "\t%s\t%.2f\t%.2f\t[%.2f, %.2f]\t\n", strings.Join(r.Key, "\t"), r.Value, r.NoiseStdDev, r.CILow, r.CIHigh)
		}
		tw.Flush()
	}
}
