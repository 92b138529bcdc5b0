package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
)

func hexSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestHEApprovalsAndShares walks the sandbox's HE records: a setup bound to
// the ledger, keys, a column, a recipient, one approval per job output, one
// share per holder and ciphertext, and the holders' ledger-only check.
func TestHEApprovalsAndShares(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	su, err := s.RegisterHESetup(ctx, HESetup{Name: "air-he", Params: json.RawMessage(`{"scheme":"ckks"}`), Providers: []string{"east", "west"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(su.Seed) != 32 || su.Seq == 0 {
		t.Fatalf("setup: seed %d bytes, ledger seq %d", len(su.Seed), su.Seq)
	}
	if e, err := s.Entry(ctx, su.Seq); err != nil || e.Kind != ledger.HESetup {
		t.Fatalf("setup entry: %v %v", e.Kind, err)
	}
	if _, err := s.RegisterHESetup(ctx, su); !errors.Is(err, cove.ErrExists) {
		t.Fatalf("second setup of the same name: %v", err)
	}
	fp := hexSum("keys")
	if err := s.RegisterHEKeys(ctx, HEKeys{Fingerprint: fp, Setup: "air-he", Path: "keys.bin", SHA256: hexSum("k"), KeygenShares: map[string]string{"east": hexSum("e")}}); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("keys missing a holder's share: %v", err)
	}
	if err := s.RegisterHEKeys(ctx, HEKeys{Fingerprint: fp, Setup: "air-he", Path: "keys.bin", SHA256: hexSum("k"), KeygenShares: map[string]string{"east": hexSum("e"), "west": hexSum("w")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterHEColumn(ctx, HEColumn{Dataset: "air", Column: "PM2.5", Keys: fp, Path: "pm.he", SHA256: hexSum("c"), Rows: 10, Lo: 0, Hi: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterHEColumn(ctx, HEColumn{Dataset: "air", Column: "nope", Keys: fp, Path: "x.he", SHA256: hexSum("c"), Rows: 10}); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("column outside the catalog: %v", err)
	}
	rec := hexSum("operator key")
	if err := s.RegisterHERecipient(ctx, "acme", rec, []byte("operator key")); err != nil {
		t.Fatal(err)
	}

	a := HEApproval{Job: "j1", Output: "o", Ciphertext: hexSum("ct1"), Recipient: rec, Session: hexSum("s1"), Keys: fp}
	if err := submitAndAdmit(ctx, s, "j1", 0.3); err != nil {
		t.Fatal(err)
	}
	seq, err := s.ApproveHERelease(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	// The same output again, with a fresh ciphertext: refused.
	b := a
	b.Ciphertext, b.Session = hexSum("ct2"), hexSum("s2")
	if _, err := s.ApproveHERelease(ctx, b); !errors.Is(err, cove.ErrPrivacy) {
		t.Fatalf("second approval of an output: %v", err)
	}
	if err := s.CheckHEApproval(ctx, "j1", a.Ciphertext, rec, seq); err != nil {
		t.Fatalf("holder's check: %v", err)
	}
	if err := s.CheckHEApproval(ctx, "j1", b.Ciphertext, rec, seq); !errors.Is(err, cove.ErrPrivacy) {
		t.Fatalf("holder's check of another ciphertext: %v", err)
	}
	sh := HEShare{Job: "j1", Output: "o", Provider: "east", Ciphertext: a.Ciphertext, Session: a.Session, ShareSHA256: hexSum("share")}
	if err := s.RecordHEShare(ctx, sh); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordHEShare(ctx, sh); !errors.Is(err, cove.ErrPrivacy) {
		t.Fatalf("second share of a ciphertext: %v", err)
	}
	sh.Provider, sh.Session = "west", hexSum("other session")
	if err := s.RecordHEShare(ctx, sh); !errors.Is(err, cove.ErrPrivacy) {
		t.Fatalf("share for an unapproved session: %v", err)
	}
	if n, _ := s.HESharesGiven(ctx, a.Ciphertext); n != 1 {
		t.Fatalf("%d shares recorded, want 1", n)
	}
	// Once the job ended, holders refuse and nothing more is approved.
	if err := s.Fail(ctx, "j1", "test", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckHEApproval(ctx, "j1", a.Ciphertext, rec, seq); !errors.Is(err, cove.ErrPrivacy) {
		t.Fatalf("holder's check after the job failed: %v", err)
	}
	sh.Session = a.Session
	if err := s.RecordHEShare(ctx, sh); !errors.Is(err, cove.ErrPrivacy) {
		t.Fatalf("share after the job failed: %v", err)
	}
	// Another operator's key is not a recipient for acme's jobs.
	if err := s.RegisterHERecipient(ctx, "other", hexSum("k2"), []byte("k2")); err != nil {
		t.Fatal(err)
	}
	if err := submitAndAdmit(ctx, s, "j2", 0.3); err != nil {
		t.Fatal(err)
	}
	c := HEApproval{Job: "j2", Output: "o", Ciphertext: hexSum("ct3"), Recipient: hexSum("k2"), Session: hexSum("s3"), Keys: fp}
	if _, err := s.ApproveHERelease(ctx, c); !errors.Is(err, cove.ErrPrivacy) {
		t.Fatalf("approval to another operator's key: %v", err)
	}
	if _, err := s.VerifyLedger(ctx); err != nil {
		t.Fatal(err)
	}
}
