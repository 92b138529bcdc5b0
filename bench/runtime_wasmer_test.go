//go:build wasmer

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/internal/guestbuild"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/runtime/wasmer"
)

// BenchmarkRuntimeWasmer compares the engines, in one run (-benchtime=1x),
// on BenchmarkRuntime's table: per-row sum over 10M rows (Go guest per row,
// C guest per row, Go guest on host kernels, and the do-nothing floor), and
// module start of the ~2 MB air-quality Go guest (cold compile, and start
// with a warm compilation cache). Both engines run in process. Ratios are
// native time / guest time.
func BenchmarkRuntimeWasmer(b *testing.B) {
	ctx := context.Background()
	mods := map[string][]byte{}
	for _, g := range []string{"gosum", "kernsum", "noop"} {
		bin, err := guestbuild.Build(ctx, filepath.Join("testdata", g))
		if err != nil {
			b.Fatal(err)
		}
		mods[g] = bin
	}
	if guestbuild.HaveC(ctx) == nil {
		bin, err := guestbuild.BuildC(ctx, filepath.Join("testdata", "csum.c"))
		if err != nil {
			b.Fatal(err)
		}
		mods["csum"] = bin
	}
	cfg := wasm.NewConfig().WithCompilationCacheDir(b.TempDir()).WithMaxEmits(1 << 40)
	wz, err := wasm.NewEngine(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer wz.Close(ctx)
	wr, err := wasmer.NewEngine(ctx, cfg.Limits())
	if err != nil {
		b.Fatal(err)
	}
	defer wr.Close(ctx)
	engines := []struct {
		name string
		rt   wasm.Runtime
	}{{"wazero", wz}, {"wasmer", wr}}
	t := table(runtimeRows)
	defer func() {
		for _, r := range t {
			r.Release()
		}
	}()
	for _, e := range engines { // compile once into the caches
		for _, m := range mods {
			guestRun(b, e.rt, m, t[:0])
		}
	}

	var lines []string
	report := func(name string, native, d time.Duration) {
		ratio := native.Seconds() / d.Seconds()
		lines = append(lines, fmt.Sprintf("| %-40s | %8.1f ms | %6.1f Mrows/s | %5.3f× |", name, d.Seconds()*1e3, float64(runtimeRows)/d.Seconds()/1e6, ratio))
		b.ReportMetric(ratio, strings.ReplaceAll(name, " ", "_")+"/native")
	}
	b.ResetTimer()
	for range b.N {
		var want float64
		nSum := timed(func() { want = nativeSum(t) })
		report("sum: native Go", nSum, nSum)
		for _, c := range []struct{ name, mod string }{
			{"floor: Go guest doing nothing", "noop"},
			{"sum: Go guest, host kernels", "kernsum"},
			{"sum: Go guest per row", "gosum"},
			{"sum: C guest per row", "csum"},
		} {
			if mods[c.mod] == nil {
				continue
			}
			for _, e := range engines {
				got, d := guestRun(b, e.rt, mods[c.mod], t)
				var s float64
				for _, v := range got {
					s += v
				}
				if !close2(s, want) && c.mod != "noop" {
					b.Fatalf("%s (%s): sum %g, want %g", c.name, e.name, s, want)
				}
				report(c.name+" ("+e.name+")", nSum, d)
			}
		}
	}
	b.StopTimer()

	// Module start: a fresh engine each time, as a sandbox process has.
	mod := examples.AirQuality().Module
	start := func(newRT func(wasm.Config) wasm.Runtime, cfg wasm.Config) (compile, total time.Duration) {
		t0 := time.Now()
		rt := newRT(cfg)
		defer rt.Close(ctx)
		m, err := rt.Compile(ctx, mod)
		if err != nil {
			b.Fatal(err)
		}
		compile = time.Since(t0)
		inst, err := m.Instantiate(ctx, []string{"pm25_mean"})
		if err != nil {
			b.Fatal(err)
		}
		total = time.Since(t0)
		_ = inst.Close(ctx)
		return
	}
	news := []struct {
		name string
		new  func(wasm.Config) wasm.Runtime
	}{
		{"wazero", func(c wasm.Config) wasm.Runtime {
			e, err := wasm.NewEngine(ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			return e
		}},
		{"wasmer", func(c wasm.Config) wasm.Runtime {
			e, err := wasmer.NewEngine(ctx, c.Limits())
			if err != nil {
				b.Fatal(err)
			}
			return e
		}},
	}
	for _, n := range news {
		fresh := b.TempDir()
		coldCompile, coldStart := start(n.new, wasm.NewConfig())
		_, _ = start(n.new, wasm.NewConfig().WithCompilationCacheDir(fresh)) // fills the cache
		cachedCompile, cachedStart := start(n.new, wasm.NewConfig().WithCompilationCacheDir(fresh))
		lines = append(lines,
			fmt.Sprintf("| %s: cold compile, %.1f MB Go guest         | %8.1f ms |", n.name, float64(len(mod))/1e6, coldCompile.Seconds()*1e3),
			fmt.Sprintf("| %s: start (engine+compile+instantiate), cold | %8.1f ms |", n.name, coldStart.Seconds()*1e3),
			fmt.Sprintf("| %s: start, warm cache (compile %5.1f ms)     | %8.1f ms |", n.name, cachedCompile.Seconds()*1e3, cachedStart.Seconds()*1e3))
		b.ReportMetric(coldCompile.Seconds()*1e3, n.name+"-cold-compile-ms")
		b.ReportMetric(cachedStart.Seconds()*1e3, n.name+"-cached-start-ms")
	}
	b.Logf("%d rows, GOMAXPROCS %s\n%s", runtimeRows, os.Getenv("GOMAXPROCS"), strings.Join(lines, "\n"))
}
