package demo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromium finds Debian's headless browser; .ci/run installs it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI must have chromium (apt-get install chromium)")
	}
	t.Skip("no chromium: apt-get install chromium to run the disclosure page test")
	return ""
}

// TestDisclosurePageInBrowser renders the demo's disclosure report in a
// headless browser and checks what a reader sees: the grant, the data
// products, and no data value (not even the released ones, which stay with
// the operator).
func TestDisclosurePageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test in -short mode")
	}
	browser := chromium(t)
	dir := t.TempDir()
	res, err := Run(context.Background(), Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, "disclosure.html")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "chromium-profile")}
	dom, err := exec.CommandContext(ctx, browser, append(args, "--dump-dom", "file://"+page)...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	text := string(dom)
	for _, want := range []string{GrantID, Operator, "scenario", "beijing-air-quality", "adult", "pm25_mean",
		"high_income_count", "hours_mean", res.Ledger.Hash.String()} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if n := strings.Count(text, `class="product"`); n != len(res.Releases) {
		t.Errorf("page lists %d products, want %d (one per release)", n, len(res.Releases))
	}
	for _, rel := range res.Releases {
		for _, o := range rel.Outputs {
			for _, r := range o.Rows {
				if v := fmt.Sprintf("%.2f", r.Value); strings.Contains(text, ">"+v) || strings.Contains(text, " "+v+"<") {
					t.Errorf("page shows released value %s of %s", v, o.Name)
				}
			}
		}
	}
	// A screenshot, kept for a person to look at with -args -keep.
	shot := filepath.Join(dir, "disclosure.png")
	if err := exec.CommandContext(ctx, browser, append(args, "--screenshot="+shot, "--window-size=1400,1000", "file://"+page)...).Run(); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot missing or blank: %v", err)
	}
	if keep := os.Getenv("COVE_KEEP_SCREENSHOT"); keep != "" {
		b, _ := os.ReadFile(shot)
		os.WriteFile(keep, b, 0o644)
	}
}
