package snapshot

import (
	"context"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// BenchmarkRestore: Restore of a 16 MiB guest that dirtied 1, 16 (64 KiB)
// or 64 pages, contiguous or scattered (every third page).
func BenchmarkRestore(b *testing.B) {
	l, err := NewLayout(256)
	if err != nil {
		b.Fatal(err)
	}
	mem := make([]byte, l.MemoryBytes())
	snap := Take(mem, l)
	for _, c := range []struct {
		name   string
		pages  int
		stride int
	}{
		{"pages=1", 1, 1}, {"pages=16", 16, 1}, {"pages=16/scattered", 16, 3}, {"pages=64", 64, 1}, {"pages=64/scattered", 64, 3},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(c.pages * PageSize))
			for b.Loop() {
				for p := range c.pages {
					mem[l.MapOffset+uint64(p*c.stride)] = 1
				}
				if Restore(mem, snap, l) != c.pages {
					b.Fatal("restored the wrong pages")
				}
			}
		})
	}
}

// BenchmarkUnit is a unit's whole reset on a real instance (wazero's
// compiler): the guest fills 1, 16 or 64 pages, then Restore and setting
// every restorable global back. restore-ns/op is the reset alone.
func BenchmarkUnit(b *testing.B) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	mod := instrument(b, load(b, "loop"), 256)
	in := instantiate(b, rt, compile(b, rt, mod.Wasm))
	mem := memory(b, in)
	snap := Take(mem, mod.Layout)
	saved := globals(b, in, mod)
	var gs []api.MutableGlobal
	for _, g := range mod.Globals {
		gs = append(gs, in.ExportedGlobal(g.Name).(api.MutableGlobal))
	}
	fill := in.ExportedFunction("fill")
	for _, pages := range []int{1, 16, 64} {
		b.Run("pages="+itoa(pages), func(b *testing.B) {
			var reset time.Duration
			for b.Loop() {
				if _, err := fill.Call(ctx, 0, uint64(pages*PageSize)); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				Restore(mem, snap, mod.Layout)
				for i, g := range gs {
					g.Set(saved[i])
				}
				reset += time.Since(start)
			}
			b.ReportMetric(float64(reset.Nanoseconds())/float64(b.N), "restore-ns/op")
		})
	}
}

// BenchmarkStoreLoop: the instrumentation's slowdown on store-heavy loops
// (wazero's compiler): 65536 stores (or load-add-store updates) per call,
// original against rewritten.
func BenchmarkStoreLoop(b *testing.B) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	orig := load(b, "loop")
	mod := instrument(b, orig, 16)
	const n = 1 << 16
	for _, fn := range []string{"store", "update"} {
		for _, v := range []struct {
			name string
			bin  []byte
		}{{"original", orig}, {"instrumented", mod.Wasm}} {
			b.Run(fn+"/"+v.name, func(b *testing.B) {
				in := instantiate(b, rt, compile(b, rt, v.bin))
				f := in.ExportedFunction(fn)
				for b.Loop() {
					if _, err := f.Call(ctx, n); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/store")
			})
		}
	}
}

// BenchmarkInstrument: the rewrite of the Go example guest (2 MB).
func BenchmarkInstrument(b *testing.B) {
	bin := readGuest("../../../examples/airquality/job.wasm")(b)
	b.SetBytes(int64(len(bin)))
	for b.Loop() {
		if _, err := Instrument(bin, 256); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(n int) string {
	return string(appendDecimal(nil, n))
}

func appendDecimal(b []byte, n int) []byte {
	if n >= 10 {
		b = appendDecimal(b, n/10)
	}
	return append(b, byte('0'+n%10))
}
