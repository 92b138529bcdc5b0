package connectors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/internal/miniotest"
)

var (
	sharedOnce   sync.Once
	sharedServer *miniotest.Server
	sharedErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedServer != nil {
		sharedServer.Kill()
		os.RemoveAll(sharedServer.Dir)
	}
	os.Exit(code)
}

// minioServer returns the package's shared MinIO server, starting it on
// first use; it skips the test when MinIO is not installed (fails under CI).
func minioServer(t *testing.T) *miniotest.Server {
	t.Helper()
	bin := miniotest.Require(t)
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cove-minio-")
		if err != nil {
			sharedErr = err
			return
		}
		sharedServer, sharedErr = miniotest.New(bin, dir)
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedServer
}

// store returns a connectors.S3 for srv with the given secret key.
func store(t *testing.T, srv *miniotest.Server, secret string) *connectors.S3 {
	t.Helper()
	s, err := connectors.NewS3(connectors.S3Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// admin is a plain minio-go client for setting up buckets and objects.
func admin(t *testing.T, srv *miniotest.Server) *minio.Client {
	t.Helper()
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bucket creates a fresh bucket named after the test, optionally versioned.
func bucket(t *testing.T, c *minio.Client, versioned bool) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	name = strings.Trim(name[:min(len(name), 50)], "-")
	ctx := context.Background()
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if versioned {
		if err := c.EnableVersioning(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

func put(t *testing.T, c *minio.Client, bucket, key string, b []byte) minio.UploadInfo {
	t.Helper()
	info, err := c.PutObject(context.Background(), bucket, key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestS3MatchesFiles: every demo dataset in every format, read from MinIO,
// gives the batches, aggregates and content hash of the same bytes read
// from a local file.
func TestS3MatchesFiles(t *testing.T) {
	srv := minioServer(t)
	c := admin(t, srv)
	b := bucket(t, c, false)
	s3 := store(t, srv, srv.SecretKey)
	dir := t.TempDir()
	ctx := context.Background()
	for _, ds := range []struct {
		name    string
		columns []string
		agg     func(testing.TB, *connectors.Reader) []string
	}{
		{demodata.AirQuality, []string{"station", "PM2.5"}, stationMeans},
		{demodata.Adult, []string{"sex", "income", "age"}, adultCounts},
	} {
		conv := convert(t, ds.name)
		for _, f := range []struct {
			ext  string
			data []byte
		}{{".parquet", conv.parquet}, {".csv", conv.csv}, {".arrow", conv.ipcFile}, {".arrows", conv.ipcStream}} {
			key := "datasets/" + ds.name + f.ext
			t.Run(key, func(t *testing.T) {
				mem := checked(t)
				path := filepath.Join(dir, ds.name+f.ext)
				if err := os.WriteFile(path, f.data, 0o644); err != nil {
					t.Fatal(err)
				}
				info := put(t, c, b, key, f.data)
				var schema = conv.schema
				if f.ext != ".csv" {
					schema = nil
				}
				open := func(loc string, cols []string) *connectors.Reader {
					r, err := connectors.Open(ctx, loc, connectors.Options{Columns: cols, Schema: schema, Allocator: mem, S3: s3, BatchRows: 5000})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(r.Release)
					return r
				}
				loc := "s3://" + b + "/" + key
				fromFile, fromS3 := open(path, nil), open(loc, nil)
				fpFile, fpS3 := fingerprintOf(t, fromFile), fingerprintOf(t, fromS3)
				if !slices.Equal(fpFile.Columns, fpS3.Columns) || fpFile.Rows != fpS3.Rows {
					t.Errorf("S3 read %+v, file %+v", fpS3, fpFile)
				}
				aggFile, aggS3 := ds.agg(t, open(path, ds.columns)), ds.agg(t, open(loc, ds.columns))
				if !slices.Equal(aggFile, aggS3) {
					t.Errorf("aggregates differ:\nS3   %v\nfile %v", aggS3, aggFile)
				}
				sf, ss := fromFile.Snapshot(), fromS3.Snapshot()
				if ss.SHA256 != sf.SHA256 || ss.Bytes != sf.Bytes || ss.Rows != sf.Rows || ss.Rows != fpFile.Rows {
					t.Errorf("S3 snapshot %+v, file %+v", ss, sf)
				}
				if len(ss.Objects) != 1 || ss.Objects[0].Location != loc || ss.Objects[0].ETag != info.ETag || ss.Objects[0].Bytes != int64(len(f.data)) {
					t.Errorf("S3 snapshot objects %+v, want %s with ETag %s", ss.Objects, loc, info.ETag)
				}
			})
		}
	}
}

// TestS3Prefix reads a dataset split over objects of two formats under a
// prefix, in key order, as one stream equal to the whole file.
func TestS3Prefix(t *testing.T) {
	mem := checked(t)
	srv := minioServer(t)
	c := admin(t, srv)
	b := bucket(t, c, false)
	conv := convert(t, demodata.AirQuality)

	// Halves of the air-quality data: the first as an IPC stream, the
	// second as CSV, plus a folder marker, which is skipped.
	r, err := connectors.OpenBytes("air.parquet", conv.parquet, connectors.Options{BatchRows: 420768 / 2, Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	var halves [2]bytes.Buffer
	for i := 0; r.Next(); i++ {
		if i == 0 {
			w := ipc.NewWriter(&halves[0], ipc.WithSchema(r.Schema()))
			if err := w.Write(r.RecordBatch()); err != nil {
				t.Fatal(err)
			}
			w.Close()
		} else {
			w := csv.NewWriter(&halves[1], r.Schema(), csv.WithHeader(true), csv.WithNullWriter("NA"))
			if err := w.Write(r.RecordBatch()); err != nil {
				t.Fatal(err)
			}
			w.Flush()
		}
	}
	r.Release()
	put(t, c, b, "air/", nil)
	put(t, c, b, "air/part-0.arrows", halves[0].Bytes())
	put(t, c, b, "air/part-1.csv", halves[1].Bytes())
	put(t, c, b, "other/ignored.csv", []byte("x\n1\n"))

	s3 := store(t, srv, srv.SecretKey)
	got, err := connectors.Open(context.Background(), "s3://"+b+"/air/", connectors.Options{Schema: conv.schema, Allocator: mem, S3: s3})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if got.Snapshot().Rows != -1 {
		t.Errorf("Rows before the end = %d, want -1", got.Snapshot().Rows)
	}
	want, err := connectors.OpenBytes("air.parquet", conv.parquet, connectors.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer want.Release()
	fg, fw := fingerprintOf(t, got), fingerprintOf(t, want)
	if !slices.Equal(fg.Columns, fw.Columns) || fg.Rows != fw.Rows {
		t.Errorf("prefix read %+v, file %+v", fg, fw)
	}
	snap := got.Snapshot()
	if len(snap.Objects) != 2 || snap.Objects[0].Location != "s3://"+b+"/air/part-0.arrows" || snap.Objects[1].Location != "s3://"+b+"/air/part-1.csv" {
		t.Fatalf("snapshot objects %+v", snap.Objects)
	}
	manifest := fmt.Sprintf("%s  air/part-0.arrows\n%s  air/part-1.csv\n", snap.Objects[0].SHA256, snap.Objects[1].SHA256)
	if snap.SHA256 != sha256hex([]byte(manifest)) || snap.Rows != 420768 || snap.Bytes != int64(halves[0].Len()+halves[1].Len()) {
		t.Errorf("snapshot %+v", snap)
	}
}

// TestS3Versioned: in a versioned bucket the read is pinned to the version
// seen at open; an overwrite during the read changes nothing.
func TestS3Versioned(t *testing.T) {
	mem := checked(t)
	srv := minioServer(t)
	c := admin(t, srv)
	b := bucket(t, c, true)
	_, air := demo(t, demodata.AirQuality)
	_, adult := demo(t, demodata.Adult)
	v1 := put(t, c, b, "data.parquet", air)
	if v1.VersionID == "" {
		t.Fatal("no version id from a versioned bucket")
	}
	s3 := store(t, srv, srv.SecretKey)
	r, err := connectors.Open(context.Background(), "s3://"+b+"/data.parquet", connectors.Options{Columns: []string{"PM2.5"}, BatchRows: 1000, Allocator: mem, S3: s3})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	put(t, c, b, "data.parquet", adult) // a new version, other content
	var rows int64
	for r.Next() {
		rows += r.RecordBatch().NumRows()
	}
	if err := r.Err(); err != nil || rows != 420768 {
		t.Fatalf("read %d rows, err %v; want the first version whole", rows, err)
	}
	if o := r.Snapshot().Objects[0]; o.VersionID != v1.VersionID || o.ETag != v1.ETag || o.SHA256 != sha256hex(air) {
		t.Errorf("snapshot object %+v, want version %s", o, v1.VersionID)
	}
}

// TestS3ChangedMidRead: in an unversioned bucket, an object replaced while
// it is read fails the read (If-Match on every ranged GET).
func TestS3ChangedMidRead(t *testing.T) {
	mem := checked(t)
	srv := minioServer(t)
	c := admin(t, srv)
	b := bucket(t, c, false)
	_, air := demo(t, demodata.AirQuality)
	put(t, c, b, "air.parquet", air)
	s3 := store(t, srv, srv.SecretKey)
	loc := "s3://" + b + "/air.parquet"
	r, err := connectors.Open(context.Background(), loc, connectors.Options{Columns: []string{"PM2.5", "station"}, BatchRows: 1000, Allocator: mem, S3: s3})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	changed := bytes.Clone(air)
	changed[100] ^= 1
	put(t, c, b, "air.parquet", changed)
	var rows int64
	for r.Next() {
		rows += r.RecordBatch().NumRows()
	}
	err = r.Err()
	if !errors.Is(err, connectors.ErrChanged) || !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), loc) {
		t.Fatalf("after %d more rows, Err() = %v; want ErrChanged naming %s", rows, err, loc)
	}
	t.Logf("%v", err)
}

// TestS3Errors: each failure names the object and carries its category.
func TestS3Errors(t *testing.T) {
	srv := minioServer(t)
	c := admin(t, srv)
	b := bucket(t, c, false)
	_, adult := demo(t, demodata.Adult)
	put(t, c, b, "adult.parquet", adult)
	put(t, c, b, "cut.parquet", adult[:len(adult)/2])
	put(t, c, b, "many/a.csv", []byte("x\n1\n"))
	put(t, c, b, "many/b.csv", []byte("x\n2\n"))
	put(t, c, b, "many/c.csv", []byte("x\n3\n"))
	put(t, c, b, "mixed/a.csv", []byte("x\n1\n"))
	put(t, c, b, "mixed/b.csv", []byte("y\n1\n"))
	put(t, c, b, "notes/readme.txt", []byte("hello"))
	good := store(t, srv, srv.SecretKey)
	bad := store(t, srv, "wrong-secret")
	only, err := connectors.NewS3(connectors.S3Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	obj := func(k string) string { return "s3://" + b + "/" + k }
	tests := []struct {
		name     string
		loc      string
		opt      connectors.Options
		sentinel error
		mention  string
	}{
		{"missing object", obj("nope.parquet"), connectors.Options{S3: good}, cove.ErrNotFound, obj("nope.parquet")},
		{"missing bucket", "s3://no-such-bucket/x.parquet", connectors.Options{S3: good}, cove.ErrNotFound, "s3://no-such-bucket/x.parquet"},
		{"empty prefix", obj("void/"), connectors.Options{S3: good}, cove.ErrNotFound, obj("void/")},
		{"wrong credentials", obj("adult.parquet"), connectors.Options{S3: bad}, connectors.ErrAccessDenied, obj("adult.parquet")},
		{"wrong credentials, prefix", obj("many/"), connectors.Options{S3: bad}, connectors.ErrAccessDenied, obj("many/")},
		{"over the size limit", obj("adult.parquet"), connectors.Options{S3: good, MaxBytes: 1000}, cove.ErrLimit, obj("adult.parquet") + ": 281876 bytes, limit 1000"},
		{"over the row limit", obj("adult.parquet"), connectors.Options{S3: good, MaxRows: 100}, cove.ErrLimit, "32561 rows, limit 100"},
		{"too many objects", obj("many/"), connectors.Options{S3: good, MaxObjects: 2}, cove.ErrLimit, "more than 2 objects"},
		{"truncated Parquet", obj("cut.parquet"), connectors.Options{S3: good}, cove.ErrInvalid, obj("cut.parquet") + ": corrupt or truncated Parquet"},
		{"objects disagree", obj("mixed/"), connectors.Options{S3: good}, cove.ErrInvalid, obj("mixed/b.csv") + `: column 0 is "y"`},
		{"unsupported object", obj("notes/"), connectors.Options{S3: good}, cove.ErrInvalid, obj("notes/readme.txt")},
		{"no store", obj("adult.parquet"), connectors.Options{}, cove.ErrInvalid, "no S3 store configured"},
		{"other bucket", obj("adult.parquet"), connectors.Options{S3: only}, cove.ErrInvalid, `is not the configured bucket "elsewhere"`},
		{"no bucket", "s3:///adult.parquet", connectors.Options{S3: good}, cove.ErrInvalid, "no bucket"},
		{"other scheme", "http://example.com/a.csv", connectors.Options{}, cove.ErrInvalid, `unsupported scheme "http"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := checked(t)
			tt.opt.Allocator = mem
			r, err := connectors.Open(context.Background(), tt.loc, tt.opt)
			if err == nil {
				for r.Next() {
				}
				err = r.Err()
				r.Release()
			}
			if !errors.Is(err, tt.sentinel) || !strings.Contains(fmt.Sprint(err), tt.mention) {
				t.Fatalf("error = %v; want %v mentioning %q", err, tt.sentinel, tt.mention)
			}
		})
	}
}

// TestS3ServerKilled kills MinIO in the middle of a read: the read ends
// with Next false and an error naming the object, never as a clean end.
func TestS3ServerKilled(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  string
		data func(*converted) []byte
	}{
		{"parquet ranged", "air.parquet", func(c *converted) []byte { return c.parquet }},
		{"csv stream", "air.csv", func(c *converted) []byte { return c.csv }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := checked(t)
			miniotest.Require(t)
			srv := miniotest.Start(t)
			c := admin(t, srv)
			b := bucket(t, c, false)
			conv := convert(t, demodata.AirQuality)
			data := tc.data(conv)
			put(t, c, b, tc.key, data)
			s3, err := connectors.NewS3(connectors.S3Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, MaxRetries: -1})
			if err != nil {
				t.Fatal(err)
			}
			loc := "s3://" + b + "/" + tc.key
			r, err := connectors.Open(context.Background(), loc, connectors.Options{Schema: conv.schema, BatchRows: 1000, Allocator: mem, S3: s3, SkipContentHash: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			var rows int64
			for i := 0; i < 3 && r.Next(); i++ {
				rows += r.RecordBatch().NumRows()
			}
			start := time.Now()
			srv.Kill()
			for r.Next() {
				rows += r.RecordBatch().NumRows()
			}
			err = r.Err()
			t.Logf("%d of 420768 rows, then after %v: %v", rows, time.Since(start).Round(time.Millisecond), err)
			if err == nil || rows >= 420768 {
				t.Fatalf("read %d rows and ended cleanly after the server was killed", rows)
			}
			if !errors.Is(err, connectors.ErrUnavailable) || !strings.Contains(err.Error(), loc) {
				t.Errorf("Err() = %v; want ErrUnavailable naming %s", err, loc)
			}
			if r.Next() || r.RecordBatch() != nil {
				t.Error("a batch after the error")
			}
		})
	}
}
