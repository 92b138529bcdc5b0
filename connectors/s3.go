package connectors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/covedata/cove"
)

// DefaultS3Retries is the number of retries of one S3 request when
// S3Config.MaxRetries is 0.
const DefaultS3Retries = 2

// S3Config is the literal configuration of an S3-compatible object store.
// NewS3 validates it.
type S3Config struct {
	Endpoint     string // host[:port], no scheme
	AccessKey    string // empty with SecretKey for anonymous access
	SecretKey    string
	SessionToken string // for temporary credentials
	Secure       bool   // TLS
	Region       string // "" = "us-east-1"
	// Bucket, if set, is the only bucket that locations may name.
	Bucket string
	// MaxRetries per request on transport errors and 5xx replies;
	// 0 = DefaultS3Retries, negative = none.
	MaxRetries int
	// Transport, if set, replaces the HTTP transport (custom CAs, tests).
	Transport http.RoundTripper
}

// S3 is a validated connection to an object store, to set in
// Options.S3. It is safe for concurrent use by any number of Readers.
type S3 struct {
	cfg  S3Config
	core *minio.Core
}

// NewS3 validates cfg and prepares a client; it does not contact the store.
func NewS3(cfg S3Config) (*S3, error) {
	switch {
	case cfg.Endpoint == "":
		return nil, fmt.Errorf("%w: S3 endpoint not set", cove.ErrInvalid)
	case strings.Contains(cfg.Endpoint, "://"):
		return nil, fmt.Errorf("%w: S3 endpoint %q: give host[:port] and set Secure for TLS", cove.ErrInvalid, cfg.Endpoint)
	case (cfg.AccessKey == "") != (cfg.SecretKey == ""):
		return nil, fmt.Errorf("%w: S3 endpoint %s: access key and secret key must be set together", cove.ErrInvalid, cfg.Endpoint)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // also spares a bucket-location request
	}
	retries := cfg.MaxRetries
	switch {
	case retries == 0:
		retries = DefaultS3Retries
	case retries < 0:
		retries = 0
	}
	core, err := minio.NewCore(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:     cfg.Secure,
		Region:     cfg.Region,
		Transport:  cfg.Transport,
		MaxRetries: retries + 1, // minio-go counts attempts
	})
	if err != nil {
		return nil, fmt.Errorf("%w: S3 endpoint %s: %v", cove.ErrInvalid, cfg.Endpoint, err)
	}
	return &S3{cfg: cfg, core: core}, nil
}

// Endpoint returns the store's host[:port].
func (s *S3) Endpoint() string { return s.cfg.Endpoint }

// ParseS3Location splits s3://bucket/key into bucket and key. A key that is
// empty or ends in "/" names a prefix.
func ParseS3Location(location string) (bucket, key string, prefix bool, err error) {
	rest, ok := strings.CutPrefix(location, "s3://")
	if !ok {
		return "", "", false, fmt.Errorf("%w: %s: not an s3:// location", cove.ErrInvalid, location)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", false, fmt.Errorf("%w: %s: no bucket", cove.ErrInvalid, location)
	}
	return bucket, key, key == "" || strings.HasSuffix(key, "/"), nil
}

func openS3(ctx context.Context, location string, opt Options) (*Reader, error) {
	bucket, key, isPrefix, err := ParseS3Location(location)
	if err != nil {
		return nil, err
	}
	if opt.S3 == nil {
		return nil, fmt.Errorf("%w: %s: no S3 store configured (Options.S3)", cove.ErrInvalid, location)
	}
	s := opt.S3
	if s.cfg.Bucket != "" && bucket != s.cfg.Bucket {
		return nil, fmt.Errorf("%w: %s: bucket %q is not the configured bucket %q", cove.ErrInvalid, location, bucket, s.cfg.Bucket)
	}
	if !isPrefix {
		if _, err := formatOf(key, opt.Format); err != nil {
			return nil, err
		}
	}
	if opt, err = opt.resolve(location); err != nil {
		return nil, err
	}

	var objs []*s3Object
	if isPrefix {
		if objs, err = s.list(ctx, location, bucket, key, opt); err != nil {
			return nil, err
		}
	} else {
		o, err := s.stat(ctx, bucket, key)
		if err != nil {
			return nil, err
		}
		objs = []*s3Object{o}
	}

	parts := make([]*part, len(objs))
	snap := Snapshot{Objects: make([]Object, len(objs))}
	manifest := sha256.New()
	for i, o := range objs {
		format, err := formatOf(o.name, opt.Format)
		if err != nil {
			return nil, fmt.Errorf("%w (under prefix %s)", err, location)
		}
		if o.size > opt.MaxBytes {
			return nil, fmt.Errorf("%w: %s: %d bytes, limit %d", cove.ErrLimit, o.name, o.size, opt.MaxBytes)
		}
		sum := ""
		if !opt.SkipContentHash {
			if sum, err = o.hash(ctx); err != nil {
				return nil, err
			}
			fmt.Fprintf(manifest, "%s  %s\n", sum, o.key)
		}
		snap.Bytes += o.size
		snap.Objects[i] = Object{Location: o.name, Bytes: o.size, SHA256: sum, ETag: o.etag, VersionID: o.version}
		parts[i] = &part{in: o.input(ctx), format: format}
	}
	switch {
	case opt.SkipContentHash:
	case isPrefix:
		snap.SHA256 = hex.EncodeToString(manifest.Sum(nil))
	default:
		snap.SHA256 = snap.Objects[0].SHA256
	}
	return newReader(ctx, location, parts, snap, opt)
}

