package service

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/covedata/cove"
)

// route is one endpoint: its pattern, who may call it, and its handler.
// The OpenAPI document is built from the same table (openapi.go).
type route struct {
	method, path string
	roles        []Role // Public in the list: anyone, with or without a token
	summary      string
	query        []param
	body         string // request schema ("" none); "Submission" is JSON or multipart, "Module" raw bytes
	resp         string // response schema
	status       int    // success status (200 when 0)
	handle       func(s *Server, w http.ResponseWriter, r *http.Request, p principal) error
}

type param struct{ name, typ, desc string }

var (
	anyone     = []Role{Public, Operator, Provider, Authority}
	authority  = []Role{Authority}
	operators  = []Role{Operator}
	supervised = []Role{Authority, Operator} // operators see only their own
	catalog    = []Role{Authority, Provider, Operator}
)

// routeTable lists every endpoint of the API.
func routeTable() []route {
	return append(baseRoutes(), heRoutes()...)
}

func baseRoutes() []route {
	return []route{
		{method: "GET", path: "/healthz", roles: anyone, summary: "Liveness and readiness", resp: "Health", handle: (*Server).health},
		{method: "GET", path: "/openapi.json", roles: anyone, summary: "This API's OpenAPI 3 document", resp: "Object", handle: (*Server).openapi},
		{method: "GET", path: "/metrics", roles: authority, summary: "Prometheus metrics (text exposition format)", resp: "Text", handle: (*Server).metricsText},
		{method: "GET", path: "/v1/whoami", roles: anyone, summary: "The caller's role and subject", resp: "Principal", handle: (*Server).whoami},

		{method: "GET", path: "/v1/datasets", roles: catalog, summary: "The catalog", resp: "DatasetList", handle: (*Server).listDatasets},
		{method: "POST", path: "/v1/datasets", roles: []Role{Authority, Provider}, summary: "Register a dataset whose file is in the data directory (a provider registers only its own)", body: "Dataset", resp: "Dataset", status: 201, handle: (*Server).registerDataset},
		{method: "GET", path: "/v1/datasets/{name}", roles: catalog, summary: "One catalog entry", resp: "Dataset", handle: (*Server).getDataset},
		{method: "GET", path: "/v1/datasets/{name}/usage", roles: []Role{Authority, Provider}, summary: "A dataset's usage, from the ledger (a provider: its own datasets)", resp: "Usage", handle: (*Server).datasetUsage},

		{method: "GET", path: "/v1/grants", roles: supervised, summary: "Grants (an operator: its own)", resp: "GrantList", handle: (*Server).listGrants},
		{method: "POST", path: "/v1/grants", roles: authority, summary: "Create a grant", body: "Grant", resp: "Grant", status: 201, handle: (*Server).createGrant},
		{method: "GET", path: "/v1/grants/{id}", roles: supervised, summary: "One grant", resp: "Grant", handle: (*Server).getGrant},
		{method: "POST", path: "/v1/grants/{id}/revoke", roles: authority, summary: "Revoke a grant; its jobs are cancelled, refunded, and stopped if running", body: "Reason", resp: "Revocation", handle: (*Server).revokeGrant},
		{method: "GET", path: "/v1/grants/{id}/budgets", roles: supervised, summary: "The grant's budget per dataset in the current period", resp: "BudgetList", handle: (*Server).grantBudgets},

		{method: "POST", path: "/v1/modules", roles: operators, summary: "Upload a job module (the WebAssembly bytes as the body), checked and stored once; submissions then name it by module_sha256", body: "Module", resp: "ModuleInfo", status: 201, handle: (*Server).uploadModule},
		{method: "POST", path: "/v1/jobs", roles: operators, summary: "Submit a job (manifest, and module or module_sha256): admitted and queued, in review, or rejected with every violation", body: "Submission", resp: "Job", status: 201, handle: (*Server).submitJob},
		{method: "POST", path: "/v1/jobs/dry-run", roles: operators, summary: "What a submission would get, without recording anything", body: "Submission", resp: "Decision", handle: (*Server).dryRun},
		{method: "GET", path: "/v1/jobs", roles: supervised, summary: "Jobs (an operator: its own)", query: []param{{"state", "string", "only jobs in this state"}, {"grant", "string", "only jobs of this grant"}}, resp: "JobList", handle: (*Server).listJobs},
		{method: "GET", path: "/v1/jobs/{id}", roles: supervised, summary: "A job's status; with wait and state, a long poll until it leaves that state", query: []param{{"wait", "string", "longest wait, a Go duration up to 60s"}, {"state", "string", "the state the caller saw last"}}, resp: "Job", handle: (*Server).getJob},
		{method: "GET", path: "/v1/jobs/{id}/events", roles: supervised, summary: "A job's steps, from the ledger", resp: "EventList", handle: (*Server).jobEvents},
		{method: "POST", path: "/v1/jobs/{id}/cancel", roles: supervised, summary: "Cancel a job, refunded; a running job is stopped", body: "Reason", resp: "Job", handle: (*Server).cancelJob},
		{method: "GET", path: "/v1/jobs/{id}/release", roles: supervised, summary: "A released job's result", resp: "Release", handle: (*Server).jobRelease},

		{method: "GET", path: "/v1/reviews", roles: authority, summary: "Jobs waiting for review", resp: "JobList", handle: (*Server).listReviews},
		{method: "POST", path: "/v1/reviews/{id}", roles: authority, summary: "Approve (the job is queued) or reject (refunded) a job in review", body: "Review", resp: "Job", handle: (*Server).review},

		{method: "GET", path: "/v1/ledger/entries", roles: authority, summary: "Ledger entries in order", query: []param{{"from", "integer", "first sequence number (default 1)"}, {"limit", "integer", "at most this many (default and maximum 10000)"}}, resp: "EntryList", handle: (*Server).ledgerEntries},
		{method: "GET", path: "/v1/ledger/export", roles: authority, summary: "The whole ledger as a verifiable export (JSON lines: header, then entries)", resp: "Text", handle: (*Server).ledgerExport},
		{method: "GET", path: "/v1/ledger/key", roles: anyone, summary: "The ledger's verifier key", resp: "VerifierKey", handle: (*Server).ledgerKey},
		{method: "GET", path: "/v1/ledger/checkpoints", roles: anyone, summary: "Every signed checkpoint", resp: "CheckpointList", handle: (*Server).listCheckpoints},
		{method: "POST", path: "/v1/ledger/checkpoints", roles: authority, summary: "Sign a checkpoint of the current tree head", resp: "Checkpoint", handle: (*Server).signCheckpoint},
		{method: "GET", path: "/v1/ledger/checkpoints/latest", roles: anyone, summary: "The latest signed checkpoint", resp: "Checkpoint", handle: (*Server).latestCheckpoint},
		{method: "GET", path: "/v1/ledger/proofs/inclusion", roles: anyone, summary: "Inclusion proof of an entry the caller may see (the public: registrations and grants)", query: []param{{"seq", "integer", "the entry"}, {"size", "integer", "a stored checkpoint's size (default: the latest)"}}, resp: "InclusionProof", handle: (*Server).inclusionProof},
		{method: "GET", path: "/v1/ledger/proofs/consistency", roles: anyone, summary: "Consistency proof between two stored checkpoints", query: []param{{"old", "integer", "older checkpoint's size"}, {"new", "integer", "newer checkpoint's size (default: the latest)"}}, resp: "ConsistencyProof", handle: (*Server).consistencyProof},

		{method: "GET", path: "/v1/statements", roles: supervised, summary: "Priced statements of a month (an operator: its own)", query: []param{{"month", "string", "YYYY-MM (default: this month)"}, {"operator", "string", "one operator (authority only)"}}, resp: "StatementList", handle: (*Server).statements},
		{method: "GET", path: "/v1/disclosure", roles: anyone, summary: "The disclosure report (art. 32), from the verified ledger", query: []param{{"format", "string", "json (default) or html"}}, resp: "Disclosure", handle: (*Server).disclosure},

		{method: "GET", path: "/v1/tokens", roles: authority, summary: "Issued tokens (never the tokens themselves)", resp: "TokenList", handle: (*Server).listTokens},
		{method: "POST", path: "/v1/tokens", roles: authority, summary: "Issue a token (shown once)", body: "TokenRequest", resp: "TokenResponse", status: 201, handle: (*Server).createToken},
		{method: "POST", path: "/v1/tokens/{id}/revoke", roles: authority, summary: "Revoke a token", resp: "TokenInfo", handle: (*Server).revokeToken},
	}
}

