package service_test

import (
	"bytes"
	"errors"
	"mime/multipart"
	"testing"

	"github.com/covedata/cove"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/service"
)

var fuzzLimits = service.Limits{MaxModuleBytes: 4 << 10, MaxManifestBytes: 1 << 10}

// FuzzDecodeSubmission: any body, JSON or multipart, decodes or fails with
// invalid or limit_exceeded; it never panics. Seeds: testdata/fuzz.
func FuzzDecodeSubmission(f *testing.F) {
	f.Add(false, []byte(`{"manifest":"version: 1","module":"AGFzbQEAAAA="}`))
	f.Add(false, []byte(`{"id":"job-1","manifest":"x","module":"AAAA","extra":1}`))
	f.Add(false, []byte(`{"manifest":`))
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.SetBoundary("BOUNDARY")
	w, _ := mw.CreateFormFile("manifest", "m.yaml")
	w.Write([]byte("version: 1\n"))
	w, _ = mw.CreateFormFile("module", "j.wasm")
	w.Write([]byte("\x00asm\x01\x00\x00\x00"))
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
		if req.Manifest == "" || len(req.Module) == 0 || int64(len(req.Module)) > fuzzLimits.MaxModuleBytes ||
			int64(len(req.Manifest)) > fuzzLimits.MaxManifestBytes || (req.ID != "" && !policy.ValidName(req.ID)) {
			t.Fatalf("accepted a submission outside the limits: %d-byte manifest, %d-byte module, id %q", len(req.Manifest), len(req.Module), req.ID)
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
