package service

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

// metrics are kept by hand in the Prometheus text exposition format: a few
// counters and histograms do not justify a dependency.
type metrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64 // route, status
	latency  map[string]*histogram
	jobs     map[string]uint64 // end state
	jobTime  *histogram
}

var buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type histogram struct {
	counts []uint64
	sum    float64
	n      uint64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(buckets))
	}
	for i, b := range buckets {
		if v <= b {
			h.counts[i]++
		}
	}
	h.sum += v
	h.n++
}

func newMetrics() *metrics {
	return &metrics{requests: map[[2]string]uint64{}, latency: map[string]*histogram{}, jobs: map[string]uint64{}, jobTime: &histogram{}}
}

func (m *metrics) request(route string, status int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[2]string{route, strconv.Itoa(status)}]++
	h := m.latency[route]
	if h == nil {
		h = &histogram{}
		m.latency[route] = h
	}
	h.observe(d.Seconds())
}

func (m *metrics) jobEnded(state string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.jobs[state]++
	if d > 0 {
		m.jobTime.observe(d.Seconds())
	}
}

func (m *metrics) write(w io.Writer, queued, running int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintln(w, "# HELP cove_http_requests_total HTTP requests by route pattern and status.")
	fmt.Fprintln(w, "# TYPE cove_http_requests_total counter")
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		fmt.Fprintf(w, "cove_http_requests_total{route=%q,code=%q} %d\n", k[0], k[1], m.requests[k])
	}
	fmt.Fprintln(w, "# HELP cove_http_request_seconds HTTP request latency by route pattern.")
	fmt.Fprintln(w, "# TYPE cove_http_request_seconds histogram")
	routes := make([]string, 0, len(m.latency))
	for r := range m.latency {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	for _, r := range routes {
		writeHist(w, "cove_http_request_seconds", fmt.Sprintf("route=%q,", r), m.latency[r])
	}
	fmt.Fprintln(w, "# HELP cove_jobs_ended_total Jobs that ended, by state.")
	fmt.Fprintln(w, "# TYPE cove_jobs_ended_total counter")
	states := make([]string, 0, len(m.jobs))
	for s := range m.jobs {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		fmt.Fprintf(w, "cove_jobs_ended_total{state=%q} %d\n", s, m.jobs[s])
	}
	fmt.Fprintln(w, "# HELP cove_job_run_seconds Time from a worker taking a job to its end.")
	fmt.Fprintln(w, "# TYPE cove_job_run_seconds histogram")
	writeHist(w, "cove_job_run_seconds", "", m.jobTime)
	fmt.Fprintln(w, "# HELP cove_scheduler_queued Jobs admitted and waiting for a worker.")
	fmt.Fprintln(w, "# TYPE cove_scheduler_queued gauge")
	fmt.Fprintf(w, "cove_scheduler_queued %d\n", queued)
	fmt.Fprintln(w, "# HELP cove_scheduler_running Jobs running.")
	fmt.Fprintln(w, "# TYPE cove_scheduler_running gauge")
	fmt.Fprintf(w, "cove_scheduler_running %d\n", running)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintln(w, "# HELP go_memstats_heap_inuse_bytes Heap bytes in use.")
	fmt.Fprintln(w, "# TYPE go_memstats_heap_inuse_bytes gauge")
	fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\n", ms.HeapInuse)
	fmt.Fprintln(w, "# HELP go_goroutines Goroutines.")
	fmt.Fprintln(w, "# TYPE go_goroutines gauge")
	fmt.Fprintf(w, "go_goroutines %d\n", runtime.NumGoroutine())
}

func writeHist(w io.Writer, name, labels string, h *histogram) {
	for i, b := range buckets {
		var c uint64
		if h.counts != nil {
			c = h.counts[i]
		}
		fmt.Fprintf(w, "%s_bucket{%sle=%q} %d\n", name, labels, strconv.FormatFloat(b, 'g', -1, 64), c)
	}
	fmt.Fprintf(w, "%s_bucket{%sle=\"+Inf\"} %d\n", name, labels, h.n)
	trim := labels
	if trim != "" {
		trim = "{" + trim[:len(trim)-1] + "}"
	}
	fmt.Fprintf(w, "%s_sum%s %g\n", name, trim, h.sum)
	fmt.Fprintf(w, "%s_count%s %d\n", name, trim, h.n)
}
