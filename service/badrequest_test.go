package service_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/service"
)

// TestBadRequests: malformed JSON, unknown fields, oversized bodies and
// modules, wrong content types, bad methods and paths get a 4xx with a code.
func TestBadRequests(t *testing.T) {
	opt := serviceOptions()
	opt.MaxModuleBytes = 2 << 20
	opt.MaxBodyBytes = 8 << 10
	e := startServer(t, t.TempDir(), opt)
	e.issue(t)
	e.setupDemo(t)
	aq := examples.AirQuality()
	multi := func(parts map[string][]byte) (string, []byte) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for name, b := range parts {
			w, _ := mw.CreateFormFile(name, name)
			w.Write(b)
		}
		mw.Close()
		return mw.FormDataContentType(), buf.Bytes()
	}
	subJSON := func(v any) []byte { b, _ := json.Marshal(v); return b }
	big := bytes.Repeat([]byte{0}, 2<<20+1)
	goodCT, goodBody := multi(map[string][]byte{"manifest": aq.Manifest, "module": aq.Module})
	bigCT, bigBody := multi(map[string][]byte{"manifest": aq.Manifest, "module": big})
	badPartCT, badPartBody := multi(map[string][]byte{"manifest": aq.Manifest, "module": aq.Module, "extra": []byte("x")})
	noModCT, noModBody := multi(map[string][]byte{"manifest": aq.Manifest})
	junkCT, junkBody := multi(map[string][]byte{"manifest": aq.Manifest, "module": []byte("not wasm at all")})
	// A module only operator B uploaded (A submits it inline below, which
	// is no upload): operator A may not name it.
	bMod, err := e.client(t, "operator-b").UploadModule(context.Background(), aq.Module)
	if err != nil {
		t.Fatal(err)
	}
	bothCT, bothBody := multi(map[string][]byte{"manifest": aq.Manifest, "module": aq.Module, "module_sha256": []byte(bMod.SHA256)})
	unknown := strings.Repeat("ab", 32)
	cases := []struct {
		name, method, path, who, ct string
		body                        []byte
		status                      int
		code                        string
	}{
		{"malformed JSON", "POST", "/v1/grants", "authority", "application/json", []byte(`{"id": `), 400, "invalid"},
		{"trailing data", "POST", "/v1/grants", "authority", "application/json", []byte(`{} {}`), 400, "invalid"},
		{"unknown field", "POST", "/v1/grants", "authority", "application/json", []byte(`{"id":"g-x","bogus":1}`), 400, "invalid"},
		{"wrong type", "POST", "/v1/tokens", "authority", "application/json", []byte(`{"role": 7}`), 400, "invalid"},
		{"invalid grant", "POST", "/v1/grants", "authority", "application/json", []byte(`{"id":"g-x"}`), 400, "invalid"},
		{"oversized JSON body", "POST", "/v1/grants", "authority", "application/json", []byte(`{"id":"` + strings.Repeat("a", 9<<10) + `"}`), 413, "limit_exceeded"},
		{"wrong content type", "POST", "/v1/grants", "authority", "text/plain", []byte(`{}`), 415, "invalid"},
		{"no content type", "POST", "/v1/tokens", "authority", "", []byte(`{"role":"public"}`), 415, "invalid"},
		{"job as text", "POST", "/v1/jobs", "operator", "text/plain", []byte("x"), 415, "invalid"},
		{"oversized module", "POST", "/v1/jobs", "operator", bigCT, bigBody, 413, "limit_exceeded"},
		{"oversized module in JSON", "POST", "/v1/jobs", "operator", "application/json",
			subJSON(map[string]any{"manifest": string(aq.Manifest), "module": base64.StdEncoding.EncodeToString(big)}), 413, "limit_exceeded"},
		{"oversized manifest", "POST", "/v1/jobs", "operator", "application/json",
			subJSON(map[string]any{"manifest": strings.Repeat("#", 65<<10), "module": aq.Module}), 413, "limit_exceeded"},
		{"unknown part", "POST", "/v1/jobs", "operator", badPartCT, badPartBody, 400, "invalid"},
		{"no module", "POST", "/v1/jobs", "operator", noModCT, noModBody, 400, "invalid"},
		{"not a module", "POST", "/v1/jobs", "operator", junkCT, junkBody, 400, "invalid"},
		{"multipart without boundary", "POST", "/v1/jobs", "operator", "multipart/form-data", goodBody, 400, "invalid"},
		{"bad base64", "POST", "/v1/jobs", "operator", "application/json", []byte(`{"manifest":"x","module":"!!!"}`), 400, "invalid"},
		{"unknown JSON field in submission", "POST", "/v1/jobs", "operator", "application/json", []byte(`{"manifest":"x","module":"AAAA","x":1}`), 400, "invalid"},
		{"bad manifest", "POST", "/v1/jobs", "operator", "application/json", subJSON(map[string]any{"manifest": "version: 9\nbogus: 1\n", "module": aq.Module}), 400, "invalid"},
		{"bad job id", "POST", "/v1/jobs", "operator", "application/json", subJSON(map[string]any{"id": "../x", "manifest": string(aq.Manifest), "module": aq.Module}), 400, "invalid"},
		{"module and module_sha256", "POST", "/v1/jobs", "operator", bothCT, bothBody, 400, "invalid"},
		{"module_sha256 not hex", "POST", "/v1/jobs", "operator", "application/json", subJSON(map[string]any{"manifest": string(aq.Manifest), "module_sha256": strings.ToUpper(unknown)}), 400, "invalid"},
		{"module_sha256 never uploaded", "POST", "/v1/jobs", "operator", "application/json", subJSON(map[string]any{"manifest": string(aq.Manifest), "module_sha256": unknown}), 404, "not_found"},
		{"another operator's module", "POST", "/v1/jobs/dry-run", "operator", "application/json", subJSON(map[string]any{"manifest": string(aq.Manifest), "module_sha256": bMod.SHA256}), 404, "not_found"},
		{"module upload as multipart", "POST", "/v1/modules", "operator", goodCT, goodBody, 415, "invalid"},
		{"module upload without content type", "POST", "/v1/modules", "operator", "", aq.Module, 415, "invalid"},
		{"empty module upload", "POST", "/v1/modules", "operator", "application/wasm", []byte{}, 400, "invalid"},
		{"not a module upload", "POST", "/v1/modules", "operator", "application/wasm", []byte("not wasm at all"), 400, "invalid"},
		{"oversized module upload", "POST", "/v1/modules", "operator", "application/octet-stream", big, 413, "limit_exceeded"},
		{"module upload by the authority", "POST", "/v1/modules", "authority", "application/wasm", aq.Module, 403, "forbidden"},
		{"review without reason", "POST", "/v1/reviews/job-x", "authority", "application/json", []byte(`{"approve":true}`), 400, "invalid"},
		{"dataset outside the data dir", "POST", "/v1/datasets", "authority", "application/json", []byte(`{"name":"x","location":"../../etc/passwd","sharing":"open","level":1}`), 400, "invalid"},
		{"bad wait", "GET", "/v1/jobs/job-x?wait=forever&state=admitted", "operator", "", nil, 400, "invalid"},
		{"bad seq", "GET", "/v1/ledger/proofs/inclusion?seq=-1", "", "", nil, 400, "invalid"},
		{"unknown state", "GET", "/v1/jobs?state=dancing", "operator", "", nil, 400, "invalid"},
		{"method not allowed", "DELETE", "/v1/jobs", "operator", "", nil, 405, "invalid"},
		{"unknown path", "GET", "/v1/nothing", "operator", "", nil, 404, "not_found"},
		{"malformed authorization", "GET", "/v1/jobs", "", "", nil, 401, "unauthenticated"},
		{"garbage token", "GET", "/healthz", "garbage", "", nil, 401, "unauthenticated"},
	}
	e.tokens["garbage"] = "cove_0123456789abcdef_" + strings.Repeat("A", 43)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != nil {
				body = bytes.NewReader(c.body)
			}
			req, _ := http.NewRequestWithContext(context.Background(), c.method, e.url+c.path, body)
			if c.ct != "" {
				req.Header.Set("Content-Type", c.ct)
			}
			if tok := e.tokens[c.who]; tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			if c.name == "malformed authorization" {
				req.Header.Set("Authorization", "Basic abc")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb service.ErrorBody
			b, _ := io.ReadAll(resp.Body)
			json.Unmarshal(b, &eb)
			if resp.StatusCode != c.status || eb.Code != c.code || eb.Message == "" {
				t.Errorf("%d %q, want %d %q: %s", resp.StatusCode, eb.Code, c.status, c.code, truncate(b))
			}
			if strings.Contains(string(b), "goroutine") || strings.Contains(string(b), ".go:") {
				t.Errorf("answer holds a stack: %s", b)
			}
		})
	}
}
