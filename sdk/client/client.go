package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxResponse bounds what the client reads of one answer.
const maxResponse = 256 << 20

// Client calls one Cove server. Safe for concurrent use.
type Client struct {
	base   *url.URL
	token  string
	hc     *http.Client
	poll   time.Duration
	inline bool // send modules inside submissions, never upload them

	mu        sync.Mutex
	uploaded  map[[32]byte]*upload // by module sha256
	noUploads bool                 // the server has no POST /v1/modules
}

// upload is one module's upload, shared by the submissions that wait for it.
type upload struct {
	done chan struct{}
	err  error
}

// Option configures a Client.
type Option func(*Client)

// WithToken sets the bearer token; without one the client is the public.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sets the HTTP client (TLS roots, proxies, timeouts).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithPollWait sets how long one long poll of a wait may last (default 30 s).
func WithPollWait(d time.Duration) Option { return func(c *Client) { c.poll = d } }

// WithInlineModules sends each submission's module with it instead of
// uploading it once and naming it by hash.
func WithInlineModules() Option { return func(c *Client) { c.inline = true } }

// New returns a client of the server at baseURL ("https://host:port").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q must be http(s)://host[:port]", baseURL)
	}
	c := &Client{base: u, hc: http.DefaultClient, poll: 30 * time.Second, uploaded: map[[32]byte]*upload{}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// do sends a request and decodes a JSON answer into out (unless nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string, out any) error {
	resp, err := c.send(ctx, method, path, query, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
		return err
	}
	if raw, ok := out.(*[]byte); ok {
		*raw, err = io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		return err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
		return fmt.Errorf("client: decoding %s %s: %w", method, path, err)
	}
	return nil
}

// send sends a request; an error answer becomes an *Error.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if pl, ok := body.(*payload); ok {
		req.ContentLength = pl.n
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(pl.fresh()), nil }
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &Error{Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, e) != nil || e.Code == "" {
		e.Code, e.Message = "internal", fmt.Sprintf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	return nil, e
}

func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, query, nil, "", out)
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	return c.do(ctx, http.MethodPost, path, nil, body, ct, out)
}

func esc(s string) string { return url.PathEscape(s) }

// Health reports the service's state.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.get(ctx, "/healthz", nil, &h)
}

// WhoAmI returns the token's role and subject.
func (c *Client) WhoAmI(ctx context.Context) (Principal, error) {
	var p Principal
	return p, c.get(ctx, "/v1/whoami", nil, &p)
}

// Datasets lists the catalog.
func (c *Client) Datasets(ctx context.Context) ([]Dataset, error) {
	var ds []Dataset
	return ds, c.get(ctx, "/v1/datasets", nil, &ds)
}

// Dataset returns a catalog entry.
func (c *Client) Dataset(ctx context.Context, name string) (Dataset, error) {
	var d Dataset
	return d, c.get(ctx, "/v1/datasets/"+esc(name), nil, &d)
}

// RegisterDataset registers a dataset whose file is in the server's data
// directory at d.Location; column types, hash and rows may be left out.
func (c *Client) RegisterDataset(ctx context.Context, d Dataset) (Dataset, error) {
	var out Dataset
	return out, c.post(ctx, "/v1/datasets", d, &out)
}

// DatasetUsage returns a dataset's usage.
func (c *Client) DatasetUsage(ctx context.Context, name string) (Usage, error) {
	var u Usage
	return u, c.get(ctx, "/v1/datasets/"+esc(name)+"/usage", nil, &u)
}

// Grants lists the grants the caller may see.
func (c *Client) Grants(ctx context.Context) ([]Grant, error) {
	var gs []Grant
	return gs, c.get(ctx, "/v1/grants", nil, &gs)
}

// Grant returns a grant.
func (c *Client) Grant(ctx context.Context, id string) (Grant, error) {
	var g Grant
	return g, c.get(ctx, "/v1/grants/"+esc(id), nil, &g)
}

// CreateGrant creates a grant (authority).
func (c *Client) CreateGrant(ctx context.Context, g Grant) (Grant, error) {
	var out Grant
	return out, c.post(ctx, "/v1/grants", g, &out)
}

// RevokeGrant revokes a grant (authority); its jobs are cancelled.
func (c *Client) RevokeGrant(ctx context.Context, id, reason string) (Revocation, error) {
	var out Revocation
	return out, c.post(ctx, "/v1/grants/"+esc(id)+"/revoke", map[string]string{"reason": reason}, &out)
}

// Budgets returns a grant's budget per dataset.
func (c *Client) Budgets(ctx context.Context, grant string) ([]Budget, error) {
	var out []Budget
	return out, c.get(ctx, "/v1/grants/"+esc(grant)+"/budgets", nil, &out)
}

