package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes: the document served at /openapi.json lists
// exactly the routes the server registered, each with its path parameters.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := startServer(t, t.TempDir(), serviceOptions())
	resp, err := http.Get(e.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			var params []string
			if ps, ok := op["parameters"].([]any); ok {
				for _, p := range ps {
					if m := p.(map[string]any); m["in"] == "path" {
						params = append(params, m["name"].(string))
					}
				}
			}
			for _, seg := range strings.Split(path, "/") {
				if strings.HasPrefix(seg, "{") && !slices.Contains(params, strings.Trim(seg, "{}")) {
					t.Errorf("%s %s: path parameter %s undocumented", method, path, seg)
				}
			}
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s: no responses", method, path)
			}
		}
	}
	registered := e.srv.Registered()
	slices.Sort(documented)
	slices.Sort(registered)
	if !slices.Equal(documented, registered) {
		t.Errorf("documented routes differ from registered ones:\ndocumented %v\nregistered %v", documented, registered)
	}
	_ = context.Background
}
