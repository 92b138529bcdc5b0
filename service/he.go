package service

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/covedata/cove"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/store"
)

// The homomorphic path through the API (docs/he.md, "Through the API").
// Key holders (provider tokens) give keygen shares, upload encrypted
// columns and give key-switch shares; their secret shares never travel:
// the SDK computes every share on the holder's side and sends only public
// material. Operators register their public key and send encrypted
// queries. Binary bodies are application/octet-stream, bounded by
// Options.MaxHEBytes (columns: MaxHEColumnBytes), and at most maxHEReads
// of them are read at once.

// Defaults of the HE limits.
const (
	DefaultMaxHEBytes       = 64 << 20  // a keygen share (≈ 22 MiB at the default CKKS set), a key, a key-switch share, a query
	DefaultMaxHEColumnBytes = 512 << 20 // an encrypted column (≈ 1 MiB per 8,192 values at the default CKKS set)
	maxHEReads              = 2
)

var providers = []Role{Provider}

// EncryptedColumnType is the type a dataset registration gives a column
// that is not in the public file: a key holder attaches it encrypted.
const EncryptedColumnType = "encrypted"

// HESetupRequest registers a collective-key setup (authority): the
// parameters (an he.ParamsLiteral) and the key holders; the seed of the
// common reference string is drawn by the sandbox and bound to the ledger.
type HESetupRequest struct {
	Name      string          `json:"name"`
	Params    json.RawMessage `json:"params"`
	Providers []string        `json:"providers"`
}

func heRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/he/setups", roles: authority, summary: "Register a collective-key setup: parameters and key holders; the sandbox draws the CRS seed (ledger he.setup)", body: "HESetupRequest", resp: "HESetup", status: 201, handle: (*Server).createHESetup},
		{method: "GET", path: "/v1/he/setups/{name}", roles: catalog, summary: "An HE setup: parameters, key holders, CRS seed", resp: "HESetup", handle: (*Server).getHESetup},
		{method: "POST", path: "/v1/he/setups/{name}/keygen", roles: providers, summary: "Give the caller's keygen share (computed on its side; the secret share never travels): checked, recorded (ledger he.keygen_share); the last one builds the collective keys (he.keys)", body: "Binary", resp: "KeygenResult", status: 201, handle: (*Server).postKeygenShare},
		{method: "GET", path: "/v1/he/setups/{name}/keys", roles: catalog, summary: "The collective public keys of a setup (serialized he.PublicKeys), once every holder gave its keygen share", resp: "Binary", handle: (*Server).getHEKeys},
		{method: "POST", path: "/v1/he/columns/{dataset}/{column}", roles: providers, summary: "Attach a column the caller encrypted under a setup's keys to a catalogued dataset column, whole or as one segment (a row range) of it; segments of a column are by any holders, under the same keys, bounds and nulls, without overlap (ledger he.column, with the range and the provider)", query: []param{{"setup", "string", "the HE setup whose keys encrypt the column"}, {"nulls", "string", "how nulls entered: refuse (default) or zero"}, {"start", "integer", "a segment: the first row of the dataset's table it holds (default: the whole table)"}, {"end", "integer", "a segment: one past its last row (default: start + the column's rows)"}}, body: "Binary", resp: "HEColumn", status: 201, handle: (*Server).postHEColumn},
		{method: "POST", path: "/v1/he/recipients", roles: operators, summary: "Register the caller's HE public key (serialized he.OperatorKey) as the recipient of its HE releases (ledger he.recipient)", body: "Binary", resp: "HERecipient", status: 201, handle: (*Server).postHERecipient},
		{method: "GET", path: "/v1/he/shares", roles: providers, summary: "Key-switch requests of approved releases waiting for the caller's share", resp: "PendingShareList", handle: (*Server).listPendingShares},
		{method: "GET", path: "/v1/he/shares/{session}", roles: providers, summary: "One waiting key-switch request (serialized he.ShareRequest)", resp: "Binary", handle: (*Server).getShareRequest},
		{method: "POST", path: "/v1/jobs/{id}/he/shares", roles: providers, summary: "Give the caller's key-switch share for a job's approved release: refused unless the approval is in the ledger, and for a second share of the same ciphertext; recorded (ledger he.share) before it is used", body: "Binary", resp: "DeliveredShare", status: 201, handle: (*Server).postKeySwitchShare},
		{method: "POST", path: "/v1/he/queries", roles: operators, summary: "Answer an encrypted query (the vector under the operator's own key) against a public aggregate of a granted dataset: the aggregate is noised (DP, whatever the vector) and the vector applied under encryption, budget debited, ledger he.query; a retry returns the stored reply", body: "HEQueryRequest", resp: "HEQueryReply", status: 201, handle: (*Server).postHEQuery},
		{method: "GET", path: "/v1/he/queries/{id}", roles: operators, summary: "A stored encrypted query reply (the caller's own)", resp: "HEQueryReply", handle: (*Server).getHEQuery},
	}
}