// UploadModule uploads a job module (operator): the server checks that it
// compiles and keeps it, and submissions name it by the sha256 returned.
// Uploading the same module again is harmless. Submit uploads a
// submission's module by itself, once per Client.
func (c *Client) UploadModule(ctx context.Context, module []byte) (ModuleInfo, error) {
	var m ModuleInfo
	return m, c.do(ctx, http.MethodPost, "/v1/modules", nil, bytes.NewReader(module), "application/wasm", &m)
}

// ensureUploaded uploads module, whose sha256 is sum, once per client
// (concurrent submissions of it wait for one upload). It returns
// errNoUploads when the server takes no uploads.
func (c *Client) ensureUploaded(ctx context.Context, module []byte, sum [32]byte) error {
	for {
		c.mu.Lock()
		if c.noUploads {
			c.mu.Unlock()
			return errNoUploads
		}
		u, ok := c.uploaded[sum]
		if !ok {
			u = &upload{done: make(chan struct{})}
			c.uploaded[sum] = u
			c.mu.Unlock()
			_, u.err = c.UploadModule(ctx, module)
			c.mu.Lock()
			var ae *Error
			if errors.As(u.err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusMethodNotAllowed) {
				c.noUploads, u.err = true, errNoUploads // a server of before uploads
			}
			if u.err != nil {
				delete(c.uploaded, sum) // the next submission tries again
			}
			c.mu.Unlock()
			close(u.done)
			return u.err
		}
		c.mu.Unlock()
		select {
		case <-u.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if u.err == nil {
			return nil
		}
		// The upload this call waited for failed (perhaps for its caller's
		// context): try again.
		if errors.Is(u.err, errNoUploads) {
			return u.err
		}
		var ae *Error
		if errors.As(u.err, &ae) {
			return u.err // the server refused the module itself
		}
	}
}

var errNoUploads = errors.New("client: the server takes no module uploads")

// forget drops a module from the uploaded ones (the server does not know it).
func (c *Client) forget(sum [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.uploaded[sum]; ok {
		select {
		case <-u.done:
			delete(c.uploaded, sum)
		default:
		}
	}
}

// submitRef is a submission naming an uploaded module.
type submitRef struct {
	ID           string `json:"id,omitempty"`
	Manifest     string `json:"manifest"`
	ModuleSHA256 string `json:"module_sha256,omitempty"`
}

// submit posts a submission to path: by reference to an uploaded module
// when it can, else with the module inline.
func (c *Client) submit(ctx context.Context, path string, sub Submission, out any) error {
	ref := submitRef{ID: sub.ID, Manifest: string(sub.Manifest), ModuleSHA256: sub.ModuleSHA256}
	if sub.Module == nil || c.inline {
		if sub.Module == nil {
			// By reference, or a plan written in the manifest: no module.
			return c.post(ctx, path, ref, out)
		}
		body, ct := multipartBody(sub)
		return c.do(ctx, http.MethodPost, path, nil, body, ct, out)
	}
	sum := sha256.Sum256(sub.Module)
	ref.ModuleSHA256 = hex.EncodeToString(sum[:])
	for attempt := 0; ; attempt++ {
		err := c.ensureUploaded(ctx, sub.Module, sum)
		if errors.Is(err, errNoUploads) {
			body, ct := multipartBody(sub)
			return c.do(ctx, http.MethodPost, path, nil, body, ct, out)
		}
		if err != nil {
			return err
		}
		err = c.post(ctx, path, ref, out)
		var ae *Error
		if attempt == 0 && errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Code == "not_found" {
			// The server lost the upload (another data directory): once more.
			c.forget(sum)
			continue
		}
		return err
	}
}

// multipartBody frames a submission as multipart/form-data without copying
// the module: it is the last part, sent from the caller's slice.
func multipartBody(sub Submission) (*payload, string) {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	if sub.ID != "" {
		mw.WriteField("id", sub.ID) // writes to a bytes.Buffer do not fail
	}
	w, _ := mw.CreateFormFile("manifest", "manifest.yaml")
	w.Write(sub.Manifest)
	if sub.Module == nil {
		mw.WriteField("module_sha256", sub.ModuleSHA256)
		mw.Close()
		return newPayload(head.Bytes()), mw.FormDataContentType()
	}
	mw.CreateFormFile("module", "job.wasm")
	pre := bytes.Clone(head.Bytes())
	head.Reset()
	mw.Close()
	return newPayload(pre, sub.Module, head.Bytes()), mw.FormDataContentType()
}

// payload is a request body of byte slices sent in turn, none copied.
type payload struct {
	parts [][]byte
	n     int64
	r     io.Reader
}

func newPayload(parts ...[]byte) *payload {
	p := &payload{parts: parts}
	for _, b := range parts {
		p.n += int64(len(b))
	}
	p.r = p.fresh()
	return p
}

func (p *payload) fresh() io.Reader {
	rs := make([]io.Reader, len(p.parts))
	for i, b := range p.parts {
		rs[i] = bytes.NewReader(b)
	}
	return io.MultiReader(rs...)
}

func (p *payload) Read(b []byte) (int, error) { return p.r.Read(b) }

// Submit submits a job (operator). A rejected job is an *Error whose
// Violations list every reason and whose Job is the rejected job's id.
// The module is uploaded once per Client and then named by its hash; a
// server without uploads gets it inline.
func (c *Client) Submit(ctx context.Context, sub Submission) (Job, error) {
	var j Job
	return j, c.submit(ctx, "/v1/jobs", sub, &j)
}

// DryRun answers what Submit would, recording nothing.
func (c *Client) DryRun(ctx context.Context, sub Submission) (Decision, error) {
	var d Decision
	return d, c.submit(ctx, "/v1/jobs/dry-run", sub, &d)
}

// Jobs lists the jobs the caller may see.
func (c *Client) Jobs(ctx context.Context, f JobFilter) ([]Job, error) {
	q := url.Values{}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Grant != "" {
		q.Set("grant", f.Grant)
	}
	var js []Job
	return js, c.get(ctx, "/v1/jobs", q, &js)
}

// Job returns a job's status.
func (c *Client) Job(ctx context.Context, id string) (Job, error) {
	var j Job
	return j, c.get(ctx, "/v1/jobs/"+esc(id), nil, &j)
}

// JobChange waits up to wait for job id to leave state seen, and returns it.
func (c *Client) JobChange(ctx context.Context, id, seen string, wait time.Duration) (Job, error) {
	var j Job
	q := url.Values{"state": {seen}, "wait": {wait.String()}}
	return j, c.get(ctx, "/v1/jobs/"+esc(id), q, &j)
}

// Events returns a job's steps.
func (c *Client) Events(ctx context.Context, id string) ([]Event, error) {
	var es []Event
	return es, c.get(ctx, "/v1/jobs/"+esc(id)+"/events", nil, &es)
}

// Cancel cancels a job, refunded.
func (c *Client) Cancel(ctx context.Context, id, reason string) (Job, error) {
	var j Job
	return j, c.post(ctx, "/v1/jobs/"+esc(id)+"/cancel", map[string]string{"reason": reason}, &j)
}

// Release returns a released job's result.
func (c *Client) Release(ctx context.Context, id string) (*Release, error) {
	var r Release
	if err := c.get(ctx, "/v1/jobs/"+esc(id)+"/release", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Wait long-polls job id until it ends, calling progress (if not nil) with
// each state it sees, the first included. It returns the ended job; ending
// without a release is not an error here (see SubmitAndWait). A job in
// review is waited for too: bound the wait with ctx.
func (c *Client) Wait(ctx context.Context, id string, progress func(Job)) (Job, error) {
	j, err := c.Job(ctx, id)
	if err != nil {
		return j, err
	}
	return c.wait(ctx, j, progress)
}

// wait is Wait from a job as last seen.
func (c *Client) wait(ctx context.Context, j Job, progress func(Job)) (Job, error) {
	id := j.ID
	var err error
	for err == nil {
		if progress != nil {
			progress(j)
		}
		if Final(j.State) {
			return j, nil
		}
		seen := j.State
		for err == nil && j.State == seen {
			j, err = c.JobChange(ctx, id, seen, c.poll)
		}
	}
	return j, err
}

// SubmitAndWait submits a job, waits for its end and returns its release.
// A job that ends without one is a *JobError.
func (c *Client) SubmitAndWait(ctx context.Context, sub Submission, progress func(Job)) (*Release, error) {
	j, err := c.Submit(ctx, sub)
	if err != nil {
		return nil, err
	}
	// The submission's answer is the job's first state: no need to ask.
	if j, err = c.wait(ctx, j, progress); err != nil {
		return nil, err
	}
	if j.State != StateReleased {
		return nil, &JobError{Job: j}
	}
	return c.Release(ctx, j.ID)
}

// Reviews lists jobs waiting for review (authority).
func (c *Client) Reviews(ctx context.Context) ([]Job, error) {
	var js []Job
	return js, c.get(ctx, "/v1/reviews", nil, &js)
}

// Review approves or rejects a job in review (authority).
func (c *Client) Review(ctx context.Context, id string, approve bool, reason string) (Job, error) {
	var j Job
	return j, c.post(ctx, "/v1/reviews/"+esc(id), map[string]any{"approve": approve, "reason": reason}, &j)
}

// LedgerEntries returns up to limit entries from sequence number from
// (authority).
func (c *Client) LedgerEntries(ctx context.Context, from, limit uint64) ([]Entry, error) {
	q := url.Values{}
	if from > 0 {
		q.Set("from", strconv.FormatUint(from, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.FormatUint(limit, 10))
	}
	var es []Entry
	return es, c.get(ctx, "/v1/ledger/entries", q, &es)
}

// LedgerExport copies the ledger's verifiable export to w (authority).
func (c *Client) LedgerExport(ctx context.Context, w io.Writer) error {
	resp, err := c.send(ctx, http.MethodGet, "/v1/ledger/export", nil, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// VerifierKey returns the ledger's verifier key.
func (c *Client) VerifierKey(ctx context.Context) (string, error) {
	var k struct {
		Key string `json:"key"`
	}
	return k.Key, c.get(ctx, "/v1/ledger/key", nil, &k)
}

// Checkpoints lists the signed checkpoints.
func (c *Client) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	var cps []Checkpoint
	return cps, c.get(ctx, "/v1/ledger/checkpoints", nil, &cps)
}

// LatestCheckpoint returns the latest signed checkpoint.
func (c *Client) LatestCheckpoint(ctx context.Context) (Checkpoint, error) {
	var cp Checkpoint
	return cp, c.get(ctx, "/v1/ledger/checkpoints/latest", nil, &cp)
}

// SignCheckpoint signs a checkpoint of the current head (authority).
func (c *Client) SignCheckpoint(ctx context.Context) (Checkpoint, error) {
	var cp Checkpoint
	return cp, c.post(ctx, "/v1/ledger/checkpoints", nil, &cp)
}

// InclusionProof proves entry seq against the checkpoint of size (0: the
// latest).
func (c *Client) InclusionProof(ctx context.Context, seq, size uint64) (InclusionProof, error) {
	q := url.Values{"seq": {strconv.FormatUint(seq, 10)}}
	if size > 0 {
		q.Set("size", strconv.FormatUint(size, 10))
	}
	var p InclusionProof
	return p, c.get(ctx, "/v1/ledger/proofs/inclusion", q, &p)
}

// ConsistencyProof proves the checkpoint of size newSize (0: the latest)
// extends that of oldSize.
func (c *Client) ConsistencyProof(ctx context.Context, oldSize, newSize uint64) (ConsistencyProof, error) {
	q := url.Values{"old": {strconv.FormatUint(oldSize, 10)}}
	if newSize > 0 {
		q.Set("new", strconv.FormatUint(newSize, 10))
	}
	var p ConsistencyProof
	return p, c.get(ctx, "/v1/ledger/proofs/consistency", q, &p)
}

// Statements returns the priced statements of month (YYYY-MM; "" this
// month); an operator gets its own.
func (c *Client) Statements(ctx context.Context, month, operator string) ([]Statement, error) {
	q := url.Values{}
	if month != "" {
		q.Set("month", month)
	}
	if operator != "" {
		q.Set("operator", operator)
	}
	var out []Statement
	return out, c.get(ctx, "/v1/statements", q, &out)
}

// Disclosure returns the disclosure report.
func (c *Client) Disclosure(ctx context.Context) (*Disclosure, error) {
	var d Disclosure
	if err := c.get(ctx, "/v1/disclosure", nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DisclosureHTML returns the disclosure report as an HTML page.
func (c *Client) DisclosureHTML(ctx context.Context) ([]byte, error) {
	var b []byte
	return b, c.get(ctx, "/v1/disclosure", url.Values{"format": {"html"}}, &b)
}

// Tokens lists issued tokens (authority).
func (c *Client) Tokens(ctx context.Context) ([]TokenInfo, error) {
	var ts []TokenInfo
	return ts, c.get(ctx, "/v1/tokens", nil, &ts)
}

// CreateToken issues a token (authority); subject names the operator or
// provider it acts for.
func (c *Client) CreateToken(ctx context.Context, role, subject, note string) (NewToken, error) {
	var t NewToken
	return t, c.post(ctx, "/v1/tokens", map[string]string{"role": role, "subject": subject, "note": note}, &t)
}

// RevokeToken revokes a token by id (authority).
func (c *Client) RevokeToken(ctx context.Context, id string) (TokenInfo, error) {
	var t TokenInfo
	return t, c.post(ctx, "/v1/tokens/"+esc(id)+"/revoke", nil, &t)
}

// Metrics returns the Prometheus exposition (authority).
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var b []byte
	err := c.get(ctx, "/metrics", nil, &b)
	return string(b), err
}
