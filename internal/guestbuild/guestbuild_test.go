package guestbuild_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/covedata/cove/internal/guestbuild"
)

func TestBuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := guestbuild.Build(ctx, "../../examples/airquality")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(bin, []byte("\x00asm\x01\x00\x00\x00")) {
		t.Fatalf("not a wasm module: % x", bin[:8])
	}
	if _, err := guestbuild.Build(ctx, "no/such/dir"); err == nil {
		t.Fatal("built a missing directory")
	}
}

func TestBuildC(t *testing.T) {
	ctx := context.Background()
	if err := guestbuild.HaveC(ctx); err != nil {
		t.Skip(err)
	}
	a, err := guestbuild.BuildC(ctx, "../../examples/c/airquality/job.c")
	if err != nil {
		t.Fatal(err)
	}
	b, err := guestbuild.BuildC(ctx, "../../examples/c/airquality/job.c")
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("C build not reproducible: %v", err)
	}
}
