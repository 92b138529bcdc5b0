package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	if err := s.RegisterHEColumn(ctx, HEColumn{Dataset: "air", Column: "PM2.5", Provider: "east", Keys: fp, Path: "pm.he", SHA256: hexSum("c"), Rows: 10, Lo: 0, Hi: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterHEColumn(ctx, HEColumn{Dataset: "air", Column: "nope", Provider: "east", Keys: fp, Path: "x.he", SHA256: hexSum("c"), Rows: 10}); !errors.Is(err, cove.ErrInvalid) {
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

// heKeys registers a setup and keys for the segment tests.
func heKeys(t *testing.T, s *Store, name string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := s.RegisterHESetup(ctx, HESetup{Name: name, Params: json.RawMessage(`{"scheme":"ckks"}`), Providers: []string{"east", "west", "health"}}); err != nil {
		t.Fatal(err)
	}
	fp := hexSum("keys of " + name)
	if err := s.RegisterHEKeys(ctx, HEKeys{Fingerprint: fp, Setup: name, Path: name + ".keys", SHA256: hexSum("k"),
		KeygenShares: map[string]string{"east": hexSum("e"), "west": hexSum("w"), "health": hexSum("h")}}); err != nil {
		t.Fatal(err)
	}
	return fp
}

// TestHEColumnSegments: an encrypted column attached in segments by
// several providers; overlaps, other keys, bounds or nulls refused; each
// segment in the ledger with its range and provider.
func TestHEColumnSegments(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	fp, other := heKeys(t, s, "air-he"), heKeys(t, s, "other")
	seg := func(provider string, start, end int64) HEColumn {
		return HEColumn{Dataset: "air", Column: "PM2.5", Provider: provider, Keys: fp, Path: provider + ".he", SHA256: hexSum(provider),
			Rows: end - start, Start: start, End: end, Lo: 0, Hi: 1000, Nulls: "zero"}
	}
	if err := s.RegisterHEColumn(ctx, seg("west", 60, 100)); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterHEColumn(ctx, seg("east", 0, 60)); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		c    HEColumn
		want error
	}{
		"overlap":        {seg("health", 90, 120), cove.ErrExists},
		"inside":         {seg("health", 10, 20), cove.ErrExists},
		"whole table":    {func() HEColumn { c := seg("health", 0, 0); c.Rows = 100; return c }(), cove.ErrExists},
		"other keys":     {func() HEColumn { c := seg("health", 100, 120); c.Keys = other; return c }(), cove.ErrInvalid},
		"other bounds":   {func() HEColumn { c := seg("health", 100, 120); c.Hi = 500; return c }(), cove.ErrInvalid},
		"other nulls":    {func() HEColumn { c := seg("health", 100, 120); c.Nulls = "refuse"; return c }(), cove.ErrInvalid},
		"rows ≠ range":   {func() HEColumn { c := seg("health", 100, 120); c.Rows = 5; return c }(), cove.ErrInvalid},
		"negative start": {seg("health", -5, 10), cove.ErrInvalid},
		"no provider":    {seg("", 100, 120), cove.ErrInvalid},
	} {
		if err := s.RegisterHEColumn(ctx, tc.c); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	segs, err := s.HEColumnSegments(ctx, "air", "PM2.5")
	if err != nil || len(segs) != 2 || segs[0].Provider != "east" || segs[0].End != 60 || segs[1].Start != 60 || segs[1].End != 100 {
		t.Fatalf("segments: %+v %v", segs, err)
	}
	if c, err := s.HEColumnSegment(ctx, "air", "PM2.5", 60); err != nil || c.Provider != "west" {
		t.Fatalf("segment from row 60: %+v %v", c, err)
	}
	if _, err := s.HEColumnSegments(ctx, "air", "station"); !errors.Is(err, cove.ErrNotFound) {
		t.Fatalf("segments of an unattached column: %v", err)
	}
	var ranges []string
	for e, err := range s.Entries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == ledger.HEColumn {
			var c HEColumn
			if err := json.Unmarshal(e.Body, &c); err != nil {
				t.Fatal(err)
			}
			ranges = append(ranges, fmt.Sprintf("%s[%d,%d)", c.Provider, c.Start, c.End))
		}
	}
	if fmt.Sprint(ranges) != "[west[60,100) east[0,60)]" {
		t.Fatalf("he.column entries: %v", ranges)
	}
	if _, err := s.VerifyLedger(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestHEColumnsMigrated: a store written before segments existed keeps its
// encrypted columns, as whole-table segments.
func TestHEColumnsMigrated(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	fp := heKeys(t, s, "air-he")
	old := `{"dataset":"air","column":"PM2.5","provider":"east","keys":"` + fp + `","path":"pm.he","sha256":"` + hexSum("c") + `","rows":10,"lo":0,"hi":1000,"nulls":"zero"}`
	if _, err := s.db.ExecContext(ctx, `INSERT INTO he_columns (dataset, col, body) VALUES ('air', 'PM2.5', ?)`, old); err != nil {
		t.Fatal(err)
	}
	segs, err := s.HEColumnSegments(ctx, "air", "PM2.5")
	if err != nil || len(segs) != 1 || segs[0].Start != 0 || segs[0].End != 10 || segs[0].Rows != 10 || segs[0].Provider != "east" {
		t.Fatalf("migrated column: %+v %v", segs, err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM he_columns`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows left in he_columns (%v)", n, err)
	}
	// The migrated column is whole: a segment of it overlaps.
	c := segs[0]
	c.Start, c.End, c.Rows, c.Provider = 5, 8, 3, "west"
	if err := s.RegisterHEColumn(ctx, c); !errors.Is(err, cove.ErrExists) {
		t.Fatalf("segment inside a migrated column: %v", err)
	}
}