// principal is who calls.
type principal struct {
	Role      Role   `json:"role"`
	Subject   string `json:"subject,omitempty"`
	TokenID   string `json:"token_id,omitempty"`
	Anonymous bool   `json:"anonymous"`
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	for _, rt := range routeTable() {
		pattern := rt.method + " " + rt.path
		s.mux.Handle(pattern, s.wrap(rt))
		s.registered = append(s.registered, pattern)
	}
}

// Registered returns the patterns the server registered ("GET /v1/jobs").
func (s *Server) Registered() []string { return slices.Clone(s.registered) }

// serveHTTP answers unknown paths and methods with JSON errors, counts every
// request, and hands the rest to the mux.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: 200}
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		pattern = "unmatched"
		s.unmatched(sw, r)
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	s.metrics.request(pattern, sw.status, time.Since(t0))
}

// unmatched answers a request no route takes: 405 with Allow when the path
// exists under other methods, else 404.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, withStatus(http.StatusMethodNotAllowed, invalidf("method %s is not allowed here; use %s", r.Method, strings.Join(allow, ", "))))
		return
	}
	s.writeError(w, r, fmt.Errorf("%w: no route %s", cove.ErrNotFound, truncate(r.URL.Path, 200)))
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// wrap authenticates, checks the route's roles, and turns a handler's error
// into an error answer.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil {
			err = allowed(rt, p)
		}
		if err == nil {
			err = rt.handle(s, w, r, p)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) authenticate(r *http.Request) (principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return principal{Role: Public, Anonymous: true}, nil
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return principal{}, fmt.Errorf("%w: Authorization must be \"Bearer <token>\"", errUnauthenticated)
	}
	info, err := s.tokens.Check(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		return principal{}, err
	}
	return principal{Role: info.Role, Subject: info.Subject, TokenID: info.ID}, nil
}

func allowed(rt route, p principal) error {
	if slices.Contains(rt.roles, Public) || slices.Contains(rt.roles, p.Role) {
		return nil
	}
	if p.Anonymous {
		return fmt.Errorf("%w: %s %s needs a token", errUnauthenticated, rt.method, rt.path)
	}
	return fmt.Errorf("%w: role %s may not call %s %s", errForbidden, p.Role, rt.method, rt.path)
}

// ctxWait sleeps until d passes, c closes or ctx ends.
func ctxWait(ctx context.Context, c <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c:
	case <-t.C:
	case <-ctx.Done():
	}
}
