package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he"
)

// The homomorphic path (docs/he.md). Key holders (provider tokens) and
// operators do their secret-side work here, on their own machine, with
// enclave/he: a provider's secret share stays in its directory
// (he.ProviderDir) and an operator's secret key in its key file; only
// public material (keygen shares, encrypted columns, key-switch shares,
// public keys, encrypted queries) is sent.

// HESetup is a collective-key setup: parameters, key holders and the public
// seed of the common reference string, bound to the ledger.
type HESetup struct {
	Name      string           `json:"name"`
	Params    he.ParamsLiteral `json:"params"`
	Providers []string         `json:"providers"`
	Seed      []byte           `json:"seed"`
	LedgerSeq uint64           `json:"ledger_seq,omitempty"`
}

// Setup returns the protocol's setup.
func (s HESetup) Setup() (he.Setup, error) {
	p, err := he.NewParams(s.Params)
	if err != nil {
		return he.Setup{}, err
	}
	return he.Setup{Params: p, Providers: s.Providers, Seed: s.Seed}, nil
}

// KeygenResult is what the sandbox recorded of a keygen share; Keys is the
// fingerprint of the collective keys once every holder gave its share.
type KeygenResult struct {
	Share struct {
		Setup     string `json:"setup"`
		Provider  string `json:"provider"`
		SHA256    string `json:"sha256"`
		LedgerSeq uint64 `json:"ledger_seq"`
	} `json:"share"`
	Keys string `json:"keys,omitempty"`
}

// HEColumn is an encrypted column attached to a dataset, or one segment
// of it: rows [Start, End) of the dataset's table, attached by Provider (a
// column attached whole is the segment [0, Rows)).
type HEColumn struct {
	Dataset  string  `json:"dataset"`
	Column   string  `json:"column"`
	Provider string  `json:"provider"`
	Keys     string  `json:"keys"`
	SHA256   string  `json:"sha256"`
	Rows     int64   `json:"rows"`
	Start    int64   `json:"start"`
	End      int64   `json:"end"`
	Lo       float64 `json:"lo"`
	Hi       float64 `json:"hi"`
	Nulls    string  `json:"nulls"`
}

// PendingShare is a key-switch request of an approved release waiting for
// the caller's share.
type PendingShare struct {
	Job        string    `json:"job"`
	Output     string    `json:"output"`
	Session    string    `json:"session"`
	Ciphertext string    `json:"ciphertext_sha256"`
	Recipient  string    `json:"recipient_sha256"`
	Keys       string    `json:"keys"`
	LedgerSeq  uint64    `json:"approval_seq"`
	Bytes      int       `json:"bytes"`
	Since      time.Time `json:"since"`
}

// DeliveredShare is what the sandbox recorded of a key-switch share.
type DeliveredShare struct {
	Job         string `json:"job"`
	Output      string `json:"output"`
	Provider    string `json:"provider"`
	Session     string `json:"session"`
	Ciphertext  string `json:"ciphertext_sha256"`
	ShareSHA256 string `json:"share_sha256"`
}

// HEOutput is an HE output's encrypted result: only the operator whose key
// is the recipient opens it (OpenHE).
type HEOutput struct {
	Column     string       `json:"column"`
	Keys       string       `json:"keys"`
	Groups     [][]string   `json:"groups"`
	Release    string       `json:"release"` // base64 of the serialized he.Release
	Ciphertext string       `json:"ciphertext_sha256"`
	Recipient  string       `json:"recipient_sha256"`
	Noise      he.NoiseInfo `json:"noise"`
}

func (c *Client) postBinary(ctx context.Context, path string, query url.Values, b []byte, out any) error {
	return c.do(ctx, http.MethodPost, path, query, bytes.NewReader(b), "application/octet-stream", out)
}

// CreateHESetup registers a collective-key setup (authority); the sandbox
// draws the seed.
func (c *Client) CreateHESetup(ctx context.Context, name string, params he.ParamsLiteral, providers []string) (HESetup, error) {
	var out HESetup
	return out, c.post(ctx, "/v1/he/setups", map[string]any{"name": name, "params": params, "providers": providers}, &out)
}

// HESetup returns a registered setup.
func (c *Client) HESetup(ctx context.Context, name string) (HESetup, error) {
	var out HESetup
	return out, c.get(ctx, "/v1/he/setups/"+esc(name), nil, &out)
}

