package service

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/covedata/cove"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/policy"
)

// The request bodies. Unknown fields are errors.

// SubmitRequest is a job submission as JSON (the module in base64). As
// multipart/form-data the same fields are parts: "manifest" and "module"
// (files or values), or "module_sha256", and an optional "id". A submission
// carries the module or the sha256 of a module the operator uploaded
// (POST /v1/modules), or neither for a plan-mode job whose plan is written
// in its manifest.
type SubmitRequest struct {
	ID           string `json:"id,omitempty"`            // idempotency key: resubmitting the same job returns it
	Manifest     string `json:"manifest"`                // YAML or JSON text
	Module       []byte `json:"module,omitempty"`        // base64 in JSON
	ModuleSHA256 string `json:"module_sha256,omitempty"` // lowercase hex, instead of module

	sum    [32]byte // of Module, once decoded
	hashed bool
}

// ModuleInfo is an uploaded module: its sha256 (lowercase hex), what a
// submission names it by, and its size.
type ModuleInfo struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// ReviewRequest is the authority's decision on a job in review.
type ReviewRequest struct {
	Approve bool   `json:"approve"`
	Reason  string `json:"reason"`
}

// ReasonRequest carries the reason of a revocation or cancellation.
type ReasonRequest struct {
	Reason string `json:"reason"`
}

// TokenRequest asks for a new token.
type TokenRequest struct {
	Role    Role   `json:"role"`
	Subject string `json:"subject"`
	Note    string `json:"note,omitempty"`
}

// TokenResponse is a new token: shown once.
type TokenResponse struct {
	Token string    `json:"token"`
	Info  TokenInfo `json:"info"`
}

const maxReason = 4 << 10

// maxIDPart bounds the id and module_sha256 parts of a multipart submission.
const maxIDPart = 256

// decodeStrict decodes exactly one JSON value with no unknown field.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidf("request body: %v", jsonMsg(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidf("request body: data after the JSON value")
	}
	return nil
}

// jsonMsg keeps a decoding error's shape without echoing the input.
func jsonMsg(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		return "unknown field " + strings.TrimPrefix(msg, "json: unknown field ")
	}
	return "malformed JSON"
}

// mediaType returns the request's media type, or a 415 error unless it is
// one of want.
func mediaType(r *http.Request, want ...string) (string, map[string]string, error) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil {
		for _, w := range want {
			if mt == w {
				return mt, params, nil
			}
		}
	}
	return "", nil, withStatus(http.StatusUnsupportedMediaType,
		invalidf("content type %q is not one of %s", truncate(ct, 100), strings.Join(want, ", ")))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// decodeJSONBody reads a JSON body of at most max bytes into v.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	if _, _, err := mediaType(r, "application/json"); err != nil {
		return err
	}
	b, err := limitedBody(w, r, max)
	if err != nil {
		return err
	}
	return decodeStrict(b, v)
}

// Limits bounds a submission.
type Limits struct {
	MaxModuleBytes   int64
	MaxManifestBytes int64
}

// maxSubmitBody bounds the whole body of a submission: the module in base64
// with the manifest and the framing.
func (l Limits) maxSubmitBody() int64 {
	return l.MaxModuleBytes/3*4 + 4 + 2*l.MaxManifestBytes + 64<<10
}

// DecodeSubmission decodes a job submission of media type mt (with its
// parameters) from body, which must already be size-bounded.
func DecodeSubmission(mt string, params map[string]string, body io.Reader, l Limits) (SubmitRequest, error) {
	return decodeSubmission(mt, params, body, l, nil)
}

