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
}
