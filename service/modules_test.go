package service_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/sdk/client"

	_ "modernc.org/sqlite"
)

// counting counts requests by method and path, and submissions that carry
// a module.
type counting struct {
	mu     sync.Mutex
	n      map[string]int
	inline atomic.Int64
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.Method+" "+r.URL.Path]++
	c.mu.Unlock()
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		c.inline.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *counting) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// TestModuleUploadOnce: a client uploads a module once, however many jobs
// name it, even at once; a job named by hash alone runs from the stored
// module; another
// operator cannot name it without uploading it; uploading is idempotent;
// the server's answer is the module's sha256.
func TestModuleUploadOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := startServer(t, t.TempDir(), serviceOptions())
	e.issue(t)
	e.setupDemo(t)
	rt := &counting{n: map[string]int{}}
	op, err := client.New(e.url, client.WithToken(e.tokens["operator"]), client.WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	aq := examples.AirQuality()
	var wg sync.WaitGroup
	ids := make(chan string, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := op.Submit(ctx, client.Submission{Manifest: aq.Manifest, Module: aq.Module})
			if err != nil {
				t.Error(err)
			}
			ids <- j.ID
		}()
	}
	wg.Wait()
	close(ids)
	if t.Failed() {
		t.FailNow()
	}
	// Admission is what is tested here: the jobs need not run.
	for id := range ids {
		op.Cancel(ctx, id, "not needed")
	}
	if n := rt.count("POST /v1/modules"); n != 1 {
		t.Errorf("%d uploads for 3 submissions of one module, want 1", n)
	}
	if n := rt.inline.Load(); n != 0 {
		t.Errorf("%d submissions carried the module, want 0", n)
	}
	sum := sha256.Sum256(aq.Module)
	want := hex.EncodeToString(sum[:])
	info, err := op.UploadModule(ctx, aq.Module)
	if err != nil || info.SHA256 != want || info.Size != int64(len(aq.Module)) {
		t.Fatalf("upload again: %+v %v, want %s", info, err, want)
	}
	// By hash alone, without the bytes.
	j, err := op.Submit(ctx, client.Submission{Manifest: aq.Manifest, ModuleSHA256: want})
	if err != nil || j.ModuleSHA256 != want {
		t.Fatalf("submit by hash: %+v %v", j, err)
	}
	if j, err = op.Wait(ctx, j.ID, nil); err != nil || j.State != client.StateReleased {
		t.Fatalf("job by hash: %+v %v", j, err)
	}
	// Operator B names A's upload: as unknown as no upload.
	opB := e.client(t, "operator-b")
	if _, err := opB.Submit(ctx, client.Submission{Manifest: aq.Manifest, ModuleSHA256: want}); !errors.Is(err, cove.ErrNotFound) {
		t.Fatalf("operator B naming A's module: %v, want not_found", err)
	}
	// With the bytes, B's client uploads it and gets on to admission
	// (B holds no grant the example names).
	if _, err := opB.Submit(ctx, client.Submission{Manifest: aq.Manifest, Module: aq.Module}); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("operator B with the module: %v, want a rejection", err)
	}
	// A client that sends modules inline still works.
	inline, _ := client.New(e.url, client.WithToken(e.tokens["operator"]), client.WithInlineModules())
	if j, err := inline.Submit(ctx, client.Submission{Manifest: aq.Manifest, Module: aq.Module}); err != nil {
		t.Fatalf("inline submission: %v", err)
	} else {
		inline.Cancel(ctx, j.ID, "not needed")
	}
}

// TestLedgerViewTamper: reports rest on the ledger as verified. An entry
// changed in the database behind the server's back is caught when a report
// folds it (statements), and by the periodic whole verification (the
// disclosure, whose fold is cached while the ledger does not grow); the
// failure sticks.
func TestLedgerViewTamper(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		every time.Duration
		path  string
	}{
		{"statements fold", time.Hour, "/v1/statements"},
		{"periodic verification", 50 * time.Millisecond, "/v1/disclosure"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opt := serviceOptions()
			opt.LedgerVerifyEvery = tt.every
			e := startServer(t, t.TempDir(), opt)
			e.issue(t)
			e.setupDemo(t)
			auth := e.client(t, "authority")
			if _, err := auth.Disclosure(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := auth.Statements(ctx, "", ""); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "cove.db")+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, `UPDATE ledger SET body = '{"tampered":true}' WHERE seq = 2`); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				req, _ := http.NewRequestWithContext(ctx, "GET", e.url+tt.path, nil)
				req.Header.Set("Authorization", "Bearer "+e.tokens["authority"])
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("GET %s after tampering: %d, want 503", tt.path, resp.StatusCode)
				}
				time.Sleep(20 * time.Millisecond)
			}
			// Sticky: the public disclosure fails too.
			if _, err := e.client(t, "none").Disclosure(ctx); !errors.Is(err, cove.ErrLedger) {
				t.Fatalf("disclosure after the failure: %v, want ledger_failure", err)
			}
		})
	}
}
