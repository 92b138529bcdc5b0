package examples_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/internal/guestbuild"
)

func TestModulesAreReproducible(t *testing.T) {
	for _, job := range examples.All() {
		name, embedded := job.Name, job.Module
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			bin, err := guestbuild.Build(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sha256.Sum256(bin), sha256.Sum256(embedded); got != want {
				t.Fatalf("%s/job.wasm is stale: rebuilt sha256 %x, embedded %x (%d vs %d bytes); run `go generate ./examples`",
					name, got, want, len(bin), len(embedded))
			}
		})
	}
}

func TestCModulesAreReproducible(t *testing.T) {
	ctx := context.Background()
	if err := guestbuild.HaveC(ctx); err != nil {
		t.Skip(err)
	}
	for _, job := range examples.C() {
		t.Run(job.Name, func(t *testing.T) {
			bin, err := guestbuild.BuildC(ctx, job.Name+"/job.c")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sha256.Sum256(bin), sha256.Sum256(job.Module); got != want {
				t.Fatalf("%s/job.wasm is stale: rebuilt sha256 %x, embedded %x; run `go generate ./examples`", job.Name, got, want)
			}
		})
	}
}