// decodeSubmission is DecodeSubmission reading through scratch (nil: fresh
// buffers). With scratch, a module read from a multipart part is in
// scratch's memory: valid until the caller reuses scratch.
func decodeSubmission(mt string, params map[string]string, body io.Reader, l Limits, scratch *bytes.Buffer) (SubmitRequest, error) {
	var req SubmitRequest
	if scratch == nil {
		scratch = new(bytes.Buffer)
	}
	switch mt {
	case "application/json":
		scratch.Reset()
		if _, err := scratch.ReadFrom(body); err != nil {
			return req, err
		}
		if err := decodeStrict(scratch.Bytes(), &req); err != nil {
			return req, err
		}
	case "multipart/form-data":
		boundary := params["boundary"]
		if boundary == "" {
			return req, invalidf("multipart body without a boundary")
		}
		mr := multipart.NewReader(body, boundary)
		seen := map[string]bool{}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return req, limitOr(err, "multipart body: malformed")
			}
			name := part.FormName()
			if seen[name] {
				return req, invalidf("part %q given twice", truncate(name, 40))
			}
			seen[name] = true
			switch name {
			case "manifest":
				b, err := readPart(part, name, l.MaxManifestBytes, nil)
				if err != nil {
					return req, err
				}
				req.Manifest = string(b)
			case "module":
				// Streamed once into scratch, hashed on the way.
				h := sha256.New()
				scratch.Reset()
				b, err := readPart(io.TeeReader(part, h), name, l.MaxModuleBytes, scratch)
				if err != nil {
					return req, err
				}
				req.Module = b
				h.Sum(req.sum[:0])
				req.hashed = true
			case "module_sha256", "id":
				b, err := readPart(part, name, maxIDPart, nil)
				if err != nil {
					return req, err
				}
				if name == "id" {
					req.ID = string(b)
				} else {
					req.ModuleSHA256 = string(b)
				}
			default:
				return req, invalidf("unknown part %q (want manifest, module or module_sha256, id)", truncate(name, 40))
			}
		}
	default:
		return req, withStatus(http.StatusUnsupportedMediaType, invalidf("content type %q: use application/json or multipart/form-data", truncate(mt, 100)))
	}
	if req.Manifest == "" || (len(req.Module) > 0 && req.ModuleSHA256 != "") {
		return req, invalidf("a submission needs a manifest and at most one of a module or a module_sha256 (none: a plan written in the manifest)")
	}
	if int64(len(req.Manifest)) > l.MaxManifestBytes {
		return req, fmt.Errorf("%w: manifest is over %d bytes", cove.ErrLimit, l.MaxManifestBytes)
	}
	if int64(len(req.Module)) > l.MaxModuleBytes {
		return req, fmt.Errorf("%w: module is over %d bytes", cove.ErrLimit, l.MaxModuleBytes)
	}
	if req.ModuleSHA256 != "" && !validSHA256(req.ModuleSHA256) {
		return req, invalidf("module_sha256 must be 64 lowercase hex digits")
	}
	if req.ID != "" && !policy.ValidName(req.ID) {
		return req, invalidf("job id must be a valid name")
	}
	if len(req.Module) > 0 && !req.hashed {
		req.sum, req.hashed = sha256.Sum256(req.Module), true
	}
	return req, nil
}

// readPart reads a part of at most max bytes, into buf when not nil.
func readPart(r io.Reader, name string, max int64, buf *bytes.Buffer) ([]byte, error) {
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return nil, limitOr(err, "multipart part "+name+": malformed")
	}
	if n > max {
		return nil, fmt.Errorf("%w: part %s is over %d bytes", cove.ErrLimit, name, max)
	}
	return buf.Bytes(), nil
}

// validSHA256 reports whether s is a sha256 in lowercase hex.
func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func limitOr(err error, msg string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: body over %d bytes", cove.ErrLimit, mbe.Limit)
	}
	return invalidf("%s", msg)
}

// DecodeRequest decodes the JSON body of any other route: what is one of
// *policy.Dataset, *policy.Grant, *ReviewRequest, *ReasonRequest or
// *TokenRequest.
func DecodeRequest(b []byte, v any) error {
	if err := decodeStrict(b, v); err != nil {
		return err
	}
	switch v := v.(type) {
	case *ReviewRequest:
		if strings.TrimSpace(v.Reason) == "" || len(v.Reason) > maxReason {
			return invalidf("a review needs a reason of at most %d bytes", maxReason)
		}
	case *ReasonRequest:
		if len(v.Reason) > maxReason {
			return fmt.Errorf("%w: reason over %d bytes", cove.ErrLimit, maxReason)
		}
	case *TokenRequest:
		if v.Role == "" {
			return invalidf("a token needs a role")
		}
	}
	return nil
}

var defaultLimits = Limits{MaxModuleBytes: DefaultMaxModuleBytes, MaxManifestBytes: jobs.MaxManifestBytes}

func base64Len(n int64) int64 { return int64(base64.StdEncoding.EncodedLen(int(n))) }
