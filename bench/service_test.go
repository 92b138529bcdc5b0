package bench

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/mock"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/sdk/client"
	"github.com/covedata/cove/service"
)

// BenchmarkService100Jobs: 100 operators' small jobs submitted at once to
// `cove serve` (in process, over loopback HTTP, GOMAXPROCS 2), each through
// the SDK's submit-and-wait. Reports the latency from submission to release
// (p50, p99) over all rounds, and apart for the first round, where each
// operator's client uploads the module once (cold), and the later ones,
// where submissions name it by hash (warm); the process's peak RSS and peak
// Go heap; and the memory of one running guest (its linear memory and
// instance, measured on its own). The jobs are the air-quality example on
// a 2,000-row mock of its dataset.
//
//	go test -run '^$' -bench Service100Jobs -benchtime 2x ./bench/
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
	// COVE_BENCH_GUEST=c: the C air-quality guest (a few KB) instead of
	// the 2 MB Go guest; each runs in a sandbox process unless
	// COVE_BENCH_IN_PROCESS=1.
	ex := examples.AirQuality()
	if os.Getenv("COVE_BENCH_GUEST") == "c" {
		ex = examples.AirQualityC()
	}
	b.Logf("guest %s (%d KB), in process %v", ex.Name, len(ex.Module)>>10, os.Getenv("COVE_BENCH_IN_PROCESS") == "1")
	manifest := []byte(strings.ReplaceAll(string(ex.Manifest), "dataset: beijing-air-quality", "dataset: aq-small"))

	// One operator per job, each with its own grant: fairness is exercised
	// too. COVE_BENCH_OPERATORS=k: the 100 jobs come from k operators
	// (job i from operator i mod k), as from batch pipelines; sandboxes are
	// then reused between one operator's jobs (isolate.Config.WithReuse).
	nops := jobs
	if k, err := strconv.Atoi(os.Getenv("COVE_BENCH_OPERATORS")); err == nil && k > 0 && k < jobs {
		nops = k
	}
	b.Logf("%d jobs from %d operators", jobs, nops)
	ops := make([]*client.Client, nops)
	for i := range nops {
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

	var lat, cold, warm []time.Duration
	var peakHeap uint64
	cpu0, child0 := cpuTime(), childCPU()
	b.ResetTimer()
	for round := range b.N {
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
				if _, err := ops[i%nops].SubmitAndWait(ctx, client.Submission{Manifest: perOp(i % nops), Module: ex.Module}, nil); err != nil {
					b.Error(err)
					return
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if round == 0 {
					cold = append(cold, d)
				} else {
					warm = append(warm, d)
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(done)
	}
	b.StopTimer()
	elapsed := b.Elapsed()
	cpu := cpuTime() - cpu0
	q := func(lat []time.Duration, p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		slices.Sort(lat)
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Seconds() * 1000
	}
	rss := maxRSS()
	b.ReportMetric(q(lat, 0.50), "p50-ms")
	b.ReportMetric(q(lat, 0.99), "p99-ms")
	b.ReportMetric(q(cold, 0.99), "cold-p99-ms")
	b.ReportMetric(q(warm, 0.50), "warm-p50-ms")
	b.ReportMetric(q(warm, 0.99), "warm-p99-ms")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(rss-min(rss, baseRSS))/(1<<20), "rss-growth-MiB")
	b.ReportMetric(float64(jobs*b.N)/elapsed.Seconds(), "jobs/s")
	// CPU time (user and system, server and in-process clients) per job:
	// what the latencies come to on a machine whose cores are the
	// process's alone, whatever else runs beside it.
	b.ReportMetric(cpu.Seconds()*1000/float64(jobs*b.N), "cpu-ms/job")
	// CPU time of the sandbox processes that ended during the rounds (those
	// still waiting for a next job are not counted yet).
	b.ReportMetric((childCPU()-child0).Seconds()*1000/float64(jobs*b.N), "sandbox-cpu-ms/job")
	b.ReportMetric(guestMemory(b, ex.Module, manifest, file)/(1<<20), "guest-MiB")
	b.ReportMetric(float64(service.DefaultGuestMemoryPages)*64/1024, "guest-cap-MiB")
}

// guestMemory is the Go heap one running guest of the job holds (wazero
// keeps linear memory on the Go heap): instances started as the service
// starts them, each having processed one batch of the data, measured
// together and divided.
func guestMemory(b *testing.B, module, manifest, parquet []byte) float64 {
	const n = 8
	ctx := context.Background()
	m, err := jobs.ParseManifest(manifest)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "data.parquet")
	if err := os.WriteFile(path, parquet, 0o644); err != nil {
		b.Fatal(err)
	}
	rd, err := connectors.OpenFile(path, connectors.Options{Columns: m.Literal().Columns})
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Release()
	if !rd.Next() {
		b.Fatal("no batch", rd.Err())
	}
	rec := rd.RecordBatch()
	eng, err := wasm.NewEngine(ctx, wasm.NewConfig().WithMemoryLimitPages(service.DefaultGuestMemoryPages))
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close(ctx)
	mod, err := eng.Compile(ctx, module)
	if err != nil {
		b.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	var insts []wasm.Instance
	for range n {
		inst, err := mod.Instantiate(ctx, m.OutputNames())
		if err != nil {
			b.Fatal(err)
		}
		if err := inst.ProcessBatch(ctx, rec, func(wasm.Emission) error { return nil }); err != nil {
			b.Fatal(err)
		}
		insts = append(insts, inst)
	}
	per := float64(heap()-min(heap(), before)) / n
	for _, inst := range insts {
		inst.Close(ctx)
	}
	return per
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childCPU is the CPU time, user and system, of the process's children
// that have ended and been waited for.
func childCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxRSS is the process's peak resident set, in bytes.
func maxRSS() uint64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return uint64(ru.Maxrss) * 1024
}

func benchServer(b *testing.B, dir string, workers int) (*service.Server, string, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := service.New(ctx, service.Options{DataDir: dir, Workers: workers, InProcessGuests: os.Getenv("COVE_BENCH_IN_PROCESS") == "1",
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
