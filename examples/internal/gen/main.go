package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/covedata/cove/internal/guestbuild"
)

func main() {
	for _, job := range []string{"airquality", "adult"} {
		bin, err := guestbuild.Build(context.Background(), job)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(job, "job.wasm"), bin, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s/job.wasm: %d bytes\n", job, len(bin))
	}
	// C jobs need Debian's clang, lld and wasi-libc (.ci/run installs them).
	ctx := context.Background()
	if err := guestbuild.HaveC(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "skipping C jobs:", err)
		return
	}
	for _, job := range []string{"c/airquality"} {
		bin, err := guestbuild.BuildC(ctx, filepath.Join(job, "job.c"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(job, "job.wasm"), bin, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s/job.wasm: %d bytes\n", job, len(bin))
	}
}
