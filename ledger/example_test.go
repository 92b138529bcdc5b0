package ledger_test

import (
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/covedata/cove/ledger"
)

// A log is built, a checkpoint signed, and one entry proved to a verifier
// who holds only the checkpoint and the verifier key.
func Example() {
	skey, vkey, _ := ledger.GenerateKey("example.org/cove")
	signer, _ := note.NewSigner(skey)

	var entries []ledger.Entry
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for i, kind := range []ledger.Kind{ledger.DatasetRegistered, ledger.GrantCreated, ledger.JobSubmitted} {
		e, _ := ledger.New(uint64(i+1), at, kind, fmt.Sprint("subject-", i+1), map[string]int{"i": i})
		entries = append(entries, e)
	}
	log, err := ledger.Verify(ledger.Slice(entries))
	if err != nil {
		panic(err)
	}
	cp, _ := ledger.Sign(signer, log.Head())
	proof, _ := log.ProveEntry(2, cp.Size)

	// The verifier's side.
	v, _ := ledger.NewVerifier(vkey)
	p := ledger.InclusionProof{Entry: entries[1], Checkpoint: string(cp.Note), Proof: proof}
	head, err := p.Verify(v)
	fmt.Println(head.Size, p.Entry.Kind, err)

	p.Entry.Subject = "forged"
	p.Entry.Hash = p.Entry.RecordHash()
	_, err = p.Verify(v)
	fmt.Println(err != nil)
	// Output:
	// 3 grant.created <nil>
	// true
}