// heBody reads a binary HE body of at most limit bytes, holding one of the
// maxHEReads slots while it does.
func (s *Server) heBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if _, _, err := mediaType(r, "application/octet-stream"); err != nil {
		return nil, err
	}
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: body of %d bytes is over %d", cove.ErrLimit, r.ContentLength, limit)
	}
	select {
	case s.heReads <- struct{}{}:
		defer func() { <-s.heReads }()
	case <-r.Context().Done():
		return nil, fmt.Errorf("%w: %v", cove.ErrCancelled, r.Context().Err())
	}
	return limitedBody(w, r, limit)
}

func (s *Server) createHESetup(w http.ResponseWriter, r *http.Request, _ principal) error {
	var req HESetupRequest
	if err := decodeJSONBody(w, r, s.opt.MaxBodyBytes, &req); err != nil {
		return err
	}
	su := store.HESetup{Name: req.Name, Params: req.Params, Providers: req.Providers}
	check := su
	check.Seed = make([]byte, 32)
	if _, err := jobs.HESetupOf(check); err != nil {
		return err
	}
	su, err := s.st.RegisterHESetup(r.Context(), su)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, su)
	return nil
}

func (s *Server) getHESetup(w http.ResponseWriter, r *http.Request, _ principal) error {
	su, err := s.st.HESetupByName(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, su)
	return nil
}

func (s *Server) postKeygenShare(w http.ResponseWriter, r *http.Request, p principal) error {
	b, err := s.heBody(w, r, s.opt.MaxHEBytes)
	if err != nil {
		return err
	}
	res, err := jobs.AcceptKeygenShare(r.Context(), s.st, s.opt.DataDir, r.PathValue("name"), p.Subject, b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, res)
	return nil
}

func (s *Server) getHEKeys(w http.ResponseWriter, r *http.Request, _ principal) error {
	path, k, err := jobs.HEKeysFile(r.Context(), s.st, s.opt.DataDir, r.PathValue("name"))
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: the keys file of setup %s: %v", cove.ErrNotFound, k.Setup, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Cove-Keys-Fingerprint", k.Fingerprint)
	w.Header().Set("X-Cove-SHA256", k.SHA256)
	w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
	w.WriteHeader(http.StatusOK)
	_, err = io.Copy(w, f)
	if err != nil {
		s.log.Debug("writing HE keys", "err", err)
	}
	return nil
}

