package snapshot

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rebuild testdata/**/*.wasm from the .wat sources with wat2wasm")

// watFiles are the WAT sources under testdata.
func watFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"testdata/*.wat", "testdata/*/*.wat"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

// wat2wasm compiles a WAT file; its first line may name flags
// (";; wat2wasm: --enable-threads").
func wat2wasm(t testing.TB, path string) []byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{path, "--output=-"}
	first, _, _ := bufio.NewReader(bytes.NewReader(src)).ReadLine()
	if f, ok := strings.CutPrefix(string(first), ";; wat2wasm:"); ok {
		args = append(args, strings.Fields(f)...)
	}
	out, err := exec.Command("wat2wasm", args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("wat2wasm %s: %s", path, ee.Stderr)
		}
		t.Fatal(err)
	}
	return out
}

// TestTestdataUpToDate checks that every committed testdata module is its
// WAT source compiled (with -update: rebuilds them). It skips without
// wat2wasm; the other tests read the committed modules.
func TestTestdataUpToDate(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Skip("wat2wasm (wabt) not installed")
	}
	for _, w := range watFiles(t) {
		bin := wat2wasm(t, w)
		path := strings.TrimSuffix(w, ".wat") + ".wasm"
		if *update {
			if err := os.WriteFile(path, bin, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(have, bin) {
			t.Errorf("%s is not %s compiled: run go test -run TestTestdataUpToDate -update", path, w)
		}
	}
}

// load reads a committed testdata module by name (without .wasm).
func load(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
