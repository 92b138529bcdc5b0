package connectors

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/covedata/cove"
)

// input is one file, byte slice or object, seen both ways a format may want
// it: random access (Parquet, IPC file) and one sequential pass (CSV, IPC
// stream). Both see exactly size bytes, the bytes that were hashed.
type input struct {
	name   string // for errors: the path or s3://bucket/key
	size   int64
	ra     io.ReaderAt
	stream func() (io.ReadCloser, error)
	// failed, if not nil, returns the first transport error the input met.
	// Decoders may report such an error as corruption, or drop its chain;
	// the Reader reports this one instead.
	failed func() error
}

func (in *input) section() *io.SectionReader { return io.NewSectionReader(in.ra, 0, in.size) }

// cause returns the input's transport error, if any, else err.
func (in *input) cause(err error) error {
	if in.failed != nil {
		if e := in.failed(); e != nil {
			return e
		}
	}
	return err
}

// Open opens the dataset at location: a local file path, or, with opt.S3
// set, s3://bucket/key for one object or s3://bucket/prefix/ (ending in a
// slash) for every object under the prefix, read in key order. ctx bounds
// the whole read: opening, hashing, and every later call to Next.
func Open(ctx context.Context, location string, opt Options) (*Reader, error) {
	if strings.HasPrefix(location, "s3://") {
		return openS3(ctx, location, opt)
	}
	if scheme, rest, ok := strings.Cut(location, "://"); ok && !strings.ContainsAny(scheme, `/\.`) {
		if scheme != "file" {
			return nil, fmt.Errorf("%w: %s: unsupported scheme %q (supported: s3://, file:// or a path)", cove.ErrInvalid, location, scheme)
		}
		location = rest
	}
	return openFile(ctx, location, opt)
}

// OpenFile opens the file at path, in the format its extension (or
// opt.Format) names, and hashes it. The Reader holds the file open until
// released.
func OpenFile(path string, opt Options) (*Reader, error) {
	return openFile(context.Background(), path, opt)
}

func openFile(ctx context.Context, path string, opt Options) (*Reader, error) {
	p, snap, opt, err := filePart(ctx, path, opt, true)
	if err != nil {
		return nil, err
	}
	return newReader(ctx, path, []*part{p}, snap, opt)
}

// filePart opens path as one part, hashing it if hash is set.
func filePart(ctx context.Context, path string, opt Options, hash bool) (*part, Snapshot, Options, error) {
	format, err := formatOf(path, opt.Format)
	if err != nil {
		return nil, Snapshot{}, opt, err
	}
	if opt, err = opt.resolve(path); err != nil {
		return nil, Snapshot{}, opt, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, Snapshot{}, opt, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	info, err := f.Stat()
	if err != nil {
		return nil, Snapshot{}, opt, err
	}
	if !info.Mode().IsRegular() {
		return nil, Snapshot{}, opt, fmt.Errorf("%w: %s: not a regular file", cove.ErrInvalid, path)
	}
	if info.Size() > opt.MaxBytes {
		return nil, Snapshot{}, opt, fmt.Errorf("%w: %s: %d bytes, limit %d", cove.ErrLimit, path, info.Size(), opt.MaxBytes)
	}
	n, sum := info.Size(), ""
	if hash {
		h := sha256.New()
		if n, err = io.Copy(h, io.LimitReader(ctxReader{ctx, f}, opt.MaxBytes+1)); err != nil {
			return nil, Snapshot{}, opt, err
		}
		if n > opt.MaxBytes {
			return nil, Snapshot{}, opt, fmt.Errorf("%w: %s: more than %d bytes", cove.ErrLimit, path, opt.MaxBytes)
		}
		if n != info.Size() {
			return nil, Snapshot{}, opt, fmt.Errorf("%w: %s: size changed while it was hashed", ErrChanged, path)
		}
		sum = hex.EncodeToString(h.Sum(nil))
	}
	// Decode only the bytes that were hashed, even if the file grows.
	in := &input{
		name: path,
		size: n,
		ra:   io.NewSectionReader(f, 0, n),
		stream: func() (io.ReadCloser, error) {
			return io.NopCloser(ctxReader{ctx, io.NewSectionReader(f, 0, n)}), nil
		},
	}
	p := &part{
		in:     in,
		format: format,
		check: func() error {
			now, err := f.Stat()
			if err != nil {
				return err
			}
			if now.Size() != info.Size() || !now.ModTime().Equal(info.ModTime()) {
				return fmt.Errorf("%w: %s: its snapshot no longer describes the data", ErrChanged, path)
			}
			return nil
		},
		close: func() { f.Close() },
	}
	snap := Snapshot{
		SHA256:  sum,
		Bytes:   n,
		Objects: []Object{{Location: path, Bytes: n, SHA256: sum}},
	}
	ok = true
	return p, snap, opt, nil
}

// OpenBytes is OpenFile over b; name supplies the format (by extension,
// unless opt.Format is set) and the name used in errors. b must not be
// modified while the Reader is in use.
func OpenBytes(name string, b []byte, opt Options) (*Reader, error) {
	format, err := formatOf(name, opt.Format)
	if err != nil {
		return nil, err
	}
	if opt, err = opt.resolve(name); err != nil {
		return nil, err
	}
	if int64(len(b)) > opt.MaxBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes, limit %d", cove.ErrLimit, name, len(b), opt.MaxBytes)
	}
	h := sha256.Sum256(b)
	sum := hex.EncodeToString(h[:])
	in := &input{
		name:   name,
		size:   int64(len(b)),
		ra:     bytes.NewReader(b),
		stream: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
	}
	snap := Snapshot{
		SHA256:  sum,
		Bytes:   int64(len(b)),
		Objects: []Object{{Location: name, Bytes: int64(len(b)), SHA256: sum}},
	}
	return newReader(context.Background(), name, []*part{{in: in, format: format}}, snap, opt)
}

// ReadSchema returns the Arrow schema of the file at path, in the format its
// extension names, reading only its metadata: a Parquet footer, an IPC
// schema message, or the header and first DefaultInferRows rows of a CSV
// file (whose schema is inferred). Files over DefaultMaxBytes are refused
// with cove.ErrLimit.
func ReadSchema(path string) (*arrow.Schema, error) {
	ctx := context.Background()
	p, _, opt, err := filePart(ctx, path, Options{}, false)
	if err != nil {
		return nil, err
	}
	defer p.release()
	r := &Reader{ctx: ctx, name: path, opt: opt, parts: []*part{p}}
	src, _, err := r.openPart(0)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return src.Schema(), nil
}

// ctxReader stops a long sequential read when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
