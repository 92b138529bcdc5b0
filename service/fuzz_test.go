package service_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/covedata/cove"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/service"
)

var fuzzLimits = service.Limits{MaxModuleBytes: 4 << 10, MaxManifestBytes: 1 << 10}

// FuzzDecodeSubmission: any body, JSON or multipart, decodes or fails with
// invalid or limit_exceeded; it never panics; what it accepts is within the
// limits. Seeds: testdata/fuzz.
func FuzzDecodeSubmission(f *testing.F) {
	f.Add(false, []byte(`{"manifest":"version: 1","module":"AGFzbQEAAAA="}`))
	f.Add(false, []byte(`{"id":"job-1","manifest":"x","module":"AAAA","extra":1}`))
	f.Add(false, []byte(`{"manifest":`))
	f.Add(false, []byte(`{"manifest":"version: 1","module_sha256":"`+strings.Repeat("0a", 32)+`"}`))
	f.Add(false, []byte(`{"manifest":"x","module":"AAAA","module_sha256":"`+strings.Repeat("0a", 32)+`"}`))
	f.Add(false, []byte(`{"manifest":"x","module_sha256":"`+strings.Repeat("0A", 32)+`"}`))
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.SetBoundary("BOUNDARY")
	w, _ := mw.CreateFormFile("manifest", "m.yaml")
	w.Write([]byte("version: 1\n"))
	w, _ = mw.CreateFormFile("module", "j.wasm")
	w.Write([]byte("\x00asm\x01\x00\x00\x00"))
	mw.Close()
	f.Add(true, buf.Bytes())
	buf.Reset()
	mw = multipart.NewWriter(&buf)
	mw.SetBoundary("BOUNDARY")
	mw.WriteField("id", "job-1")
	mw.WriteField("manifest", "version: 1\n")
	mw.WriteField("module_sha256", strings.Repeat("0a", 32))
	mw.Close()
	f.Add(true, buf.Bytes())
	f.Fuzz(func(t *testing.T, multi bool, body []byte) {
		mt, params := "application/json", map[string]string{}
		if multi {
			mt, params = "multipart/form-data", map[string]string{"boundary": "BOUNDARY"}
		}
		req, err := service.DecodeSubmission(mt, params, bytes.NewReader(body), fuzzLimits)
		if err != nil {
			if c := cove.Code(err); c != "invalid" && c != "limit_exceeded" {
				t.Fatalf("code %q for %v", c, err)
			}
			return
		}
		// A manifest-only submission (a plan job) is valid; a module and
		// a module_sha256 together are not.
		if req.Manifest == "" || (len(req.Module) > 0 && req.ModuleSHA256 != "") || int64(len(req.Module)) > fuzzLimits.MaxModuleBytes ||
			int64(len(req.Manifest)) > fuzzLimits.MaxManifestBytes || (req.ID != "" && !policy.ValidName(req.ID)) {
			t.Fatalf("accepted a submission outside the limits: %d-byte manifest, %d-byte module, module_sha256 %q, id %q",
				len(req.Manifest), len(req.Module), req.ModuleSHA256, req.ID)
		}
		if req.ModuleSHA256 != "" {
			if _, err := hex.DecodeString(req.ModuleSHA256); err != nil || len(req.ModuleSHA256) != 64 || strings.ToLower(req.ModuleSHA256) != req.ModuleSHA256 {
				t.Fatalf("accepted module_sha256 %q", req.ModuleSHA256)
			}
		}
	})
}

// FuzzDecodeRequest: every other body decodes into its type or fails with
// invalid or limit_exceeded.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"approve":true,"reason":"ok"}`, `{"reason":"r"}`, `{"role":"operator","subject":"acme"}`,
		`{"id":"g","operator":"o","mode":"scenario","epsilon_cap":{"d":1}}`,
		`{"name":"d","location":"datasets/d.parquet","sharing":"open","level":1,"columns":[{"name":"a","domain":["x"]}]}`,
		`{"x":1}`, `[]`, `null`, `{"reason":` + `"` + string(bytes.Repeat([]byte("a"), 5000)) + `"}`,
	} {
		for k := range uint8(5) {
			f.Add(k, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		var v any
		switch kind % 5 {
		case 0:
			v = &service.ReviewRequest{}
		case 1:
			v = &service.ReasonRequest{}
		case 2:
			v = &service.TokenRequest{}
		case 3:
			v = &policy.Grant{}
		case 4:
			v = &policy.Dataset{}
		}
		err := service.DecodeRequest(body, v)
		if err != nil && !errors.Is(err, cove.ErrInvalid) && !errors.Is(err, cove.ErrLimit) {
			t.Fatalf("error of no category: %v", err)
		}
	})
}
