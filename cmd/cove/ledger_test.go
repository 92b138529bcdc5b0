package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
)

// TestLedgerCommands runs the demo, then every ledger command on its state
// and on an export, as a verifier would, including tampered copies.
func TestLedgerCommands(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "state")
	if err := run(ctx, []string{"demo", "-data-dir", dir}, io.Discard); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, &out)
		return out.String(), err
	}
	save := func(name string, args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("cove %s: %v", strings.Join(args, " "), err)
		}
		path := filepath.Join(tmp, name)
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	vkey := save("vkey", "ledger", "key", "-data-dir", dir)
	cp1 := save("cp1", "ledger", "checkpoint", "-data-dir", dir)
	out, err := cli("ledger", "verify", "-data-dir", dir, "-key", vkey, "-checkpoint", cp1)
	if err != nil || !strings.Contains(out, "kept checkpoint") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	h, err := ledger.OpenCheckpoint(must(os.ReadFile(cp1)), must(ledger.NewVerifier(string(must(os.ReadFile(vkey))))))
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= h.Size; seq++ {
		proof := save("proof", "ledger", "prove", "-data-dir", dir, "-seq", fmt.Sprint(seq))
		if out, err := cli("ledger", "verify-proof", "-proof", proof, "-key", vkey, "-checkpoint", cp1); err != nil {
			t.Fatalf("entry %d: %v\n%s", seq, err, out)
		}
	}

	export := save("export.jsonl", "ledger", "export", "-data-dir", dir)
	if out, err := cli("ledger", "verify", "-file", export, "-key", vkey, "-checkpoint", cp1); err != nil {
		t.Fatalf("verify export: %v\n%s", err, out)
	}

	// The log grows; the kept checkpoint still verifies, by a consistency proof too.
	if _, err := cli("grant", "revoke", "-data-dir", dir, "-id", "g-acme-2026", "-reason", "test"); err != nil {
		t.Fatal(err)
	}
	save("cp2", "ledger", "checkpoint", "-data-dir", dir)
	consistency := save("consistency.json", "ledger", "prove", "-data-dir", dir, "-from", cp1)
	if out, err := cli("ledger", "verify-proof", "-proof", consistency, "-key", vkey, "-checkpoint", cp1); err != nil || !strings.Contains(out, "extends the tree of") {
		t.Fatalf("consistency proof: %v\n%s", err, out)
	}
	if out, err := cli("ledger", "verify", "-data-dir", dir, "-key", vkey, "-checkpoint", cp1); err != nil {
		t.Fatalf("verify the grown log: %v\n%s", err, out)
	}

	// Tampered exports fail; so does another key.
	lines := strings.SplitAfter(string(must(os.ReadFile(export))), "\n")
	tamper := map[string]string{
		"edited entry":  strings.Join(lines[:4], "") + strings.Replace(lines[4], `"subject":"`, `"subject":"x`, 1) + strings.Join(lines[5:], ""),
		"deleted entry": strings.Join(lines[:4], "") + strings.Join(lines[5:], ""),
		"swapped":       strings.Join(lines[:4], "") + lines[5] + lines[4] + strings.Join(lines[6:], ""),
		"truncated":     strings.Join(lines[:len(lines)-3], ""),
		"no header":     strings.Join(lines[1:], ""),
	}
	for name, text := range tamper {
		path := filepath.Join(tmp, "tampered.jsonl")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := cli("ledger", "verify", "-file", path, "-key", vkey, "-checkpoint", cp1); !errors.Is(err, cove.ErrLedger) {
			t.Errorf("%s: verify = %v, want ErrLedger", name, err)
		}
	}
	_, other, err := ledger.GenerateKey("cove-ledger")
	if err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(tmp, "other.vkey")
	if err := os.WriteFile(otherKey, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cli("ledger", "verify", "-file", export, "-key", otherKey); !errors.Is(err, cove.ErrLedger) {
		t.Errorf("export with another key: %v", err)
	}
	if _, err := cli("ledger", "verify", "-data-dir", dir, "-key", otherKey); !errors.Is(err, cove.ErrLedger) {
		t.Errorf("store with another key: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