// list returns the objects under prefix, in key order, at most
// opt.MaxObjects. Keys ending in "/" (folder markers) are skipped.
func (s *S3) list(ctx context.Context, location, bucket, prefix string, opt Options) ([]*s3Object, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if we return early
	var objs []*s3Object
	for info := range s.core.Client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if info.Err != nil {
			return nil, s3Error(location, info.Err)
		}
		if strings.HasSuffix(info.Key, "/") {
			continue
		}
		if len(objs) == opt.MaxObjects {
			return nil, fmt.Errorf("%w: %s: more than %d objects", cove.ErrLimit, location, opt.MaxObjects)
		}
		// A HEAD per object gives the version id, which a listing omits.
		o, err := s.stat(ctx, bucket, info.Key)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%w: %s: no objects under the prefix", cove.ErrNotFound, location)
	}
	return objs, nil
}

func (s *S3) stat(ctx context.Context, bucket, key string) (*s3Object, error) {
	name := "s3://" + bucket + "/" + key
	info, err := s.core.Client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, s3Error(name, err)
	}
	if info.IsDeleteMarker {
		return nil, fmt.Errorf("%w: %s: deleted", cove.ErrNotFound, name)
	}
	return &s3Object{s: s, bucket: bucket, key: key, name: name, size: info.Size, etag: info.ETag, version: info.VersionID}, nil
}

// s3Object is one object as it was when stated. Every GET names its version
// (in a versioned bucket) and carries If-Match with its ETag, so a read
// never mixes bytes of two versions: a replaced object fails the read with
// ErrChanged.
type s3Object struct {
	s                        *S3
	bucket, key, name        string
	size                     int64
	etag, version            string
	mu                       sync.Mutex
	err                      error // first transport failure
	requests, bytesRequested int64
}

func (o *s3Object) input(ctx context.Context) *input {
	return &input{
		name:   o.name,
		size:   o.size,
		ra:     &s3ReaderAt{ctx: ctx, o: o},
		stream: func() (io.ReadCloser, error) { return o.get(ctx, 0, o.size) },
		failed: func() error {
			o.mu.Lock()
			defer o.mu.Unlock()
			return o.err
		},
	}
}

// hash streams the object through sha256.
func (o *s3Object) hash(ctx context.Context) (string, error) {
	body, err := o.get(ctx, 0, o.size)
	if err != nil {
		return "", err
	}
	defer body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// get returns the n bytes from off, checking that all of them arrive.
func (o *s3Object) get(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if n == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	opts := minio.GetObjectOptions{VersionID: o.version}
	if o.etag != "" {
		if err := opts.SetMatchETag(o.etag); err != nil {
			return nil, o.fail(fmt.Errorf("%w: %s: %v", cove.ErrInvalid, o.name, err))
		}
	}
	if off > 0 || n < o.size {
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, o.fail(fmt.Errorf("%w: %s: %v", cove.ErrInvalid, o.name, err))
		}
	}
	o.mu.Lock()
	o.requests++
	o.bytesRequested += n
	o.mu.Unlock()
	body, info, _, err := o.s.core.GetObject(ctx, o.bucket, o.key, opts)
	if err != nil {
		return nil, o.fail(s3Error(o.name, err))
	}
	if o.etag != "" && info.ETag != "" && info.ETag != o.etag {
		body.Close()
		return nil, o.fail(fmt.Errorf("%w: %s: ETag %s, was %s when opened", ErrChanged, o.name, info.ETag, o.etag))
	}
	return &s3Body{o: o, body: body, left: n}, nil
}

// fail records the object's first transport failure and returns err.
func (o *s3Object) fail(err error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		o.err = err
	}
	return err
}

// s3Body is a GET's body that must deliver exactly left bytes: a body cut
// short by a failing server is an error, never a clean end.
type s3Body struct {
	o    *s3Object
	body io.ReadCloser
	left int64
}

func (b *s3Body) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	switch {
	case err == io.EOF && b.left > 0:
		return n, b.o.fail(fmt.Errorf("%w: %s: transfer ended %d bytes early", ErrUnavailable, b.o.name, b.left))
	case err == io.EOF:
		return n, nil
	case err != nil:
		return n, b.o.fail(s3Error(b.o.name, err))
	}
	return n, nil
}

func (b *s3Body) Close() error { return b.body.Close() }

// s3ReaderAt serves ReadAt with ranged GETs.
type s3ReaderAt struct {
	ctx context.Context
	o   *s3Object
}

func (r *s3ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: %s: negative offset", cove.ErrInvalid, r.o.name)
	}
	if off >= r.o.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.o.size-off)
	body, err := r.o.get(r.ctx, off, n)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	got, err := io.ReadFull(body, p[:n])
	if err != nil {
		return got, err
	}
	if n < int64(len(p)) {
		return got, io.EOF
	}
	return got, nil
}

// s3Error maps a minio-go error to this package's categories, naming the
// object. The store's own message describes the request, not the data.
func s3Error(name string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", name, err)
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchKey", "NoSuchBucket", "NoSuchVersion":
		return fmt.Errorf("%w: %s: %s", cove.ErrNotFound, name, resp.Code)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "ExpiredToken", "InvalidToken":
		return fmt.Errorf("%w: %s: %s", ErrAccessDenied, name, resp.Code)
	case "PreconditionFailed":
		return fmt.Errorf("%w: %s: ETag no longer matches", ErrChanged, name)
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s", cove.ErrNotFound, name)
	case http.StatusForbidden:
		return fmt.Errorf("%w: %s", ErrAccessDenied, name)
	case http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %s: ETag no longer matches", ErrChanged, name)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, name, err)
}
