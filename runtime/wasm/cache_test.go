package wasm

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/covedata/cove/examples"
)

// TestCompilationCacheIsReused compiles a module with one engine, then with a
// fresh engine over the same cache directory: the second compile must add
// nothing to the cache (wazero keys it by the module's sha256) and load the
// code instead of compiling it again.
func TestCompilationCacheIsReused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	module := examples.AirQuality().Module
	compile := func() time.Duration {
		eng, err := NewEngine(ctx, NewConfig().WithCompilationCacheDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close(ctx)
		start := time.Now()
		m, err := eng.Compile(ctx, module)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		m.Close(ctx)
		return took
	}
	cold := compile()
	files := cacheFiles(t, dir)
	if len(files) == 0 {
		t.Fatal("the first compile wrote nothing to the cache")
	}
	warm := compile()
	if again := cacheFiles(t, dir); len(again) != len(files) {
		t.Fatalf("the second compile added cache entries: %d then %d", len(files), len(again))
	}
	t.Logf("2 MB Go guest: cold compile %v, from the cache %v (%d cache files)", cold.Round(time.Millisecond), warm.Round(time.Millisecond), len(files))
}

func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
