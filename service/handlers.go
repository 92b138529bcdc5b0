package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/report"
	"github.com/covedata/cove/store"
)

// Health is the answer of /healthz.
type Health struct {
	Status  string `json:"status"`
	Queued  int    `json:"queued"`
	Running int    `json:"running"`
	Workers int    `json:"workers"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request, _ principal) error {
	q, run := s.sched.Stats()
	writeJSON(w, http.StatusOK, Health{Status: "ok", Queued: q, Running: run, Workers: s.opt.Workers})
	return nil
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request, p principal) error {
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request, _ principal) error {
	writeJSON(w, http.StatusOK, OpenAPI())
	return nil
}

func (s *Server) metricsText(w http.ResponseWriter, r *http.Request, _ principal) error {
	q, run := s.sched.Stats()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w, q, run)
	return nil
}

// ---- datasets

func (s *Server) listDatasets(w http.ResponseWriter, r *http.Request, _ principal) error {
	ds, err := s.st.Datasets(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nonNil(ds))
	return nil
}

func (s *Server) getDataset(w http.ResponseWriter, r *http.Request, _ principal) error {
	d, err := s.st.Dataset(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// registerDataset enters a dataset whose file the authority or provider put
// in the data directory. Column types, the content hash and the row count
// are read from the file when the request leaves them out, and checked
// against it when it gives them.
func (s *Server) registerDataset(w http.ResponseWriter, r *http.Request, p principal) error {
	var d policy.Dataset
	if err := decodeJSONBody(w, r, s.opt.MaxBodyBytes, &d); err != nil {
		return err
	}
	if p.Role == Provider && d.Provider != p.Subject {
		return fmt.Errorf("%w: a provider registers only datasets whose provider is itself (%s)", errForbidden, p.Subject)
	}
	path, err := s.datasetPath(d.Location)
	if err != nil {
		return err
	}
	schema, err := connectors.ReadSchema(path)
	if err != nil {
		return fmt.Errorf("%w: dataset file %s: %v", cove.ErrInvalid, d.Location, cove.Code(err))
	}
	// The file's columns, in its order, with the request's annotations
	// (role, domain; a type, if given, must match).
	given := map[string]policy.Column{}
	var encrypted []policy.Column
	for _, c := range d.Columns {
		if len(schema.FieldIndices(c.Name)) != 1 {
			// A column of type "encrypted" is not in the public file: a key
			// holder attaches it encrypted (POST /v1/he/columns/...).
			if c.Type == EncryptedColumnType && c.Role != policy.DirectIdentifier {
				encrypted = append(encrypted, c)
				continue
			}
			return fmt.Errorf("%w: column %q is not in the file %s", cove.ErrInvalid, c.Name, d.Location)
		}
		given[c.Name] = c
	}
	d.Columns = d.Columns[:0:0]
	for _, f := range schema.Fields() {
		c, ok := given[f.Name]
		if !ok {
			c = policy.Column{Name: f.Name}
		}
		typ := f.Type.String()
		if c.Type != "" && c.Type != typ {
			return fmt.Errorf("%w: column %q is %s in the file, not %s", cove.ErrInvalid, c.Name, typ, c.Type)
		}
		c.Type = typ
		d.Columns = append(d.Columns, c)
	}
	if len(d.Columns) == 0 {
		return fmt.Errorf("%w: dataset file %s has no columns", cove.ErrInvalid, d.Location)
	}
	d.Columns = append(d.Columns, encrypted...)
	rd, err := connectors.OpenFile(path, connectors.Options{Columns: []string{d.Columns[0].Name}})
	if err != nil {
		return fmt.Errorf("%w: dataset file %s cannot be read", cove.ErrInvalid, d.Location)
	}
	snap := rd.Snapshot()
	rd.Release()
	if d.SHA256 == "" {
		d.SHA256 = snap.SHA256
	} else if d.SHA256 != snap.SHA256 {
		return fmt.Errorf("%w: dataset file %s has sha256 %s, not the %s given", cove.ErrInvalid, d.Location, snap.SHA256, d.SHA256)
	}
	if d.Rows == 0 {
		d.Rows = snap.Rows
	}
	if err := s.runner.RegisterDataset(r.Context(), d); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, d)
	return nil
}

// datasetPath resolves a dataset location inside the data directory.
func (s *Server) datasetPath(loc string) (string, error) {
	clean := filepath.Clean(filepath.FromSlash(loc))
	if loc == "" || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: location must be a path inside the data directory", cove.ErrInvalid)
	}
	path := filepath.Join(s.opt.DataDir, clean)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: no dataset file at %s in the data directory", cove.ErrNotFound, truncate(loc, 200))
	}
	return path, nil
}

func (s *Server) datasetUsage(w http.ResponseWriter, r *http.Request, p principal) error {
	d, err := s.st.Dataset(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if p.Role == Provider && d.Provider != p.Subject {
		return fmt.Errorf("%w: dataset %s", cove.ErrNotFound, d.Name)
	}
	disc, err := s.disclosureReport(r.Context())
	if err != nil {
		return err
	}
	u := report.Usage{Dataset: d.Name}
	for _, x := range disc.Usage {
		if x.Dataset == d.Name {
			u = x
		}
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// ---- grants

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request, p principal) error {
	gs, err := s.st.Grants(r.Context())
	if err != nil {
		return err
	}
	if p.Role == Operator {
		gs = slices.DeleteFunc(gs, func(g store.GrantStatus) bool { return g.Operator != p.Subject })
	}
	writeJSON(w, http.StatusOK, nonNil(gs))
	return nil
}

func (s *Server) grantFor(ctx context.Context, p principal, id string) (store.GrantStatus, error) {
	g, err := s.st.Grant(ctx, id)
	if err != nil {
		return g, err
	}
	if p.Role == Operator && g.Operator != p.Subject {
		return store.GrantStatus{}, fmt.Errorf("%w: grant %s", cove.ErrNotFound, id)
	}
	return g, nil
}

func (s *Server) getGrant(w http.ResponseWriter, r *http.Request, p principal) error {
	g, err := s.grantFor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

func (s *Server) createGrant(w http.ResponseWriter, r *http.Request, p principal) error {
	var g policy.Grant
	if err := decodeJSONBody(w, r, s.opt.MaxBodyBytes, &g); err != nil {
		return err
	}
	if err := s.st.CreateGrant(r.Context(), g); err != nil {
		return err
	}
	gs, err := s.st.Grant(r.Context(), g.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, gs)
	return nil
}

// Revocation is the answer to a grant's revocation.
type Revocation struct {
	Grant     string   `json:"grant"`
	Cancelled []string `json:"cancelled"`
}

func (s *Server) revokeGrant(w http.ResponseWriter, r *http.Request, p principal) error {
	var req ReasonRequest
	if err := decodeBody(s, w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return invalidf("a revocation needs a reason")
	}
	id := r.PathValue("id")
	ids, err := s.runner.Revoke(r.Context(), id, req.Reason)
	if err != nil {
		return err
	}
	for _, j := range ids {
		s.sched.Remove(j)
	}
	s.hub.notify(ids...)
	writeJSON(w, http.StatusOK, Revocation{Grant: id, Cancelled: nonNil(ids)})
	return nil
}

// BudgetView is a grant's budget on one dataset.
type BudgetView struct {
	Dataset string        `json:"dataset"`
	Budget  policy.Budget `json:"budget"`
	Left    float64       `json:"epsilon_left"`
}

func (s *Server) grantBudgets(w http.ResponseWriter, r *http.Request, p principal) error {
	g, err := s.grantFor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	ds, err := s.st.Datasets(r.Context())
	if err != nil {
		return err
	}
	out := []BudgetView{}
	for _, d := range ds {
		if !g.Covers(d) {
			continue
		}
		b, err := s.st.Budget(r.Context(), g.ID, d.Name)
		if err != nil {
			return err
		}
		out = append(out, BudgetView{Dataset: d.Name, Budget: b, Left: b.Left()})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ---- jobs

// JobView is a job as the API shows it.
type JobView struct {
	store.Job
	// QueuePosition is an admitted job's place in the scheduler's queue (1:
	// next); 0 when it is not queued.
	QueuePosition int `json:"queue_position,omitempty"`
}

func (s *Server) view(j store.Job) JobView {
	v := JobView{Job: j}
	if j.State == store.StateAdmitted {
		v.QueuePosition = s.sched.Position(j.ID)
	}
	return v
}

// jobFor returns a job the caller may see: an operator's own, or any for
// the authority. Another operator's job is not found, as an unknown id is.
func (s *Server) jobFor(ctx context.Context, p principal, id string) (store.Job, error) {
	j, err := s.st.Job(ctx, id)
	if err != nil {
		return j, err
	}
	if p.Role == Operator && j.Operator != p.Subject {
		return store.Job{}, fmt.Errorf("%w: job %s", cove.ErrNotFound, id)
	}
	return j, nil
}

func (s *Server) limits() Limits {
	return Limits{MaxModuleBytes: s.opt.MaxModuleBytes, MaxManifestBytes: jobs.MaxManifestBytes}
}

// submission is a decoded submission with its module's bytes and hash.
type submission struct {
	SubmitRequest
	module []byte // the request's module or the stored one named by hash; read-only
	sum    [32]byte
}

// readSubmission decodes a submission and checks its module: the one it
// carries, or the operator's upload it names. The module's bytes are valid
// until done is called.
func (s *Server) readSubmission(w http.ResponseWriter, r *http.Request, p principal) (sub submission, done func(), err error) {
	done = func() {}
	mt, params, err := mediaType(r, "application/json", "multipart/form-data")
	if err != nil {
		return sub, done, err
	}
	l := s.limits()
	release, err := s.moduleSlot(r)
	if err != nil {
		return sub, done, err
	}
	buf := getScratch()
	done = func() { putScratch(buf, l.MaxModuleBytes); release() }
	if mt == "multipart/form-data" {
		presize(buf, r.ContentLength, l.MaxModuleBytes)
	}
	body := http.MaxBytesReader(w, r.Body, l.maxSubmitBody())
	req, err := decodeSubmission(mt, params, body, l, buf)
	if err != nil {
		return sub, done, limitOr2(err)
	}
	sub.SubmitRequest = req
	if req.ModuleSHA256 == "" {
		sub.module, sub.sum = req.Module, req.sum
	} else if sub.sum, sub.module, err = s.uploaded(r.Context(), p, req.ModuleSHA256); err != nil {
		return sub, done, err
	}
	// Compile before anything is recorded: a module that cannot run must
	// not reserve budget. Compilation is cached by module hash.
	return sub, done, s.modules.check(r.Context(), sub.sum, sub.module)
}

// maxModuleReads bounds the request bodies that may carry a module read at
// once: memory for modules in transit is bounded by it, whatever the number
// of clients. A body that cannot hold one (a submission by hash) needs no
// slot.
const maxModuleReads = 4

// moduleSlot waits for a slot to read r's body in, if the body may carry a
// module, and returns its release.
func (s *Server) moduleSlot(r *http.Request) (func(), error) {
	if r.ContentLength >= 0 && r.ContentLength <= 2*jobs.MaxManifestBytes+64<<10 {
		return func() {}, nil
	}
	select {
	case s.moduleReads <- struct{}{}:
		return func() { <-s.moduleReads }, nil
	case <-r.Context().Done():
		return nil, fmt.Errorf("%w: request ended while waiting to be read", cove.ErrCancelled)
	}
}

// uploaded returns the module of this sha256 that the operator uploaded.
func (s *Server) uploaded(ctx context.Context, p principal, hexsum string) ([32]byte, []byte, error) {
	sum, _ := parseSum(hexsum)
	ok, err := s.st.HasModule(ctx, p.Subject, hexsum)
	if err != nil {
		return sum, nil, err
	}
	if !ok {
		// Another operator's upload is as unknown as no upload.
		return sum, nil, fmt.Errorf("%w: module %s was not uploaded by %s (POST /v1/modules)", cove.ErrNotFound, hexsum, p.Subject)
	}
	if b := s.modules.bytes(sum); b != nil {
		return sum, b, nil
	}
	b, err := s.st.Module(ctx, hexsum)
	if err != nil {
		return sum, nil, err
	}
	s.modules.keepBytes(sum, b)
	return sum, b, nil
}

// limitOr2 reports a body cut by MaxBytesReader as ErrLimit.
func limitOr2(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: body over %d bytes", cove.ErrLimit, mbe.Limit)
	}
	return err
}

// uploadModule stores a module (the raw body) for later submissions by
// hash. It is streamed once, hashed on the way, compiled once per hash, and
// stored once whoever uploads it; the upload is the operator's own.
func (s *Server) uploadModule(w http.ResponseWriter, r *http.Request, p principal) error {
	if _, _, err := mediaType(r, "application/wasm", "application/octet-stream"); err != nil {
		return err
	}
	max := s.opt.MaxModuleBytes
	if r.ContentLength > max {
		return fmt.Errorf("%w: module over %d bytes", cove.ErrLimit, max)
	}
	release, err := s.moduleSlot(r)
	if err != nil {
		return err
	}
	defer release()
	buf := getScratch()
	defer putScratch(buf, max)
	presize(buf, r.ContentLength, max)
	h := sha256.New()
	n, err := buf.ReadFrom(io.TeeReader(http.MaxBytesReader(w, r.Body, max), h))
	if err != nil {
		return limitOr(err, "reading the module")
	}
	if n == 0 {
		return invalidf("an upload needs the module's bytes as the body")
	}
	var sum [32]byte
	h.Sum(sum[:0])
	b := buf.Bytes()
	if err := s.modules.check(r.Context(), sum, b); err != nil {
		return err
	}
	hexsum := hexSum(sum)
	if err := s.st.PutModule(r.Context(), p.Subject, hexsum, b); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, ModuleInfo{SHA256: hexsum, Size: n})
	return nil
}

func (s *Server) submitJob(w http.ResponseWriter, r *http.Request, p principal) error {
	req, done, err := s.readSubmission(w, r, p)
	defer done()
	if err != nil {
		return err
	}
	if req.ID == "" {
		req.ID = newJobID()
	}
	fresh := true
	if _, err := s.st.Job(r.Context(), req.ID); err == nil {
		fresh = false
	}
	// The hash is known: the runner need not hash the module again, nor
	// store it again when it was uploaded.
	sub := jobs.Submission{ID: req.ID, Operator: p.Subject, Manifest: []byte(req.Manifest), Module: req.module, ModuleSHA256: hexSum(req.sum)}
	if req.ModuleSHA256 != "" {
		sub.Module = nil
	}
	j, err := s.runner.Submit(r.Context(), sub)
	if err != nil {
		var rej *policy.Rejection
		if errors.As(err, &rej) {
			s.metrics.jobEnded(store.StateRejected, 0)
			return &jobError{job: req.ID, err: err}
		}
		return err
	}
	if j.Operator != p.Subject {
		return fmt.Errorf("%w: job id %s is taken", cove.ErrExists, req.ID)
	}
	if j.State == store.StateAdmitted {
		s.sched.Enqueue(j.Operator, j.ID)
	}
	status := http.StatusCreated
	if !fresh {
		status = http.StatusOK
	}
	writeJSON(w, status, s.view(j))
	return nil
}

func (s *Server) dryRun(w http.ResponseWriter, r *http.Request, p principal) error {
	req, done, err := s.readSubmission(w, r, p)
	defer done()
	if err != nil {
		return err
	}
	// The runner may compile the module into its cache: give it its own copy.
	dec, err := s.runner.DryRun(r.Context(), jobs.Submission{Operator: p.Subject, Manifest: []byte(req.Manifest), Module: bytes.Clone(req.module)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, dec)
	return nil
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, p principal) error {
	f := store.JobFilter{Grant: r.URL.Query().Get("grant")}
	if st := r.URL.Query().Get("state"); st != "" {
		if _, ok := Transitions[st]; !ok {
			return invalidf("unknown state %q", truncate(st, 40))
		}
		f.States = []string{st}
	}
	if p.Role == Operator {
		f.Operator = p.Subject
	}
	js, err := s.st.Jobs(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]JobView, len(js))
	for i, j := range js {
		out[i] = s.view(j)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, p principal) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	var wait time.Duration
	if ws := q.Get("wait"); ws != "" {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 {
			return invalidf("wait must be a duration such as 30s")
		}
		wait = min(d, MaxWait)
	}
	seen := q.Get("state")
	deadline := time.Now().Add(wait)
	for {
		c := s.hub.wait(id)
		j, err := s.jobFor(r.Context(), p, id)
		if err != nil {
			return err
		}
		left := time.Until(deadline)
		if seen == "" || j.State != seen || left <= 0 || r.Context().Err() != nil {
			writeJSON(w, http.StatusOK, s.view(j))
			return nil
		}
		// Every change but admitted → running notifies the hub. That one is
		// made inside the runner, soon after a worker takes the job (which
		// notifies): poll it briefly then; otherwise poll rarely, as a
		// safety net only.
		poll := 2 * time.Second
		if j.State == store.StateAdmitted && s.sched.Taken(id) {
			poll = 10 * time.Millisecond
		}
		ctxWait(r.Context(), c, min(left, poll))
	}
}

func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request, p principal) error {
	j, err := s.jobFor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []Event{}
	for e, err := range s.st.EntriesBySubject(r.Context(), j.ID) {
		if err != nil {
			return err
		}
		if st := stateAfter(e); st != "" {
			out = append(out, Event{Seq: e.Seq, Time: e.Time.Format(time.RFC3339Nano), Kind: string(e.Kind), State: st})
		}
	}
	if j.State == store.StateRunning {
		out = append(out, Event{Time: j.Updated.Format(time.RFC3339Nano), Kind: "job.running", State: store.StateRunning})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, p principal) error {
	var req ReasonRequest
	if err := decodeBody(s, w, r, &req); err != nil {
		return err
	}
	j, err := s.jobFor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	reason := "cancelled by " + string(p.Role)
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	if Final(j.State) {
		return fmt.Errorf("%w: job %s already ended %s", cove.ErrExists, j.ID, j.State)
	}
	if err := s.runner.Cancel(r.Context(), j.ID, reason); err != nil {
		return err
	}
	s.sched.Remove(j.ID)
	s.hub.notify(j.ID)
	s.metrics.jobEnded(store.StateCancelled, 0)
	j, err = s.st.Job(r.Context(), j.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.view(j))
	return nil
}

func (s *Server) jobRelease(w http.ResponseWriter, r *http.Request, p principal) error {
	j, err := s.jobFor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	switch j.State {
	case store.StateReleased:
	case store.StateInReview:
		return fmt.Errorf("%w: job %s", cove.ErrInReview, j.ID)
	default:
		if Final(j.State) {
			return fmt.Errorf("%w: job %s ended %s without a release", cove.ErrNotFound, j.ID, j.State)
		}
		return fmt.Errorf("%w: job %s is %s: no release yet", cove.ErrNotFound, j.ID, j.State)
	}
	body, err := s.st.StoredRelease(r.Context(), j.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(append(body, '\n'))
	return nil
}

// ---- reviews

func (s *Server) listReviews(w http.ResponseWriter, r *http.Request, _ principal) error {
	js, err := s.st.Jobs(r.Context(), store.JobFilter{States: []string{store.StateInReview}})
	if err != nil {
		return err
	}
	out := make([]JobView, len(js))
	for i, j := range js {
		out[i] = s.view(j)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) review(w http.ResponseWriter, r *http.Request, p principal) error {
	var req ReviewRequest
	if err := decodeBody(s, w, r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	reviewer := "authority"
	if p.Subject != "" {
		reviewer = p.Subject
	}
	if err := s.runner.Review(r.Context(), id, req.Approve, reviewer, req.Reason); err != nil {
		return err
	}
	j, err := s.st.Job(r.Context(), id)
	if err != nil {
		return err
	}
	if j.State == store.StateAdmitted {
		s.sched.Enqueue(j.Operator, j.ID)
	}
	s.hub.notify(id)
	writeJSON(w, http.StatusOK, s.view(j))
	return nil
}

// decodeBody decodes a small JSON body; an empty body is the zero value
// where the request type allows it (a cancellation without a reason).
func decodeBody(s *Server, w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
		if _, ok := v.(*ReasonRequest); ok {
			return nil
		}
	}
	if _, _, err := mediaType(r, "application/json"); err != nil {
		return err
	}
	b, err := limitedBody(w, r, s.opt.MaxBodyBytes)
	if err != nil {
		return err
	}
	return DecodeRequest(b, v)
}

// ---- ledger

func queryUint(r *http.Request, name string, def uint64) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, invalidf("%s must be a non-negative integer", name)
	}
	return n, nil
}

const maxEntries = 10000

func (s *Server) ledgerEntries(w http.ResponseWriter, r *http.Request, _ principal) error {
	from, err := queryUint(r, "from", 1)
	if err != nil {
		return err
	}
	limit, err := queryUint(r, "limit", maxEntries)
	if err != nil {
		return err
	}
	limit = min(max(limit, 1), maxEntries)
	out := []ledger.Entry{}
	for e, err := range s.st.EntriesFrom(r.Context(), from, limit) {
		if err != nil {
			return err
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ExportHeader is the first line of a ledger export (cove ledger export).
type ExportHeader struct {
	Format      string `json:"format"`
	VerifierKey string `json:"verifier_key"`
	Checkpoint  string `json:"checkpoint"`
}

func (s *Server) ledgerExport(w http.ResponseWriter, r *http.Request, _ principal) error {
	cp, err := s.st.Checkpoint(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	if err := enc.Encode(ExportHeader{Format: "cove-ledger-export/1", VerifierKey: s.st.VerifierKey(), Checkpoint: string(cp.Note)}); err != nil {
		return nil
	}
	for e, err := range s.st.Entries(r.Context()) {
		if err != nil {
			// Headers are gone: end the stream short; the verifier sees a
			// log that does not match the checkpoint.
			s.log.Error("ledger export", "err", err)
			return nil
		}
		if err := enc.Encode(e); err != nil {
			return nil
		}
	}
	return nil
}

// VerifierKey is the ledger's public key.
type VerifierKey struct {
	Key string `json:"key"`
}

func (s *Server) ledgerKey(w http.ResponseWriter, r *http.Request, _ principal) error {
	writeJSON(w, http.StatusOK, VerifierKey{Key: s.st.VerifierKey()})
	return nil
}

// CheckpointView is a signed checkpoint.
type CheckpointView struct {
	Size uint64 `json:"size"`
	Hash string `json:"hash"`
	Note string `json:"note"` // the signed note, byte for byte
}

func cpView(cp ledger.Checkpoint) CheckpointView {
	return CheckpointView{Size: cp.Size, Hash: cp.Hash.String(), Note: string(cp.Note)}
}

func (s *Server) listCheckpoints(w http.ResponseWriter, r *http.Request, _ principal) error {
	cps, err := s.st.Checkpoints(r.Context())
	if err != nil {
		return err
	}
	out := make([]CheckpointView, len(cps))
	for i, cp := range cps {
		out[i] = cpView(cp)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) latestCheckpoint(w http.ResponseWriter, r *http.Request, _ principal) error {
	cp, err := s.st.LatestCheckpoint(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cpView(cp))
	return nil
}

func (s *Server) signCheckpoint(w http.ResponseWriter, r *http.Request, _ principal) error {
	cp, err := s.st.Checkpoint(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cpView(cp))
	return nil
}

// checkpointOf returns the stored checkpoint of a size, or the latest one
// (size 0), signing one if none covers need yet.
func (s *Server) checkpointOf(ctx context.Context, size, need uint64) (ledger.Checkpoint, error) {
	if size == 0 {
		cp, err := s.st.LatestCheckpoint(ctx)
		if errors.Is(err, cove.ErrNotFound) || err == nil && cp.Size < need {
			cp, err = s.st.Checkpoint(ctx)
		}
		return cp, err
	}
	cps, err := s.st.Checkpoints(ctx)
	if err != nil {
		return ledger.Checkpoint{}, err
	}
	for _, cp := range cps {
		if cp.Size == size {
			return cp, nil
		}
	}
	return ledger.Checkpoint{}, fmt.Errorf("%w: no stored checkpoint of size %d", cove.ErrNotFound, size)
}

// publicKinds are the entries the disclosure report makes public anyway.
var publicKinds = []ledger.Kind{ledger.DatasetRegistered, ledger.GrantCreated, ledger.GrantRevoked}

// canSee reports whether p may read entry e: the authority any; an
// operator those of its own jobs and grants and the public ones; everyone
// else the public ones.
func (s *Server) canSee(ctx context.Context, p principal, e ledger.Entry) bool {
	if p.Role == Authority || slices.Contains(publicKinds, e.Kind) {
		return true
	}
	if p.Role != Operator {
		return false
	}
	if j, err := s.st.Job(ctx, e.Subject); err == nil {
		return j.Operator == p.Subject
	}
	if g, err := s.st.Grant(ctx, e.Subject); err == nil {
		return g.Operator == p.Subject
	}
	return false
}

func (s *Server) inclusionProof(w http.ResponseWriter, r *http.Request, p principal) error {
	seq, err := queryUint(r, "seq", 0)
	if err != nil {
		return err
	}
	if seq == 0 {
		return invalidf("give seq, the entry to prove")
	}
	size, err := queryUint(r, "size", 0)
	if err != nil {
		return err
	}
	e, err := s.st.Entry(r.Context(), seq)
	if err != nil {
		return err
	}
	if !s.canSee(r.Context(), p, e) {
		// As if absent: which entries exist beyond the public ones is
		// the caller's business only through checkpoints.
		return fmt.Errorf("%w: ledger entry %d", cove.ErrNotFound, seq)
	}
	cp, err := s.checkpointOf(r.Context(), size, seq)
	if err != nil {
		return err
	}
	if cp.Size < seq {
		return invalidf("checkpoint %d does not cover entry %d", cp.Size, seq)
	}
	proof, err := s.st.ProveEntry(r.Context(), seq, cp)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, proof)
	return nil
}

func (s *Server) consistencyProof(w http.ResponseWriter, r *http.Request, _ principal) error {
	oldSize, err := queryUint(r, "old", 0)
	if err != nil {
		return err
	}
	newSize, err := queryUint(r, "new", 0)
	if err != nil {
		return err
	}
	if oldSize == 0 {
		return invalidf("give old, a stored checkpoint's size")
	}
	older, err := s.checkpointOf(r.Context(), oldSize, 0)
	if err != nil {
		return err
	}
	newer, err := s.checkpointOf(r.Context(), newSize, oldSize)
	if err != nil {
		return err
	}
	if newer.Size < older.Size {
		return invalidf("checkpoint %d is older than %d", newer.Size, older.Size)
	}
	proof, err := s.st.ProveConsistency(r.Context(), older, newer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, proof)
	return nil
}

// ---- reports

func (s *Server) statements(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	month := q.Get("month")
	if month == "" {
		month = s.st.Now().UTC().Format("2006-01")
	}
	op := q.Get("operator")
	if p.Role == Operator {
		if op != "" && op != p.Subject {
			return fmt.Errorf("%w: an operator reads only its own statements", errForbidden)
		}
		op = p.Subject
	}
	h, err := s.ledger.head(r.Context())
	if err != nil {
		return err
	}
	sts, err := report.Statements(s.ledger.entries(r.Context(), h), *s.opt.Prices, month, op, s.st.Now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nonNil(sts))
	return nil
}

func (s *Server) disclosureReport(ctx context.Context) (*report.Disclosure, error) {
	return s.ledger.disclosure(ctx, s.st.Now)
}

func (s *Server) disclosure(w http.ResponseWriter, r *http.Request, _ principal) error {
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "html" {
		return invalidf("format must be json or html")
	}
	d, err := s.disclosureReport(r.Context())
	if err != nil {
		return err
	}
	if format == "html" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		return d.WriteHTML(w)
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// ---- tokens

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ principal) error {
	ts, err := s.tokens.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ts)
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, _ principal) error {
	var req TokenRequest
	if err := decodeBody(s, w, r, &req); err != nil {
		return err
	}
	tok, info, err := s.tokens.Create(r.Context(), req.Role, req.Subject, req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, TokenResponse{Token: tok, Info: info})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, _ principal) error {
	id := r.PathValue("id")
	if err := s.tokens.Revoke(r.Context(), id); err != nil {
		return err
	}
	info, _, err := s.tokens.get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func newJobID() string {
	var b [8]byte
	rand.Read(b[:])
	return "job-" + hex.EncodeToString(b[:])
}

var _ io.Writer = (*statusWriter)(nil)
