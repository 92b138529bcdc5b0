package service_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/sdk/client"
	"github.com/covedata/cove/service"
)

// The demo's operator, grant and purpose.
const (
	operatorA = "acme-analytics"
	operatorB = "beta-insights"
	grantA    = "g-acme-2026"
	grantB    = "g-beta-2026"
	purpose   = "public-research"
)

// env is a running server with a token per role.
type env struct {
	srv    *service.Server
	url    string
	dir    string
	tokens map[string]string // authority, provider, operator, operator-b, public, revoked
	cancel context.CancelFunc
	done   chan error
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// startServer starts an in-process server on a random loopback port.
func startServer(t testing.TB, dir string, opt service.Options) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opt.DataDir = dir
	opt.InProcessGuests = opt.InProcessGuests || raceEnabled
	if opt.Logger == nil {
		opt.Logger = quietLogger()
	}
	srv, err := service.New(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	e := &env{srv: srv, url: "http://" + ln.Addr().String(), dir: dir, cancel: cancel, done: make(chan error, 1), tokens: map[string]string{}}
	go func() { e.done <- srv.Serve(ctx, ln, "", "") }()
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	e.srv.Close()
	e.cancel = nil
}

// issue creates the tokens of every role.
func (e *env) issue(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	for _, x := range []struct {
		name    string
		role    service.Role
		subject string
	}{
		{"authority", service.Authority, "data-admin"},
		{"provider", service.Provider, "uci"},
		{"operator", service.Operator, operatorA},
		{"operator-b", service.Operator, operatorB},
		{"public", service.Public, ""},
		{"revoked", service.Operator, operatorA},
	} {
		tok, info, err := e.srv.Tokens().Create(ctx, x.role, x.subject, "test")
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[x.name] = tok
		if x.name == "revoked" {
			if err := e.srv.Tokens().Revoke(ctx, info.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func (e *env) client(t testing.TB, who string) *client.Client {
	t.Helper()
	var opts []client.Option
	if tok := e.tokens[who]; tok != "" {
		opts = append(opts, client.WithToken(tok))
	}
	c, err := client.New(e.url, append(opts, client.WithHTTPClient(&http.Client{Timeout: 2 * time.Minute}))...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// demoCatalog is the demo's classification of its two datasets (as in
// internal/demo), for registration through the API.
func demoCatalog() []client.Dataset {
	aq, _ := demodata.Lookup("beijing-air-quality")
	ad, _ := demodata.Lookup("adult")
	q := "quasi-identifier"
	sens := "sensitive"
	unit := "privacy-unit"
	return []client.Dataset{
		{
			Name: aq.Name, RegistrationID: "DR-ENV-2017-0001", Title: aq.Title, Domain: "environment", Provider: "uci",
			Source: aq.Source, License: aq.License, Sharing: "open", Level: 1, Location: "datasets/" + aq.Name + ".parquet",
			SHA256: aq.SHA256, Rows: aq.Rows,
			// One station's hourly reading is the privacy unit (unique per row).
			Columns: []client.Column{
				{Name: "station", Role: unit, Domain: demodata.AirQualityStations()},
				{Name: "year", Role: unit}, {Name: "month", Role: unit}, {Name: "day", Role: unit}, {Name: "hour", Role: unit},
			},
		},
		{
			Name: ad.Name, RegistrationID: "DR-SOC-1996-0001", Title: ad.Title, Domain: "social", Provider: "uci",
			Source: ad.Source, License: ad.License, Sharing: "conditional", Level: 2, Personal: true,
			Location: "datasets/" + ad.Name + ".parquet", SHA256: ad.SHA256, Rows: ad.Rows,
			Columns: []client.Column{
				{Name: "age", Role: q}, {Name: "fnlwgt", Role: sens},
				{Name: "education", Role: q, Domain: demodata.AdultEducation()},
				{Name: "marital-status", Role: q}, {Name: "occupation", Role: q, Domain: demodata.AdultOccupations()},
				{Name: "race", Role: q}, {Name: "sex", Role: q},
				{Name: "capital-gain", Role: sens}, {Name: "capital-loss", Role: sens},
				{Name: "native-country", Role: q}, {Name: "income", Role: sens},
			},
		},
	}
}

// placeDemoFiles writes the demo datasets' files into a data directory.
func placeDemoFiles(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "datasets"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ds := range demodata.Datasets() {
		b, err := demodata.Open(ds.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "datasets", ds.Name+".parquet"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// demoGrant is the demo's grant, for operator op.
func demoGrant(id, op string) client.Grant {
	now := time.Now()
	return client.Grant{
		ID: id, Operator: op, Mode: "scenario", Purposes: []string{purpose}, Mechanisms: []string{"dp"},
		Pricing: "public-welfare", Agreement: "test agreement",
		Datasets: []string{"beijing-air-quality", "adult"},
		Columns: map[string][]string{
			"beijing-air-quality": {"station", "year", "month", "day", "hour", "PM2.5", "PM10"},
			"adult":               {"age", "education", "occupation", "hours-per-week", "income"},
		},
		EpsilonCap: map[string]float64{"beijing-air-quality": 5, "adult": 5},
		ValidFrom:  now.Add(-time.Minute), ValidUntil: now.AddDate(0, 3, 0),
	}
}

// setupDemo registers the demo datasets and both grants through the API.
func (e *env) setupDemo(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	placeDemoFiles(t, e.dir)
	auth := e.client(t, "authority")
	prov := e.client(t, "provider")
	for i, d := range demoCatalog() {
		c := auth
		if i == 1 {
			c = prov // the provider registers its own dataset
		}
		if _, err := c.RegisterDataset(ctx, d); err != nil {
			t.Fatalf("register %s: %v", d.Name, err)
		}
	}
	for _, g := range []client.Grant{demoGrant(grantA, operatorA), demoGrant(grantB, operatorB)} {
		if _, err := auth.CreateGrant(ctx, g); err != nil {
			t.Fatalf("grant %s: %v", g.ID, err)
		}
	}
}
