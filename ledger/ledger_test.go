package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/covedata/cove"
)

func chain(t *testing.T, n int) []Entry {
	t.Helper()
	var es []Entry
	at := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	kinds := []Kind{DatasetRegistered, GrantCreated, JobSubmitted, JobAdmitted, JobRan, Released}
	for i := 0; i < n; i++ {
		var prev *Entry
		if i > 0 {
			prev = &es[i-1]
		}
		e, err := New(prev, at.Add(time.Duration(i)*time.Second), kinds[i%len(kinds)], fmt.Sprintf("subject-%d", i), map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	return es
}

func TestVerifyIntactChain(t *testing.T) {
	es := chain(t, 50)
	head, err := Verify(Slice(es))
	if err != nil {
		t.Fatal(err)
	}
	if head.Size != 50 || head.Hash != es[49].Hash {
		t.Fatalf("head = %+v, want size 50 hash %s", head, es[49].Hash)
	}
	if _, err := VerifyHead(Slice(es), Head{Size: 20, Hash: es[19].Hash}); err != nil {
		t.Fatalf("published head at 20: %v", err)
	}
}

func TestJSONRoundTripKeepsHash(t *testing.T) {
	es := chain(t, 5)
	b, err := json.Marshal(es)
	if err != nil {
		t.Fatal(err)
	}
	var back []Entry
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(Slice(back)); err != nil {
		t.Fatalf("round-tripped log does not verify: %v", err)
	}
}

// TestMutationsDetected edits, deletes, reorders, inserts and re-chains every
// position of a log; each mutation must fail verification against the head
// published before it.
func TestMutationsDetected(t *testing.T) {
	const n = 40
	orig := chain(t, n)
	head := Head{Size: n, Hash: orig[n-1].Hash}
	cp := func() []Entry { return append([]Entry(nil), orig...) }
	type mutation struct {
		name  string
		apply func(es []Entry, i int) []Entry
	}
	muts := []mutation{
		{"edit body", func(es []Entry, i int) []Entry { es[i].Body = json.RawMessage(`{"i":-1}`); return es }},
		{"edit subject", func(es []Entry, i int) []Entry { es[i].Subject += "x"; return es }},
		{"edit time", func(es []Entry, i int) []Entry { es[i].Time = es[i].Time.Add(time.Microsecond); return es }},
		{"edit kind", func(es []Entry, i int) []Entry { es[i].Kind = JobFailed; return es }},
		{"delete", func(es []Entry, i int) []Entry { return append(es[:i], es[i+1:]...) }},
		{"reorder", func(es []Entry, i int) []Entry {
			j := (i + 1) % len(es)
			es[i], es[j] = es[j], es[i]
			return es
		}},
		{"insert", func(es []Entry, i int) []Entry {
			extra := es[i]
			extra.Subject = "inserted"
			return append(es[:i+1], append([]Entry{extra}, es[i+1:]...)...)
		}},
		{"truncate", func(es []Entry, i int) []Entry { return es[:i] }},
		{"re-chain from here", func(es []Entry, i int) []Entry {
			// Whoever holds the log rewrites entry i and recomputes every hash after it.
			es[i].Body = json.RawMessage(`{"rewritten":true}`)
			for k := i; k < len(es); k++ {
				var prev *Entry
				if k > 0 {
					prev = &es[k-1]
				}
				e, _ := New(prev, es[k].Time, es[k].Kind, es[k].Subject, es[k].Body)
				es[k] = e
			}
			return es
		}},
	}
	total, detected := 0, 0
	for _, m := range muts {
		for i := 0; i < n; i++ {
			total++
			if _, err := VerifyHead(Slice(m.apply(cp(), i)), head); err != nil {
				if !errors.Is(err, cove.ErrLedger) {
					t.Errorf("%s at %d: error %v is not ErrLedger", m.name, i, err)
				}
				detected++
			} else {
				t.Errorf("%s at %d: not detected", m.name, i)
			}
		}
	}
	t.Logf("mutations detected: %d/%d", detected, total)
}

func TestNewRejectsUnknownKind(t *testing.T) {
	if _, err := New(nil, time.Now(), Kind("job.teleported"), "x", nil); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}