// HEKeys downloads and parses the collective public keys of a setup.
func (c *Client) HEKeys(ctx context.Context, setup string) (*he.PublicKeys, error) {
	var b []byte
	if err := c.get(ctx, "/v1/he/setups/"+esc(setup)+"/keys", nil, &b); err != nil {
		return nil, err
	}
	return he.UnmarshalPublicKeys(b)
}

// ProviderKeygen is a key holder's key generation (provider token): it
// creates or loads the holder's secret share in dir (he.ProviderDir; id is
// needed the first time), computes its keygen share for setup there and
// sends only the share. Asked again it sends the same share, never a new
// one; the sandbox then answers cove.ErrExists.
func (c *Client) ProviderKeygen(ctx context.Context, dir, id, setup string) (KeygenResult, error) {
	var out KeygenResult
	su, err := c.HESetup(ctx, setup)
	if err != nil {
		return out, err
	}
	s, err := su.Setup()
	if err != nil {
		return out, err
	}
	share, err := he.ProviderDir(dir).Keygen(id, su.Name, s)
	if err != nil {
		return out, err
	}
	return out, c.postBinary(ctx, "/v1/he/setups/"+esc(setup)+"/keygen", nil, share, &out)
}

// AttachHEColumn uploads a column the caller encrypted under setup's keys
// (he.NewEncryptor(keys).EncryptFloats) for dataset.column, covering the
// whole table; nulls says how missing values entered ("refuse" or "zero").
func (c *Client) AttachHEColumn(ctx context.Context, setup, dataset, column string, col *he.Column, nulls string) (HEColumn, error) {
	return c.attachHE(ctx, setup, dataset, column, col, nulls, nil)
}

// AttachHESegment uploads one segment of dataset.column: col holds rows
// [start, start + col.Rows()) of the dataset's table, encrypted by the
// caller under setup's keys. Other holders attach the other segments, under
// the same keys, bounds and nulls, without overlap (cove.ErrExists); a job
// runs once the segments cover every row of the table, and fuses them into
// one release.
func (c *Client) AttachHESegment(ctx context.Context, setup, dataset, column string, start int64, col *he.Column, nulls string) (HEColumn, error) {
	if start < 0 {
		return HEColumn{}, fmt.Errorf("%w: segment start %d", cove.ErrInvalid, start)
	}
	q := url.Values{"start": {fmt.Sprint(start)}, "end": {fmt.Sprint(start + int64(col.Rows()))}}
	return c.attachHE(ctx, setup, dataset, column, col, nulls, q)
}

func (c *Client) attachHE(ctx context.Context, setup, dataset, column string, col *he.Column, nulls string, q url.Values) (HEColumn, error) {
	var out HEColumn
	b, err := col.MarshalBinary()
	if err != nil {
		return out, err
	}
	if q == nil {
		q = url.Values{}
	}
	q.Set("setup", setup)
	if nulls != "" {
		q.Set("nulls", nulls)
	}
	return out, c.postBinary(ctx, "/v1/he/columns/"+esc(dataset)+"/"+esc(column), q, b, &out)
}

// PendingShares lists the key-switch requests waiting for the caller's
// share (provider token).
func (c *Client) PendingShares(ctx context.Context) ([]PendingShare, error) {
	var out []PendingShare
	return out, c.get(ctx, "/v1/he/shares", nil, &out)
}

// ProviderShare answers one pending request with the key holder's share,
// computed in dir with its secret share: the request must be the one
// described (job, session, ciphertext, recipient, approval entry), the
// holder's share log in dir must not record the ciphertext (it is recorded
// before the share is computed), and only the share is sent.
func (c *Client) ProviderShare(ctx context.Context, dir string, p PendingShare) (DeliveredShare, error) {
	job, share, err := c.ComputeShare(ctx, dir, p)
	if err != nil {
		return DeliveredShare{}, err
	}
	return c.PostShare(ctx, job, share)
}

