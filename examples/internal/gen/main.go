package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/covedata/cove/internal/guestbuild"
)

// The example jobs, by language (directories under examples/).
var (
	goJobs = []string{"airquality", "adult"}
	cJobs  = []string{"c/airquality", "c/pm25days", "c/pm25regress"}
)

func main() {
	ctx := context.Background()
	for _, job := range goJobs {
		bin, err := guestbuild.Build(ctx, job)
		if err != nil {
			fail(err)
		}
		write(job, bin)
	}
	// C jobs need Debian's clang, lld and wasi-libc (.ci/run installs them).
	if err := guestbuild.HaveC(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "skipping C jobs:", err)
		return
	}
	for _, job := range cJobs {
		bin, err := guestbuild.BuildC(ctx, filepath.Join(job, "job.c"))
		if err != nil {
			fail(err)
		}
		write(job, bin)
	}
}

func write(job string, bin []byte) {
	if err := os.WriteFile(filepath.Join(job, "job.wasm"), bin, 0o644); err != nil {
		fail(err)
	}
	fmt.Printf("%s/job.wasm: %d bytes\n", job, len(bin))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
