package ledger

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/covedata/cove"
)

var testKinds = []Kind{DatasetRegistered, GrantCreated, JobSubmitted, JobAdmitted, JobRan, Released}

func makeLog(t testing.TB, n int) []Entry {
	t.Helper()
	es := make([]Entry, 0, n)
	at := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	for i := range n {
		e, err := New(uint64(i+1), at.Add(time.Duration(i)*time.Second), testKinds[i%len(testKinds)], fmt.Sprintf("subject-%d", i), map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	return es
}

func testKey(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := GenerateKey("test.cove/ledger")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func mustVerify(t testing.TB, es []Entry) *Log {
	t.Helper()
	l, err := Verify(Slice(es))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestGoldenRecord pins the wire format: a change to Record or to the hash
// breaks every log already written and every proof already given.
func TestGoldenRecord(t *testing.T) {
	e, err := New(42, time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC), Released, "job-7", map[string]any{"epsilon": 0.5, "value": 17})
	if err != nil {
		t.Fatal(err)
	}
	const (
		hexBody    = "7b22657073696c6f6e223a302e352c2276616c7565223a31377d"
		wantRecord = "000000000000000e636f76652d6c65646765722d7632" + // "cove-ledger-v2"
			"0000000000000008000000000000002a" + // seq 42
			"000000000000001b323032362d31312d32365431323a30303a30302e3132333435365a" + // time, µs
			"000000000000000772656c65617365" + // kind
			"00000000000000056a6f622d37" + // subject
			"000000000000001a" + hexBody // body
		wantHash = "js9xC7McNXSNsxFyi4BvAKf/iwKZKXOgYU9vlXyRUvQ="
	)
	if got := hex.EncodeToString(e.Record()); got != wantRecord {
		t.Errorf("record =\n%s\nwant\n%s", got, wantRecord)
	}
	if got := e.Hash.String(); got != wantHash {
		t.Errorf("record hash = %s, want %s", got, wantHash)
	}
	b, _ := json.Marshal(e)
	const wantJSON = `{"seq":42,"time":"2026-11-26T12:00:00.123456Z","kind":"release","subject":"job-7","body":{"epsilon":0.5,"value":17},"hash":"` + wantHash + `"}`
	if string(b) != wantJSON {
		t.Errorf("JSON = %s\nwant  %s", b, wantJSON)
	}
}

func TestJSONRoundTripKeepsHash(t *testing.T) {
	es := makeLog(t, 5)
	b, err := json.Marshal(es)
	if err != nil {
		t.Fatal(err)
	}
	var back []Entry
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if a, b := mustVerify(t, es).Head(), mustVerify(t, back).Head(); a != b {
		t.Fatalf("round trip changed the head: %+v -> %+v", a, b)
	}
}

func TestNewRejectsUnknownKind(t *testing.T) {
	if _, err := New(1, time.Now(), Kind("job.teleported"), "x", nil); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestVerifierKeyMatchesGenerated(t *testing.T) {
	skey, vkey, err := GenerateKey("cove-ledger")
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifierKey(skey)
	if err != nil || got != vkey {
		t.Fatalf("VerifierKey = %q, %v; want %q", got, err, vkey)
	}
	if _, err := VerifierKey("PRIVATE+KEY+x+00000000+AAAA"); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("malformed key: %v", err)
	}
}

func TestCheckpointSignature(t *testing.T) {
	s, v := testKey(t)
	_, other := testKey(t)
	l := mustVerify(t, makeLog(t, 10))
	cp, err := Sign(s, l.Head())
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenCheckpoint(cp.Note, v)
	if err != nil || got.Head != l.Head() {
		t.Fatalf("OpenCheckpoint = %+v, %v", got.Head, err)
	}
	if err := l.Check(got.Head); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  []byte
		v    note.Verifier
	}{
		{"other key", cp.Note, other},
		{"size changed", []byte(string(cp.Note[:21]) + "11" + string(cp.Note[23:])), v},
		{"hash bit flipped", flipByte(cp.Note, 25), v},
		{"signature bit flipped", flipByte(cp.Note, len(cp.Note)-5), v},
		{"unsigned", tlog.FormatTree(tlog.Tree{N: 10, Hash: l.Head().Hash}), v},
	}
	for _, tt := range tests {
		if _, err := OpenCheckpoint(tt.msg, tt.v); !errors.Is(err, cove.ErrLedger) {
			t.Errorf("%s: OpenCheckpoint = %v, want ErrLedger", tt.name, err)
		}
	}
}

func flipByte(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return c
}

// rehash is what whoever holds the log and the key does after changing it:
// renumber the entries and recompute every hash, so each entry checks alone.
func rehash(es []Entry) []Entry {
	for i := range es {
		es[i].Seq = uint64(i + 1)
		es[i].Hash = es[i].RecordHash()
	}
	return es
}

// TestMutationsDetected is the acceptance mutation suite. A log of 1,000
// entries has a checkpoint a verifier kept. Every single-entry edit, deletion,
// adjacent swap, insertion, truncation and rebuild from a point is applied at
// every position, both naively and with the entries renumbered and re-hashed by
// the key holder, who then signs a new checkpoint. Each mutated log must fail
// (a) verification against the kept checkpoint and (b) the consistency proof
// from the kept checkpoint to the key holder's new one.
func TestMutationsDetected(t *testing.T) {
	const n = 1000
	orig := makeLog(t, n)
	s, v := testKey(t)
	kept, err := Sign(s, mustVerify(t, orig).Head())
	if err != nil {
		t.Fatal(err)
	}

	againstKept := func(l *Log, err error) error {
		if err != nil {
			return err
		}
		cp, err := OpenCheckpoint(kept.Note, v)
		if err != nil {
			return err
		}
		return l.Check(cp.Head)
	}
	consistency := func(l *Log, err error) error {
		if err != nil {
			return err
		}
		next, err := Sign(s, l.Head()) // the key holder signs the mutated log
		if err != nil {
			return err
		}
		proof, err := l.ProveConsistency(kept.Size, l.Size())
		if err != nil {
			return err
		}
		_, _, err = ConsistencyProof{Old: string(kept.Note), New: string(next.Note), Proof: proof}.Verify(v)
		return err
	}

	type mutation struct {
		name      string
		last      int // positions 0..last-1
		apply     func(es []Entry, i int) []Entry
		naiveOnly bool // re-numbering would undo it
	}
	edit := func(f func(*Entry)) func([]Entry, int) []Entry {
		return func(es []Entry, i int) []Entry { f(&es[i]); return es }
	}
	muts := []mutation{
		{name: "edit body", last: n, apply: edit(func(e *Entry) { e.Body = json.RawMessage(`{"i":-1}`) })},
		{name: "edit body whitespace", last: n, apply: edit(func(e *Entry) { e.Body = append(json.RawMessage(" "), e.Body...) })},
		{name: "edit subject", last: n, apply: edit(func(e *Entry) { e.Subject += "x" })},
		{name: "edit time", last: n, apply: edit(func(e *Entry) { e.Time = e.Time.Add(time.Microsecond) })},
		{name: "edit kind", last: n, apply: edit(func(e *Entry) {
			e.Kind = JobFailed
		})},
		{name: "edit seq", last: n, apply: edit(func(e *Entry) { e.Seq += n }), naiveOnly: true},
		{name: "delete", last: n, apply: func(es []Entry, i int) []Entry { return append(es[:i], es[i+1:]...) }},
		{name: "swap with next", last: n - 1, apply: func(es []Entry, i int) []Entry {
			es[i], es[i+1] = es[i+1], es[i]
			return es
		}},
		{name: "insert after", last: n - 1, apply: func(es []Entry, i int) []Entry {
			extra := es[i]
			extra.Subject = "inserted"
			return append(es[:i+1], append([]Entry{extra}, es[i+1:]...)...)
		}},
		{name: "duplicate", last: n - 1, apply: func(es []Entry, i int) []Entry {
			return append(es[:i+1], append([]Entry{es[i]}, es[i+1:]...)...)
		}},
		{name: "truncate", last: n, apply: func(es []Entry, i int) []Entry { return es[:i] }},
		{name: "rebuild from here", last: n, apply: func(es []Entry, i int) []Entry {
			// The key holder drops entry i, rewrites the times of the rest
			// and rebuilds the log from i with every hash recomputed.
			es = append(es[:i], es[i+1:]...)
			for k := i; k < len(es); k++ {
				e, err := New(uint64(k+1), es[k].Time.Add(-time.Second), es[k].Kind, es[k].Subject, es[k].Body)
				if err != nil {
					panic(err)
				}
				es[k] = e
			}
			return es
		}},
	}
	step := 1
	if testing.Short() {
		step = 37 // about 600 mutations instead of 23,000
	}
	total, byKept, byConsistency := 0, 0, 0
	for _, m := range muts {
		for _, fix := range []bool{false, true} {
			if fix && m.naiveOnly {
				continue
			}
			for i := 0; i < m.last; i += step {
				es := m.apply(append([]Entry(nil), orig...), i)
				if fix {
					es = rehash(es)
				}
				total++
				l, err := Verify(Slice(es))
				errKept, errCons := againstKept(l, err), consistency(l, err)
				for _, err := range []error{errKept, errCons} {
					if err != nil && !errors.Is(err, cove.ErrLedger) {
						t.Errorf("%s at %d (rehashed %v): %v is not ErrLedger", m.name, i, fix, err)
					}
				}
				if errKept != nil {
					byKept++
				} else {
					t.Errorf("%s at %d (rehashed %v): not detected against the kept checkpoint", m.name, i, fix)
				}
				if errCons != nil {
					byConsistency++
				} else {
					t.Errorf("%s at %d (rehashed %v): consistency proof accepted", m.name, i, fix)
				}
			}
		}
	}
	t.Logf("mutations of a %d-entry log detected against the kept checkpoint: %d/%d; by the consistency proof: %d/%d", n, byKept, total, byConsistency, total)
	// An append after the checkpoint is not a mutation: both checks pass.
	more := append(append([]Entry(nil), orig...), makeLog(t, n+3)[n:]...)
	l, err := Verify(Slice(more))
	if err := againstKept(l, err); err != nil {
		t.Errorf("appended log against the kept checkpoint: %v", err)
	}
	if err := consistency(l, err); err != nil {
		t.Errorf("appended log consistency: %v", err)
	}
}

// TestInclusionProofs proves every entry of a 1,000-entry log against a
// signed checkpoint, and checks that mutated variants of each proof fail:
// wrong index, a flipped bit in each proof hash, wrong record, a proof cut
// short or extended, and a checkpoint of another tree.
func TestInclusionProofs(t *testing.T) {
	const n = 1000
	es := makeLog(t, n)
	l := mustVerify(t, es)
	s, v := testKey(t)
	cp, err := Sign(s, l.Head())
	if err != nil {
		t.Fatal(err)
	}
	smaller, err := Sign(s, must(l.HeadAt(n-1)))
	if err != nil {
		t.Fatal(err)
	}
	root := l.Head()
	valid, rejected, variants := 0, 0, 0
	fail := func(what string, seq int, err error) {
		variants++
		if err == nil {
			t.Errorf("entry %d: %s accepted", seq, what)
			return
		}
		rejected++
	}
	for seq := 1; seq <= n; seq++ {
		proof, err := l.ProveEntry(uint64(seq), n)
		if err != nil {
			t.Fatal(err)
		}
		p := InclusionProof{Entry: es[seq-1], Checkpoint: string(cp.Note), Proof: proof}
		if seq%97 == 1 { // the JSON form round-trips
			b, _ := json.Marshal(p)
			p = InclusionProof{}
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
		}
		if h, err := p.Verify(v); err != nil || h != root {
			t.Fatalf("entry %d: proof does not verify: %v", seq, err)
		}
		valid++

		h := es[seq-1].Hash
		for _, wrong := range []int{seq - 2, seq, seq + 500} {
			if wrong >= 0 && wrong < n {
				fail(fmt.Sprintf("index %d", wrong), seq, tlog.CheckRecord(proof, n, root.Hash, int64(wrong), h))
			}
		}
		moved := p
		moved.Entry.Seq = uint64(seq%n + 1)
		moved.Entry.Hash = moved.Entry.RecordHash()
		fail("entry renumbered", seq, moved.VerifyAgainst(root))
		for j := range proof {
			bad := p
			bad.Proof = append(tlog.RecordProof(nil), proof...)
			bad.Proof[j][(seq+j)%tlog.HashSize] ^= 1 << (j % 8)
			fail(fmt.Sprintf("bit flipped in proof hash %d", j), seq, bad.VerifyAgainst(root))
		}
		other := p
		other.Entry = es[seq%n]
		fail("record of another entry", seq, other.VerifyAgainst(root))
		edited := p
		edited.Entry.Subject += "x"
		edited.Entry.Hash = edited.Entry.RecordHash()
		fail("edited record", seq, edited.VerifyAgainst(root))
		short := p
		short.Proof = proof[:len(proof)-1]
		fail("proof cut short", seq, short.VerifyAgainst(root))
		long := p
		long.Proof = append(append(tlog.RecordProof(nil), proof...), root.Hash)
		fail("proof extended", seq, long.VerifyAgainst(root))
		otherTree := p
		otherTree.Checkpoint = string(smaller.Note)
		_, err = otherTree.Verify(v)
		fail("checkpoint of another tree", seq, err)
	}
	if rejected != variants {
		t.Errorf("%d of %d mutated proofs rejected", rejected, variants)
	}
	t.Logf("inclusion proofs: %d/%d valid verified; mutated variants rejected: %d/%d", valid, n, rejected, variants)

	// Every entry of every smaller tree up to 64 entries, too.
	small := 0
	for size := uint64(1); size <= 64; size++ {
		head := must(l.HeadAt(size))
		for seq := uint64(1); seq <= size; seq++ {
			proof, err := l.ProveEntry(seq, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := (InclusionProof{Entry: es[seq-1], Proof: proof}).VerifyAgainst(head); err != nil {
				t.Fatalf("entry %d in tree %d: %v", seq, size, err)
			}
			small++
		}
	}
	t.Logf("inclusion proofs in trees of 1..64 entries: %d verified", small)
}

// TestConsistencyProofs proves that the full tree extends every earlier one,
// and every pair of small trees, and rejects mutated proofs.
func TestConsistencyProofs(t *testing.T) {
	const n = 1000
	l := mustVerify(t, makeLog(t, n))
	newer := l.Head()
	checked, variants, rejected := 0, 0, 0
	for old := uint64(0); old <= n; old++ {
		older := must(l.HeadAt(old))
		proof, err := l.ProveConsistency(old, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckConsistency(proof, older, newer); err != nil {
			t.Fatalf("%d -> %d: %v", old, n, err)
		}
		checked++
		for j := range proof {
			bad := append(tlog.TreeProof(nil), proof...)
			bad[j][j%tlog.HashSize] ^= 0x80
			variants++
			if CheckConsistency(bad, older, newer) != nil {
				rejected++
			} else {
				t.Errorf("%d -> %d: bit flipped in proof hash %d accepted", old, n, j)
			}
		}
		if old > 1 && old < n {
			variants++
			if CheckConsistency(proof, must(l.HeadAt(old-1)), newer) != nil {
				rejected++
			} else {
				t.Errorf("%d -> %d: proof accepted for old size %d", old, n, old-1)
			}
		}
	}
	for a := uint64(1); a <= 64; a++ {
		for b := a; b <= 64; b++ {
			proof, err := l.ProveConsistency(a, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckConsistency(proof, must(l.HeadAt(a)), must(l.HeadAt(b))); err != nil {
				t.Fatalf("%d -> %d: %v", a, b, err)
			}
			checked++
		}
	}
	if _, err := l.ProveConsistency(n, n-1); !errors.Is(err, cove.ErrLedger) {
		t.Errorf("proof to a smaller tree: %v", err)
	}
	t.Logf("consistency proofs verified: %d; mutated variants rejected: %d/%d", checked, rejected, variants)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func BenchmarkVerify1000(b *testing.B) {
	es := makeLog(b, 1000)
	for b.Loop() {
		if _, err := Verify(Slice(es)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/entry")
}