// ComputeShare is ProviderShare's first half: it fetches the request and
// computes the holder's share in dir (recording it in the holder's share
// log), without sending it.
func (c *Client) ComputeShare(ctx context.Context, dir string, p PendingShare) (job string, share []byte, err error) {
	var b []byte
	if err := c.get(ctx, "/v1/he/shares/"+esc(p.Session), nil, &b); err != nil {
		return "", nil, err
	}
	_, params, err := he.ProviderDir(dir).Info()
	if err != nil {
		return "", nil, err
	}
	req, err := he.UnmarshalShareRequest(params, b)
	if err != nil {
		return "", nil, err
	}
	pr, err := he.ProviderDir(dir).Open("", params, he.ProviderOptions{Approver: pendingApprover(p), Shares: he.ProviderDir(dir).ShareLog()})
	if err != nil {
		return "", nil, err
	}
	share, err = pr.ReleaseShare(ctx, req)
	return req.Job, share, err
}

// PostShare sends a key-switch share for job (provider token).
func (c *Client) PostShare(ctx context.Context, job string, share []byte) (DeliveredShare, error) {
	var out DeliveredShare
	return out, c.postBinary(ctx, "/v1/jobs/"+esc(job)+"/he/shares", nil, share, &out)
}

// ShareAll answers every pending request (provider token) and returns what
// the sandbox recorded; it stops at the first refusal.
func (c *Client) ShareAll(ctx context.Context, dir string) ([]DeliveredShare, error) {
	ps, err := c.PendingShares(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeliveredShare
	for _, p := range ps {
		d, err := c.ProviderShare(ctx, dir, p)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

// pendingApprover approves only the release the pending request describes:
// job, ciphertext and recipient hashes, and the he.approved ledger entry the
// request's token names. The sandbox checks the entry against its verified
// ledger again before it accepts the share; a holder that wants its own
// proof verifies the entry's inclusion (cove ledger verify-proof).
type pendingApprover PendingShare

func (p pendingApprover) Approve(_ context.Context, a he.Approval) error {
	switch {
	case a.Job != p.Job:
		return fmt.Errorf("request for job %s, listed for %s", a.Job, p.Job)
	case hex.EncodeToString(a.Ciphertext[:]) != p.Ciphertext || hex.EncodeToString(a.Recipient[:]) != p.Recipient:
		return errors.New("request's ciphertext or recipient differ from the approval's")
	case len(a.Token) != 8 || binary.BigEndian.Uint64(a.Token) != p.LedgerSeq || p.LedgerSeq == 0:
		return errors.New("request does not name the approval's ledger entry")
	}
	return nil
}

// RegisterHEKey registers the operator's public key as the recipient of
// its HE releases (operator token) and returns its hash, the manifest's
// recipient. The secret key stays with op.
func (c *Client) RegisterHEKey(ctx context.Context, op *he.Operator) (string, error) {
	b, err := op.Key().MarshalBinary()
	if err != nil {
		return "", err
	}
	var out struct {
		Hash string `json:"hash"`
	}
	return out.Hash, c.postBinary(ctx, "/v1/he/recipients", nil, b, &out)
}

// OpenHE decrypts, with the operator's key, every HE output of a release
// and returns a copy whose rows carry the values, each with the standard
// deviation of its noise (DP and flooding) and a 95% interval. It runs
// locally: the release is encrypted to op, the platform cannot open it.
func OpenHE(op *he.Operator, rel *Release) (*Release, error) {
	out := *rel
	out.Outputs = append([]Output(nil), rel.Outputs...)
	for i, o := range out.Outputs {
		if o.HE == nil {
			continue
		}
		opened, err := op.OpenEncoded(o.HE.Release, len(o.HE.Groups))
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", o.Name, err)
		}
		o.Rows = nil
		for g, v := range opened.Values {
			o.Rows = append(o.Rows, Row{Key: o.HE.Groups[g], Value: v, NoiseStdDev: opened.NoiseStd, CILow: v - opened.Half95, CIHigh: v + opened.Half95})
		}
		out.Outputs[i] = o
	}
	return &out, nil
}

// HEQuery is an encrypted query's public part: X[g][j] is the sum over the
// rows of dataset whose GroupBy value is Groups[g] of Columns[j] clamped to
// Bounds[j]; the sandbox adds DP noise to every element of X (scaled to
// max(hi−lo, |lo|, |hi|) of the column, whatever the vector) and the reply
// is y[g] = Σ_j v[j]·X̃[g][j] for the operator's vector v.
type HEQuery struct {
	ID        string       `json:"id"` // idempotency key: a retry returns the stored reply
	Grant     string       `json:"grant"`
	Dataset   string       `json:"dataset"`
	Purpose   string       `json:"purpose"`
	Columns   []string     `json:"columns"`
	Bounds    [][2]float64 `json:"bounds"`
	GroupBy   string       `json:"group_by"`
	Groups    []string     `json:"groups"`
	Mechanism string       `json:"mechanism,omitempty"`
	Epsilon   float64      `json:"epsilon"`
	Delta     float64      `json:"delta,omitempty"`
}

// HEQueryResult is an opened reply: one value per group, with the noise.
// Noise is the per-element noise of the noised aggregate; NoiseStd and
// CI95Half are the noise of each value for the vector the query was run
// with (σ_y = √Σ_j v[j]²·σ_j²), NaN when the vector is not known.
type HEQueryResult struct {
	ID       string
	Groups   []string
	Values   []float64
	Noise    he.QueryNoiseInfo
	NoiseStd float64 // standard deviation of the DP noise of each value
	CI95Half float64 // half-width of a 95% interval around each value
	Record   json.RawMessage
}

// Interval returns the half-width of a 1−α interval around each value for
// the vector the query was run with (he.QueryNoiseInfo.Interval).
func (r *HEQueryResult) Interval(vector []float64, alpha float64) (float64, error) {
	return r.Noise.Interval(vector, alpha)
}

type heQueryReply struct {
	Record json.RawMessage `json:"record"`
	Reply  []byte          `json:"reply"`
	Groups []string        `json:"groups"`
}

// RunHEQuery encrypts vector under the operator's own key (locally), sends
// it with the query's public part (operator token), and opens the reply
// locally. The platform never sees the vector or the reply in the clear.
func (c *Client) RunHEQuery(ctx context.Context, op *he.Operator, q HEQuery, vector []float64) (*HEQueryResult, error) {
	enc, err := op.EncryptQuery(vector)
	if err != nil {
		return nil, err
	}
	b, err := enc.MarshalBinary()
	if err != nil {
		return nil, err
	}
	body := struct {
		HEQuery
		Query []byte `json:"query"`
	}{q, b}
	var rep heQueryReply
	if err := c.post(ctx, "/v1/he/queries", body, &rep); err != nil {
		return nil, err
	}
	return openQueryReply(op, q.ID, rep, vector)
}

// OpenHEQuery fetches a stored reply by id and opens it locally. vector is
// the operator's vector the query was run with (kept on its side), for
// NoiseStd and CI95Half; nil leaves them NaN.
func (c *Client) OpenHEQuery(ctx context.Context, op *he.Operator, id string, vector []float64) (*HEQueryResult, error) {
	var rep heQueryReply
	if err := c.get(ctx, "/v1/he/queries/"+esc(id), nil, &rep); err != nil {
		return nil, err
	}
	return openQueryReply(op, id, rep, vector)
}

func openQueryReply(op *he.Operator, id string, rep heQueryReply, vector []float64) (*HEQueryResult, error) {
	r, err := he.UnmarshalQueryReply(rep.Reply)
	if err != nil {
		return nil, err
	}
	vals, err := op.OpenReply(r)
	if err != nil {
		return nil, err
	}
	res := &HEQueryResult{ID: id, Groups: rep.Groups, Values: vals, Noise: r.Noise(), NoiseStd: math.NaN(), CI95Half: math.NaN(), Record: rep.Record}
	if vector != nil {
		if res.NoiseStd, err = res.Noise.StdOf(vector); err != nil {
			return nil, err
		}
		if res.CI95Half, err = res.Noise.Interval(vector, 0.05); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// WriteOperatorKey writes the operator's key pair to path, readable by the
// owner only. It is the operator's secret: it never goes to the platform.
func WriteOperatorKey(path string, op *he.Operator) error {
	b, err := op.MarshalSecret()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadOperatorKey reads a key pair written by WriteOperatorKey; a file
// readable by others is refused.
func ReadOperatorKey(path string) (*he.Operator, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is readable by others (mode %v); chmod 600 it", cove.ErrInvalid, path, fi.Mode().Perm())
	}
	if fi.Size() > 64<<20 {
		return nil, fmt.Errorf("%w: %s is %d bytes", cove.ErrLimit, path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return he.LoadOperator(b)
}
