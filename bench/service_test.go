package bench

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/mock"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/sdk/client"
	"github.com/covedata/cove/service"
)

// BenchmarkService100Jobs: 100 operators' small jobs submitted at once to
// `cove serve` (in process, over loopback HTTP, GOMAXPROCS 2), each through
// the SDK's submit-and-wait. Reports the latency from submission to release
// (p50, p99), the process's peak RSS and peak Go heap, and the peak RSS
// added per running guest. The jobs are the air-quality example on a
// 2,000-row mock of its dataset.
//
//	go test -run '^$' -bench Service100Jobs -benchtime 3x ./bench/
func BenchmarkService100Jobs(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	const jobs, workers = 100, 2
	ctx := context.Background()
	dir := b.TempDir()
	srv, url, stop := benchServer(b, dir, workers)
	defer stop()
	authTok, _, _ := srv.Tokens().Create(ctx, service.Authority, "admin", "")
	auth, _ := client.New(url, client.WithToken(authTok))

	// A small mock of the air-quality data, registered as its own dataset.
	d := policy.Dataset{Name: "aq-small", Title: "air quality, mock", Sharing: policy.Open, Level: 1, Location: "x"}
	for _, c := range []struct{ n, t string }{{"year", "int64"}, {"month", "int64"}, {"day", "int64"}, {"hour", "int64"}, {"PM2.5", "float64"}, {"station", "utf8"}} {
		d.Columns = append(d.Columns, policy.Column{Name: c.n, Type: c.t})
	}
	d.Columns[5].Domain = demodata.AirQualityStations()
	rec, err := mock.Generate(d, mock.Options{Rows: 2000, Seed: 1, Domains: map[string][]string{"year": {"2013", "2014", "2015", "2016", "2017"}}})
	if err != nil {
		b.Fatal(err)
	}
	file, err := mock.Parquet(rec)
	rec.Release()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "datasets", "aq-small.parquet"), file, 0o644); err != nil {
		b.Fatal(err)
	}
	if _, err := auth.RegisterDataset(ctx, client.Dataset{Name: "aq-small", Title: "air quality, mock", Domain: "environment", Provider: "bench",
		Sharing: "open", Level: 1, Location: "datasets/aq-small.parquet", Columns: []client.Column{{Name: "station", Domain: demodata.AirQualityStations()}}}); err != nil {
		b.Fatal(err)
	}
	ex := examples.AirQuality()
	manifest := []byte(strings.ReplaceAll(string(ex.Manifest), "dataset: beijing-air-quality", "dataset: aq-small"))

	// One operator per job, each with its own grant: fairness is exercised too.
	ops := make([]*client.Client, jobs)
	for i := range jobs {
		name := "op-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		tok, _, _ := srv.Tokens().Create(ctx, service.Operator, name, "")
		ops[i], _ = client.New(url, client.WithToken(tok), client.WithPollWait(5*time.Second))
		now := time.Now()
		if _, err := auth.CreateGrant(ctx, client.Grant{ID: "g-" + name, Operator: name, Mode: "scenario", Datasets: []string{"aq-small"},
			Purposes: []string{"public-research"}, Columns: map[string][]string{"aq-small": {"*"}}, Mechanisms: []string{"dp"},
			EpsilonCap: map[string]float64{"aq-small": 1e6}, Pricing: "public-welfare", ValidFrom: now.Add(-time.Minute), ValidUntil: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	perOp := func(i int) []byte {
		return []byte(strings.ReplaceAll(string(manifest), "grant: g-acme-2026", "grant: g-"+"op-"+string(rune('a'+i/26))+string(rune('a'+i%26))))
	}
	// Warm the compilation cache.
	if _, err := ops[0].SubmitAndWait(ctx, client.Submission{Manifest: perOp(0), Module: ex.Module}, nil); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	baseRSS := maxRSS()

	var lat []time.Duration
	var peakHeap uint64
	b.ResetTimer()
	for range b.N {
		done := make(chan struct{})
		go func() {
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			var ms runtime.MemStats
			for {
				select {
				case <-done:
					return
				case <-t.C:
					runtime.ReadMemStats(&ms)
					peakHeap = max(peakHeap, ms.HeapInuse)
				}
			}
		}()
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				if _, err := ops[i].SubmitAndWait(ctx, client.Submission{Manifest: perOp(i), Module: ex.Module}, nil); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(done)
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))].Seconds() * 1000 }
	rss := maxRSS()
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	// Requests hold whole modules (2 MB each, clients in the same process),
	// so RSS growth bounds, and overstates, what guests use; each guest's
	// linear memory is capped at service.DefaultGuestMemoryPages (64 MiB).
	b.ReportMetric(float64(rss-min(rss, baseRSS))/(1<<20), "rss-growth-MiB")
	b.ReportMetric(float64(service.DefaultGuestMemoryPages)*64/1024, "guest-cap-MiB")
	b.ReportMetric(float64(jobs*b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// maxRSS is the process's peak resident set, in bytes.
func maxRSS() uint64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return uint64(ru.Maxrss) * 1024
}

func benchServer(b *testing.B, dir string, workers int) (*service.Server, string, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := service.New(ctx, service.Options{DataDir: dir, Workers: workers,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln, "", ""); close(done) }()
	return srv, "http://" + ln.Addr().String(), func() { cancel(); <-done; srv.Close() }
}
