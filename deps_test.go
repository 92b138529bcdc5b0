package cove_test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/covedata/cove"

// allowed lists, per package of the module, the module's packages it may
// import directly. Dependencies point one way: leaves know nothing of each
// other, jobs composes them, and nothing imports cmd.
var allowed = map[string][]string{
	"":                          {},
	"ledger":                    {""},
	"policy":                    {""},
	"enclave/he":                {"", "enclave/he/internal/wire"},
	"enclave/dpaudit":           {"", "enclave", "enclave/internal/stattest"},
	"enclave/internal/stattest": {},
	"internal/miniotest":        {},
	"sdk/client":                {"", "enclave/he"},
	"mock":                      {"", "jobs", "policy", "runtime/wasm", "runtime/isolate", "store", "connectors"},
	"service":                   {"", "connectors", "jobs", "ledger", "policy", "report", "runtime/wasm", "runtime/isolate", "store", "mock", "demodata"},
	"enclave/he/internal/wire":  {},
	"enclave":                   {""},
	"connectors":                {""},
	"demodata":                  {""},
	"examples":                  {},
	"runtime/wasm":              {"", "runtime/internal/abi", "runtime/internal/snapshot"},
	"runtime/internal/abi":      {},
	"runtime/internal/snapshot": {""},
	"plan":                      {""},
	"runtime/isolate":           {"", "runtime/wasm", "runtime/wasmer", "runtime/internal/abi"},
	"runtime/wasmer":            {"", "runtime/wasm", "runtime/internal/abi"},
	"report":                    {"", "ledger"},
	"store":                     {"", "ledger", "policy"},
	"jobs":                      {"enclave/he", "", "connectors", "enclave", "ledger", "plan", "policy", "runtime/wasm", "store"},
	"internal/demo":             {"runtime/isolate", "report", "", "connectors", "demodata", "examples", "jobs", "ledger", "policy", "runtime/wasm", "store"},
	"internal/guestbuild":       {},
	"internal/tools/mkdemodata": {""},
	"cmd/cove":                  {"*"}, // the binary composes everything; nothing imports it
	"bench":                     {"*"},
}

func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg := rel(fields[0])
		rules, known := allowed[pkg]
		if !known {
			if strings.HasPrefix(pkg, "examples/") || strings.Contains(pkg, "/testdata/") {
				continue // guests: they import only the guest SDK module
			}
			t.Errorf("package %q has no dependency rule: add it to allowed", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) || strings.HasPrefix(imp, module+"/sdk/guest") {
				continue
			}
			dep := rel(imp)
			if strings.HasPrefix(dep, "cmd/") {
				t.Errorf("%s imports %s: nothing imports cmd", pkg, dep)
			}
			ok := false
			for _, a := range rules {
				ok = ok || a == "*" || a == dep
			}
			if !ok {
				t.Errorf("%s must not import %s", pkg, dep)
			}
		}
	}
}

func rel(path string) string {
	if path == module {
		return ""
	}
	return strings.TrimPrefix(path, module+"/")
}

// TestGuestSDKHasNoDependencies keeps the guest SDK a module of its own that
// drags nothing of the host into a job.
func TestGuestSDKHasNoDependencies(t *testing.T) {
	b, err := os.ReadFile("sdk/guest/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "require") {
		t.Fatalf("sdk/guest/go.mod requires modules:\n%s", b)
	}
}
