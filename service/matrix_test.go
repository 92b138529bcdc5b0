package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/sdk/client"
	"github.com/covedata/cove/service"
)

// identities are every caller the matrix tries.
var identities = []string{"authority", "provider", "operator", "operator-b", "public", "none", "revoked"}

// roleOf is the role of each identity ("" for none).
var roleOf = map[string]service.Role{
	"authority": service.Authority, "provider": service.Provider, "operator": service.Operator,
	"operator-b": service.Operator, "public": service.Public, "revoked": service.Operator,
}

type matrixCase struct {
	method, pattern string
	// path builds the request path for an identity (fresh resources for
	// calls that change them).
	path func(who string) string
	body func(who string) (contentType string, body []byte)
	// want: expected status per identity allowed by the route; missing
	// allowed identities expect the route's success status.
	want map[string]int
}

func jsonBody(v any) func(string) (string, []byte) {
	return func(string) (string, []byte) {
		b, _ := json.Marshal(v)
		return "application/json", b
	}
}

func submissionBody(ex examples.Job) func(string) (string, []byte) {
	return func(string) (string, []byte) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		w, _ := mw.CreateFormFile("manifest", "manifest.yaml")
		w.Write(ex.Manifest)
		w, _ = mw.CreateFormFile("module", "job.wasm")
		w.Write(ex.Module)
		mw.Close()
		return mw.FormDataContentType(), buf.Bytes()
	}
}

