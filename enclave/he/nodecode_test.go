package he

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// allowedDecode lists the functions that may call a method named Decode:
// BGV's exact decoding, which reveals m mod t and no key-dependent noise.
var allowedDecode = map[string]bool{"decodeExactBGV": true}

// decodeCalls returns "file:line in func" for every call of a method named
// Decode (not DecodePublic) in src outside the allowed functions.
func decodeCalls(fset *token.FileSet, f *ast.File) []string {
	var out []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if ok && sel.Sel.Name == "Decode" && !allowedDecode[fn.Name.Name] {
				out = append(out, fset.Position(call.Pos()).String()+" in "+fn.Name.Name)
			}
			return true
		})
	}
	return out
}

// TestNoReleasePathCallsDecode parses every non-test Go file of enclave/he
// and its subpackages and fails on any call of a Decode method outside
// decodeExactBGV: CKKS values leave only through DecodePublic.
func TestNoReleasePathCallsDecode(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		for _, c := range decodeCalls(fset, f) {
			t.Errorf("Decode called at %s: use DecodePublic", c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 8 {
		t.Fatalf("scanned %d files: the walk missed the package", files)
	}
	t.Logf("scanned %d files: 0 Decode calls outside %v", files, allowedDecode)
}

// TestDecodeScannerCatches is the negative control: the scanner finds a
// Decode call on a CKKS encoder, through a field and inside a closure, and
// lets DecodePublic pass.
func TestDecodeScannerCatches(t *testing.T) {
	src := `package he
func leak(ecd *ckks.Encoder, pt *rlwe.Plaintext, ev *ckks.Evaluator) {
	vals := make([]float64, 8)
	_ = ecd.Decode(pt, vals)
	func() { _ = ev.Encoder.Decode(pt, vals) }()
	_ = ecd.DecodePublic(pt, vals, 20)
}
func decodeExactBGV() { _ = bgvEncoder.Decode(nil, nil) }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "leak.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeCalls(fset, f); len(got) != 2 {
		t.Fatalf("scanner found %d Decode calls, want 2: %v", len(got), got)
	}
}

// releasePaths are the packages outside enclave/he through which HE results
// reach their recipient: the jobs that release them, the API that serves
// them, the SDK and the CLI that open them. In their files that use HE
// (import enclave/he or lattigo), no method named Decode may be called.
var releasePaths = []string{"../../jobs", "../../service", "../../sdk/client", "../../cmd/cove"}

// TestNoAPIReleasePathCallsDecode extends the scan to the release paths:
// the API, the SDK and the CLI open releases and query replies only through
// Operator.Open and OpenReply (DecodePublic).
func TestNoAPIReleasePathCallsDecode(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	for _, dir := range releasePaths {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != dir {
				return filepath.SkipDir // subpackages and testdata are not release paths
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			usesHE := false
			for _, imp := range f.Imports {
				p := strings.Trim(imp.Path.Value, `"`)
				usesHE = usesHE || p == "github.com/covedata/cove/enclave/he" || strings.HasPrefix(p, "github.com/tuneinsight/lattigo")
			}
			if !usesHE {
				return nil
			}
			if f, err = parser.ParseFile(fset, path, nil, 0); err != nil {
				return err
			}
			files++
			for _, c := range decodeCalls(fset, f) {
				t.Errorf("Decode called at %s: HE values leave through Operator.Open / OpenReply only", c)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 5 {
		t.Fatalf("scanned %d files that use HE on the release paths: the walk missed them", files)
	}
	t.Logf("scanned %d files of %v that use HE: 0 Decode calls", files, releasePaths)
}
