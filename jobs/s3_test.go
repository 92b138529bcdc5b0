package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/internal/miniotest"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

// s3Env puts the air-quality data in a real MinIO bucket and registers it
// as an s3:// dataset.
func s3Env(t *testing.T) (*miniotest.Server, *store.Store, *connectors.S3, string) {
	t.Helper()
	srv := miniotest.Start(t)
	ctx := context.Background()
	mc, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(ctx, "public-data", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := demodata.Open(demodata.AirQuality)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, "public-data", "air/beijing.parquet", bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	s3, err := connectors.NewS3(connectors.S3Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	loc := "s3://public-data/air/beijing.parquet"
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "cove.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sum := sha256.Sum256(b)
	d := policy.Dataset{Name: "beijing-air-quality", Location: loc, SHA256: hex.EncodeToString(sum[:]), Sharing: policy.Open, Level: 1}
	// One station's hourly reading is the unit, unique per row (as
	// Runner.RegisterDataset would find).
	for _, c := range []policy.Column{{Name: "station", Type: "utf8"}, {Name: "year", Type: "int64"}, {Name: "month", Type: "int64"},
		{Name: "day", Type: "int64"}, {Name: "hour", Type: "int64"}, {Name: "PM2.5", Type: "float64"}} {
		if c.Name != "PM2.5" {
			c.Role = policy.PrivacyUnitRole
		}
		d.Columns = append(d.Columns, c)
	}
	d.UnitPerRow = true
	if err := st.RegisterDataset(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGrant(ctx, policy.Grant{ID: "g-acme-2026", Operator: "op", Mode: policy.Scenario, Mechanisms: []string{policy.MechanismDP},
		Pricing: policy.Industry, Purposes: []string{"public-research"}, Datasets: []string{d.Name},
		Columns: map[string][]string{d.Name: {"station", "year", "PM2.5"}}, EpsilonCap: map[string]float64{d.Name: 2},
		ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return srv, st, s3, loc
}

// TestS3DatasetLineageAndOutage runs the air-quality job on data in MinIO:
// the ledger names the object read (ETag); then, with the server killed
// mid-read, a job fails cleanly: clear error, refund, ledger entry, no release.
func TestS3DatasetLineageAndOutage(t *testing.T) {
	srv, st, s3, loc := s3Env(t)
	ctx := context.Background()
	eng, err := wasm.NewEngine(ctx, wasm.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	r := NewRunner(st, eng, NewConfig().WithS3(s3).WithBatchRows(8192))
	job := examples.AirQuality()
	if _, err := r.Run(ctx, Submission{ID: "s3-ok", Operator: "op", Manifest: job.Manifest, Module: job.Module}); err != nil {
		t.Fatal(err)
	}
	text := ledgerText(t, st)
	if !strings.Contains(text, `"dataset_objects"`) || !strings.Contains(text, `"etag"`) || !strings.Contains(text, loc) {
		t.Errorf("ledger does not name the object read")
	}

	// The per-unit C job streams the readings, one guest call per reading:
	// a batch of 8,192 takes tens of ms, so the job is still reading when
	// the store goes away. A dry run compiles the module into the runner's
	// cache, so the job starts reading at once.
	slow := examples.AirQualityC()
	if _, err := r.DryRun(ctx, Submission{Operator: "op", Manifest: slow.Manifest, Module: slow.Module}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, Submission{ID: "s3-outage", Operator: "op", Manifest: slow.Manifest, Module: slow.Module})
		done <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if j, _ := st.Job(ctx, "s3-outage"); j.State == store.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job never started")
		}
	}
	time.Sleep(300 * time.Millisecond) // into the read
	srv.Kill()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("job did not end after the object store went away")
	}
	t.Logf("job with the store killed mid-read: %v", runErr)
	if !errors.Is(runErr, cove.ErrUnavailable) || !strings.Contains(runErr.Error(), loc) || strings.Contains(runErr.Error(), "Head ") {
		t.Fatalf("err = %v, want ErrUnavailable naming %s", runErr, loc)
	}
	j, _ := st.Job(ctx, "s3-outage")
	b, _ := st.Budget(ctx, "g-acme-2026", "beijing-air-quality")
	if j.State != store.StateFailed || b.Reserved != 0 || b.Spent != 0.5 {
		t.Fatalf("after outage: state %s, budget %+v", j.State, b)
	}
	if _, err := st.StoredRelease(ctx, "s3-outage"); !errors.Is(err, cove.ErrNotFound) {
		t.Fatalf("partial data released: %v", err)
	}
}
