package ledger

import (
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/covedata/cove"
)

// InclusionProof shows that Entry is record Entry.Seq-1 of the tree a signed
// checkpoint names. It is self-contained: with the log's verifier key anyone
// can check it offline (Verify), without the log.
type InclusionProof struct {
	Entry      Entry            `json:"entry"`
	Checkpoint string           `json:"checkpoint"` // signed note
	Proof      tlog.RecordProof `json:"proof"`      // base64 hashes, leaf to root
}

// Verify checks the proof against its own checkpoint, which must be signed by
// v, and returns that checkpoint's head.
func (p InclusionProof) Verify(v note.Verifier) (Head, error) {
	cp, err := OpenCheckpoint([]byte(p.Checkpoint), v)
	if err != nil {
		return Head{}, err
	}
	return cp.Head, p.VerifyAgainst(cp.Head)
}

// VerifyAgainst checks the proof against a tree head the verifier already
// trusts, such as a checkpoint it kept, ignoring the proof's own checkpoint.
func (p InclusionProof) VerifyAgainst(h Head) error {
	e := p.Entry
	if e.Seq == 0 || e.Seq > h.Size {
		return fmt.Errorf("%w: entry %d is not in a tree of %d entries", cove.ErrLedger, e.Seq, h.Size)
	}
	if err := e.check(e.Seq); err != nil {
		return err
	}
	if err := tlog.CheckRecord(p.Proof, int64(h.Size), h.Hash, int64(e.Seq-1), e.RecordHash()); err != nil {
		return fmt.Errorf("%w: entry %d is not in the tree of %d entries: %v", cove.ErrLedger, e.Seq, h.Size, err)
	}
	return nil
}

// ConsistencyProof shows that the tree of the New checkpoint extends that of
// the Old one: the log was only appended to in between.
type ConsistencyProof struct {
	Old   string         `json:"old"` // signed note
	New   string         `json:"new"` // signed note
	Proof tlog.TreeProof `json:"proof"`
}

// Verify checks both checkpoints' signatures by v and the proof between them.
func (p ConsistencyProof) Verify(v note.Verifier) (old, new Head, err error) {
	o, err := OpenCheckpoint([]byte(p.Old), v)
	if err != nil {
		return Head{}, Head{}, fmt.Errorf("old %w", err)
	}
	n, err := OpenCheckpoint([]byte(p.New), v)
	if err != nil {
		return Head{}, Head{}, fmt.Errorf("new %w", err)
	}
	return o.Head, n.Head, CheckConsistency(p.Proof, o.Head, n.Head)
}

// CheckConsistency checks that proof shows the tree of head newer extends
// that of head older.
func CheckConsistency(proof tlog.TreeProof, older, newer Head) error {
	if older.Size > newer.Size {
		return fmt.Errorf("%w: tree of %d entries follows one of %d (truncated)", cove.ErrLedger, newer.Size, older.Size)
	}
	if older.Size == 0 { // every tree extends the empty one
		if empty, _ := tlog.TreeHash(0, nil); older.Hash != empty || len(proof) != 0 {
			return fmt.Errorf("%w: malformed proof from the empty tree", cove.ErrLedger)
		}
		return nil
	}
	if err := tlog.CheckTree(proof, int64(newer.Size), newer.Hash, int64(older.Size), older.Hash); err != nil {
		return fmt.Errorf("%w: tree of %d entries does not extend the tree of %d: %v", cove.ErrLedger, newer.Size, older.Size, err)
	}
	return nil
}