// TestRoleEndpointMatrix calls every endpoint as every identity: the
// authority, a provider, an operator, another operator, the public (a
// token and no token) and a revoked token; each answer is asserted, and
// every error answer has a code and a message.
func TestRoleEndpointMatrix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := startServer(t, t.TempDir(), serviceOptions())
	e.issue(t)
	e.setupDemo(t)
	op := e.client(t, "operator")
	auth := e.client(t, "authority")
	aq, adult := examples.AirQuality(), examples.Adult()
	released, err := op.SubmitAndWait(ctx, client.Submission{Manifest: aq.Manifest, Module: aq.Module}, nil)
	if err != nil {
		t.Fatal(err)
	}
	relJob := released.Job
	// A job entry of operator A in the ledger, for inclusion proofs.
	var jobSeq uint64
	es, err := auth.LedgerEntries(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range es {
		if x.Subject == relJob && jobSeq == 0 {
			jobSeq = x.Seq
		}
	}
	inReview := func() string {
		j, err := op.Submit(ctx, client.Submission{Manifest: adult.Manifest, Module: adult.Module})
		if err != nil || j.State != client.StateInReview {
			t.Fatalf("fresh adult job: %+v %v", j, err)
		}
		return j.ID
	}
	var n atomic.Int64
	fresh := func(prefix string) string { return fmt.Sprintf("%s-%d", prefix, n.Add(1)) }
	freshGrant := func() string {
		g := demoGrant(fresh("g-matrix"), operatorA)
		if _, err := auth.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		return g.ID
	}
	freshToken := func() string {
		tk, err := auth.CreateToken(ctx, "operator", "someone", "")
		if err != nil {
			t.Fatal(err)
		}
		return tk.Info.ID
	}
	aqCopy := func(who string) (string, []byte) {
		d := demoCatalog()[0]
		d.Name, d.RegistrationID = fresh("aq-copy"), ""
		return jsonBody(d)(who)
	}
	reason := jsonBody(map[string]string{"reason": "matrix"})
	static := func(p string) func(string) string { return func(string) string { return p } }
	nf, unproc := http.StatusNotFound, http.StatusUnprocessableEntity
	bad := http.StatusBadRequest
	octets := func(string) (string, []byte) { return "application/octet-stream", []byte("not an HE message") }

	cases := []matrixCase{
		{method: "GET", pattern: "/healthz", path: static("/healthz")},
		{method: "GET", pattern: "/openapi.json", path: static("/openapi.json")},
		{method: "GET", pattern: "/metrics", path: static("/metrics")},
		{method: "GET", pattern: "/v1/whoami", path: static("/v1/whoami")},
		{method: "GET", pattern: "/v1/datasets", path: static("/v1/datasets")},
		{method: "POST", pattern: "/v1/datasets", path: static("/v1/datasets"), body: aqCopy},
		{method: "GET", pattern: "/v1/datasets/{name}", path: static("/v1/datasets/adult")},
		{method: "GET", pattern: "/v1/datasets/{name}/usage", path: static("/v1/datasets/adult/usage")},
		{method: "GET", pattern: "/v1/grants", path: static("/v1/grants")},
		{method: "POST", pattern: "/v1/grants", path: static("/v1/grants"), body: func(who string) (string, []byte) {
			return jsonBody(demoGrant(fresh("g-new"), operatorA))(who)
		}},
		{method: "GET", pattern: "/v1/grants/{id}", path: static("/v1/grants/" + grantA), want: map[string]int{"operator-b": nf}},
		{method: "POST", pattern: "/v1/grants/{id}/revoke", body: reason, path: func(who string) string {
			if roleOf[who] == service.Authority {
				return "/v1/grants/" + freshGrant() + "/revoke"
			}
			return "/v1/grants/" + grantB + "/revoke"
		}},
		{method: "GET", pattern: "/v1/grants/{id}/budgets", path: static("/v1/grants/" + grantA + "/budgets"), want: map[string]int{"operator-b": nf}},
		// Any operator uploads modules; an upload is the uploader's own.
		{method: "POST", pattern: "/v1/modules", path: static("/v1/modules"), body: func(string) (string, []byte) { return "application/wasm", aq.Module }},
		// Operator B holds no grant the example names: rejected, with violations.
		{method: "POST", pattern: "/v1/jobs", path: static("/v1/jobs"), body: submissionBody(aq), want: map[string]int{"operator-b": unproc}},
		{method: "POST", pattern: "/v1/jobs/dry-run", path: static("/v1/jobs/dry-run"), body: submissionBody(aq), want: map[string]int{"operator-b": unproc}},
		{method: "GET", pattern: "/v1/jobs", path: static("/v1/jobs")},
		{method: "GET", pattern: "/v1/jobs/{id}", path: static("/v1/jobs/" + relJob), want: map[string]int{"operator-b": nf}},
		{method: "GET", pattern: "/v1/jobs/{id}/events", path: static("/v1/jobs/" + relJob + "/events"), want: map[string]int{"operator-b": nf}},
		{method: "POST", pattern: "/v1/jobs/{id}/cancel", body: reason, path: func(who string) string {
			if who == "authority" || who == "operator" || who == "operator-b" {
				return "/v1/jobs/" + inReview() + "/cancel"
			}
			return "/v1/jobs/" + relJob + "/cancel"
		}, want: map[string]int{"operator-b": nf}},
		{method: "GET", pattern: "/v1/jobs/{id}/release", path: static("/v1/jobs/" + relJob + "/release"), want: map[string]int{"operator-b": nf}},
		{method: "GET", pattern: "/v1/reviews", path: static("/v1/reviews")},
		{method: "POST", pattern: "/v1/reviews/{id}", body: jsonBody(map[string]any{"approve": false, "reason": "matrix"}), path: func(who string) string {
			if who == "authority" {
				return "/v1/reviews/" + inReview()
			}
			return "/v1/reviews/" + relJob
		}},
		{method: "GET", pattern: "/v1/ledger/entries", path: static("/v1/ledger/entries")},
		{method: "GET", pattern: "/v1/ledger/export", path: static("/v1/ledger/export")},
		{method: "GET", pattern: "/v1/ledger/key", path: static("/v1/ledger/key")},
		{method: "GET", pattern: "/v1/ledger/checkpoints", path: static("/v1/ledger/checkpoints")},
		{method: "POST", pattern: "/v1/ledger/checkpoints", path: static("/v1/ledger/checkpoints")},
		{method: "GET", pattern: "/v1/ledger/checkpoints/latest", path: static("/v1/ledger/checkpoints/latest")},
		{method: "GET", pattern: "/v1/ledger/proofs/inclusion", path: static("/v1/ledger/proofs/inclusion?seq=1")},
		// An entry of operator A's job: A and the authority only.
		{method: "GET", pattern: "/v1/ledger/proofs/inclusion", path: static(fmt.Sprintf("/v1/ledger/proofs/inclusion?seq=%d", jobSeq)),
			want: map[string]int{"operator-b": nf, "provider": nf, "public": nf, "none": nf}},
		{method: "GET", pattern: "/v1/ledger/proofs/consistency", path: func(string) string {
			cps, err := auth.Checkpoints(ctx)
			if err != nil || len(cps) == 0 {
				t.Fatalf("checkpoints: %v %v", cps, err)
			}
			return fmt.Sprintf("/v1/ledger/proofs/consistency?old=%d", cps[0].Size)
		}},
		{method: "GET", pattern: "/v1/statements", path: static("/v1/statements")},
		// Another operator's statements: refused.
		{method: "GET", pattern: "/v1/statements", path: static("/v1/statements?operator=" + operatorA), want: map[string]int{"operator-b": http.StatusForbidden}},
		// The HE routes (he_test.go runs them for real): a setup registered
		// here, its keys never built; garbage binary bodies are refused.
		{method: "POST", pattern: "/v1/he/setups", path: static("/v1/he/setups"), body: jsonBody(map[string]any{"name": "m-setup",
			"params":    map[string]any{"scheme": "ckks", "log_n": 14, "log_q": []int{60, 50, 50, 50}, "log_p": []int{61}, "log_scale": 50, "flood_bits": 30},
			"providers": []string{"uci"}})},
		{method: "GET", pattern: "/v1/he/setups/{name}", path: static("/v1/he/setups/m-setup")},
		{method: "POST", pattern: "/v1/he/setups/{name}/keygen", path: static("/v1/he/setups/m-setup/keygen"), body: octets, want: map[string]int{"provider": bad}},
		{method: "GET", pattern: "/v1/he/setups/{name}/keys", path: static("/v1/he/setups/m-setup/keys"),
			want: map[string]int{"authority": nf, "provider": nf, "operator": nf, "operator-b": nf}},
		{method: "POST", pattern: "/v1/he/columns/{dataset}/{column}", path: static("/v1/he/columns/adult/age?setup=m-setup"), body: octets, want: map[string]int{"provider": nf}},
		{method: "POST", pattern: "/v1/he/recipients", path: static("/v1/he/recipients"), body: octets, want: map[string]int{"operator": bad, "operator-b": bad}},
		{method: "GET", pattern: "/v1/he/shares", path: static("/v1/he/shares")},
		{method: "GET", pattern: "/v1/he/shares/{session}", path: static("/v1/he/shares/" + strings.Repeat("00", 32)), want: map[string]int{"provider": nf}},
		{method: "POST", pattern: "/v1/jobs/{id}/he/shares", path: static("/v1/jobs/" + relJob + "/he/shares"), body: octets, want: map[string]int{"provider": bad}},
		{method: "POST", pattern: "/v1/he/queries", path: static("/v1/he/queries"), body: jsonBody(map[string]any{"id": "q-m", "grant": grantA, "dataset": "adult", "query": []byte("x")}),
			want: map[string]int{"operator": bad, "operator-b": bad}},
		{method: "GET", pattern: "/v1/he/queries/{id}", path: static("/v1/he/queries/q-m"), want: map[string]int{"operator": nf, "operator-b": nf}},
		{method: "GET", pattern: "/v1/disclosure", path: static("/v1/disclosure")},
		{method: "GET", pattern: "/v1/tokens", path: static("/v1/tokens")},
		{method: "POST", pattern: "/v1/tokens", path: static("/v1/tokens"), body: jsonBody(map[string]string{"role": "public"})},
		{method: "POST", pattern: "/v1/tokens/{id}/revoke", path: func(who string) string {
			if who == "authority" {
				return "/v1/tokens/" + freshToken() + "/revoke"
			}
			return "/v1/tokens/0000000000000000/revoke"
		}},
	}

	routes := map[string]service.Route{}
	for _, r := range service.Routes() {
		routes[r.Method+" "+r.Path] = r
	}
	covered := map[string]bool{}
	for _, c := range cases {
		key := c.method + " " + c.pattern
		rt, ok := routes[key]
		if !ok {
			t.Fatalf("case %s: no such route", key)
		}
		covered[key] = true
		for _, who := range identities {
			want := expected(rt, who, c.want)
			var body io.Reader
			ct := ""
			p := c.path(who)
			if c.body != nil {
				var b []byte
				ct, b = c.body(who)
				body = bytes.NewReader(b)
			}
			req, _ := http.NewRequestWithContext(ctx, c.method, e.url+p, body)
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			if tok := e.tokens[who]; tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%s %s as %s: %d, want %d: %s", c.method, p, who, resp.StatusCode, want, truncate(b))
				continue
			}
			if resp.StatusCode >= 400 {
				var eb struct{ Code, Message string }
				if json.Unmarshal(b, &eb) != nil || eb.Code == "" || eb.Message == "" {
					t.Errorf("%s %s as %s: error body without code and message: %s", c.method, p, who, truncate(b))
				}
				if code := codeFor(resp.StatusCode); code != "" && eb.Code != code {
					t.Errorf("%s %s as %s: code %q, want %q", c.method, p, who, eb.Code, code)
				}
			}
		}
	}
	for key := range routes {
		if !covered[key] {
			t.Errorf("route %s has no row in the matrix", key)
		}
	}
	// Nothing the denied calls tried happened: grant B stands, A's job is released.
	if g, err := auth.Grant(ctx, grantB); err != nil || g.RevokedAt != nil {
		t.Errorf("grant B after the matrix: %+v %v", g, err)
	}
	if j, err := auth.Job(ctx, relJob); err != nil || j.State != client.StateReleased {
		t.Errorf("released job after the matrix: %+v %v", j, err)
	}
}

// expected is the status an identity should get from a route.
func expected(rt service.Route, who string, want map[string]int) int {
	if who == "revoked" {
		return http.StatusUnauthorized
	}
	role := roleOf[who]
	open := slices.Contains(rt.Roles, service.Public)
	if !open && !slices.Contains(rt.Roles, role) {
		if who == "none" {
			return http.StatusUnauthorized
		}
		return http.StatusForbidden
	}
	if w, ok := want[who]; ok {
		return w
	}
	return rt.Status
}

func codeFor(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusNotFound:
		return "not_found"
	}
	return ""
}

func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