func (s *Server) postHEColumn(w http.ResponseWriter, r *http.Request, p principal) error {
	q := r.URL.Query()
	setup, nulls := q.Get("setup"), q.Get("nulls")
	if nulls == "" {
		nulls = jobs.NullsRefuse
	}
	if setup == "" || (nulls != jobs.NullsRefuse && nulls != jobs.NullsZero) {
		return invalidf("an encrypted column needs ?setup= and nulls refuse or zero")
	}
	// A segment: ?start= (and ?end=, else start + the column's rows).
	var start, end int64
	if q.Has("start") || q.Has("end") {
		var err error
		if start, err = strconv.ParseInt(q.Get("start"), 10, 64); err != nil || start < 0 {
			return invalidf("a segment needs ?start= (a row, ≥ 0)")
		}
		end = jobs.SegmentToEnd
		if q.Has("end") {
			if end, err = strconv.ParseInt(q.Get("end"), 10, 64); err != nil || end <= start {
				return invalidf("?end= must be a row after ?start=")
			}
		}
	}
	d, err := s.st.Dataset(r.Context(), r.PathValue("dataset"))
	if err != nil {
		return err
	}
	b, err := s.heBody(w, r, s.opt.MaxHEColumnBytes)
	if err != nil {
		return err
	}
	c, err := jobs.UploadColumn(r.Context(), s.st, s.opt.DataDir, setup, p.Subject, b,
		store.HEColumn{Dataset: d.Name, Column: r.PathValue("column"), Nulls: nulls, Start: start, End: end})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// HERecipient is an operator's registered HE public key.
type HERecipient struct {
	Operator string `json:"operator"`
	Hash     string `json:"hash"` // what an HE manifest names as its recipient
}

func (s *Server) postHERecipient(w http.ResponseWriter, r *http.Request, p principal) error {
	b, err := s.heBody(w, r, s.opt.MaxHEBytes)
	if err != nil {
		return err
	}
	h, err := jobs.RegisterRecipientKey(r.Context(), s.st, p.Subject, b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, HERecipient{Operator: p.Subject, Hash: h})
	return nil
}

func (s *Server) listPendingShares(w http.ResponseWriter, r *http.Request, p principal) error {
	ps, err := s.shares.Pending(r.Context(), p.Subject)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nonNil(ps))
	return nil
}

func (s *Server) getShareRequest(w http.ResponseWriter, r *http.Request, p principal) error {
	b, ps, err := s.shares.Request(r.Context(), p.Subject, r.PathValue("session"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Cove-Job", ps.Job)
	w.Header().Set("X-Cove-Approval-Seq", fmt.Sprint(ps.LedgerSeq))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	return nil
}

func (s *Server) postKeySwitchShare(w http.ResponseWriter, r *http.Request, p principal) error {
	id := r.PathValue("id")
	if _, err := s.st.Job(r.Context(), id); err != nil {
		return err
	}
	b, err := s.heBody(w, r, s.opt.MaxHEBytes)
	if err != nil {
		return err
	}
	d, err := s.shares.Deliver(r.Context(), p.Subject, id, b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, d)
	return nil
}

// HEQueryRequest is an operator's encrypted query (jobs.HEQueryRequest;
// query is the serialized he.Query in base64).
type HEQueryRequest = jobs.HEQueryRequest

func (s *Server) postHEQuery(w http.ResponseWriter, r *http.Request, p principal) error {
	b, err := func() ([]byte, error) {
		if _, _, err := mediaType(r, "application/json"); err != nil {
			return nil, err
		}
		select {
		case s.heReads <- struct{}{}:
			defer func() { <-s.heReads }()
		case <-r.Context().Done():
			return nil, fmt.Errorf("%w: %v", cove.ErrCancelled, r.Context().Err())
		}
		return limitedBody(w, r, base64Len(s.opt.MaxHEBytes)+64<<10)
	}()
	if err != nil {
		return err
	}
	var req HEQueryRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	if len(req.Query) == 0 || int64(len(req.Query)) > s.opt.MaxHEBytes {
		return fmt.Errorf("%w: the encrypted query is empty or over %d bytes", cove.ErrLimit, s.opt.MaxHEBytes)
	}
	if !policy.ValidName(req.ID) {
		return invalidf("an HE query needs an id (a valid name): retries name the same id")
	}
	sum := sha256.Sum256(b)
	rep, err := s.runner.AnswerHEQuery(r.Context(), p.Subject, req, sum)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, rep)
	return nil
}

func (s *Server) getHEQuery(w http.ResponseWriter, r *http.Request, p principal) error {
	rep, err := jobs.StoredHEQuery(r.Context(), s.st, p.Subject, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
