package ledger

import (
	"fmt"
	"iter"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/covedata/cove"
)

// Head is a tree head: the number of entries and the Merkle tree hash over
// them (tlog.TreeHash). Hash is written in base64, as in a checkpoint.
type Head struct {
	Size uint64    `json:"size"`
	Hash tlog.Hash `json:"hash"`
}

func (h Head) tree() tlog.Tree { return tlog.Tree{N: int64(h.Size), Hash: h.Hash} }

// Log is a log's Merkle tree held in memory: every stored hash
// (tlog.StoredHashes), 64 bytes per entry on average, from which any earlier
// tree head and any proof can be computed. Build one with Verify or Append.
// A Log is not safe for concurrent use while appending.
type Log struct {
	size   uint64
	hashes []tlog.Hash
}

// Verify checks a whole log in order — sequence numbers from 1 without gaps,
// known kinds, valid JSON bodies, each entry's hash recomputed — and builds
// its Merkle tree. The first failure is returned, naming the entry. Verify
// alone trusts nothing and so proves little: compare the result with a signed
// checkpoint (Log.Check) to detect a changed, deleted, inserted, reordered or
// truncated entry.
func Verify(entries iter.Seq2[Entry, error]) (*Log, error) {
	l := &Log{}
	for e, err := range entries {
		if err != nil {
			return l, fmt.Errorf("%w: reading entry %d: %v", cove.ErrLedger, l.size+1, err)
		}
		if err := l.Append(e); err != nil {
			return l, err
		}
	}
	return l, nil
}

// Append checks e as the log's next entry and adds it to the tree.
func (l *Log) Append(e Entry) error {
	if err := e.check(l.size + 1); err != nil {
		return err
	}
	hs, err := tlog.StoredHashesForRecordHash(int64(l.size), e.Hash, l)
	if err != nil {
		return fmt.Errorf("%w: entry %d: %v", cove.ErrLedger, e.Seq, err)
	}
	l.hashes = append(l.hashes, hs...)
	l.size++
	return nil
}

// ReadHashes implements tlog.HashReader.
func (l *Log) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("%w: stored hash %d is not in a log of %d entries", cove.ErrLedger, x, l.size)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

// Size is the number of entries.
func (l *Log) Size() uint64 { return l.size }

// Head is the head of the whole tree.
func (l *Log) Head() Head {
	h, _ := l.HeadAt(l.size) // cannot fail: every hash is in memory
	return h
}

// HeadAt is the head of the tree of the first size entries.
func (l *Log) HeadAt(size uint64) (Head, error) {
	if size > l.size {
		return Head{}, fmt.Errorf("%w: log has %d entries, not %d (truncated?)", cove.ErrLedger, l.size, size)
	}
	th, err := tlog.TreeHash(int64(size), l)
	if err != nil {
		return Head{}, fmt.Errorf("%w: tree hash at %d: %v", cove.ErrLedger, size, err)
	}
	return Head{Size: size, Hash: th}, nil
}

// Check reports whether the log extends the tree of an earlier head, such as
// a signed checkpoint's: it still has at least h.Size entries and the first
// h.Size hash to h.Hash. It fails for any edit, deletion, insertion or
// reordering within those entries, for a truncation below h.Size, and for a
// log rebuilt from an entry before h.Size.
func (l *Log) Check(h Head) error {
	if h.Size > l.size {
		return fmt.Errorf("%w: log has %d entries, the checkpoint covers %d (truncated)", cove.ErrLedger, l.size, h.Size)
	}
	got, err := l.HeadAt(h.Size)
	if err != nil {
		return err
	}
	if got.Hash != h.Hash {
		return fmt.Errorf("%w: the first %d entries do not hash to the checkpoint (rewritten)", cove.ErrLedger, h.Size)
	}
	return nil
}

// ProveEntry returns the inclusion proof of entry seq in the tree of size
// entries (tlog.ProveRecord).
func (l *Log) ProveEntry(seq, size uint64) (tlog.RecordProof, error) {
	return proveEntry(seq, size, l)
}

// ProveConsistency returns the proof that the tree of newSize entries extends
// the tree of oldSize entries (tlog.ProveTree).
func (l *Log) ProveConsistency(oldSize, newSize uint64) (tlog.TreeProof, error) {
	return proveConsistency(oldSize, newSize, l)
}

func proveEntry(seq, size uint64, r tlog.HashReader) (tlog.RecordProof, error) {
	if seq == 0 || seq > size {
		return nil, fmt.Errorf("%w: entry %d is not in a tree of %d entries", cove.ErrNotFound, seq, size)
	}
	p, err := tlog.ProveRecord(int64(size), int64(seq-1), r)
	if err != nil {
		return nil, fmt.Errorf("%w: proving entry %d in tree %d: %v", cove.ErrLedger, seq, size, err)
	}
	return p, nil
}

func proveConsistency(oldSize, newSize uint64, r tlog.HashReader) (tlog.TreeProof, error) {
	if oldSize > newSize {
		return nil, fmt.Errorf("%w: tree of %d entries cannot extend one of %d (truncated)", cove.ErrLedger, newSize, oldSize)
	}
	if oldSize == 0 {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(int64(newSize), int64(oldSize), r)
	if err != nil {
		return nil, fmt.Errorf("%w: proving tree %d extends tree %d: %v", cove.ErrLedger, newSize, oldSize, err)
	}
	return p, nil
}

// ProveEntry computes an inclusion proof from stored hashes read through r,
// such as a database's; the proof is only as good as those hashes, which is
// fine: a verifier checks it against a signed checkpoint.
func ProveEntry(seq, size uint64, r tlog.HashReader) (tlog.RecordProof, error) {
	return proveEntry(seq, size, r)
}

// ProveConsistency computes a consistency proof from stored hashes read through r.
func ProveConsistency(oldSize, newSize uint64, r tlog.HashReader) (tlog.TreeProof, error) {
	return proveConsistency(oldSize, newSize, r)
}

// TreeHead computes the head of the tree of size entries from stored hashes
// read through r.
func TreeHead(size uint64, r tlog.HashReader) (Head, error) {
	th, err := tlog.TreeHash(int64(size), r)
	if err != nil {
		return Head{}, fmt.Errorf("%w: tree hash at %d: %v", cove.ErrLedger, size, err)
	}
	return Head{Size: size, Hash: th}, nil
}

// StoredHashes returns the hashes to store when e is appended to a log whose
// earlier stored hashes r reads, and the index of the first of them
// (tlog.StoredHashIndex(0, e.Seq-1)); the rest follow consecutively.
func StoredHashes(e Entry, r tlog.HashReader) (first int64, hashes []tlog.Hash, err error) {
	n := int64(e.Seq) - 1
	hs, err := tlog.StoredHashesForRecordHash(n, e.Hash, r)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: hashing entry %d: %v", cove.ErrLedger, e.Seq, err)
	}
	return tlog.StoredHashIndex(0, n), hs, nil
}

// StoredHashCount is the number of hashes stored for a log of size entries.
func StoredHashCount(size uint64) int64 { return tlog.StoredHashCount(int64(size)) }

// Slice adapts a slice for Verify.
func Slice(es []Entry) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		for _, e := range es {
			if !yield(e, nil) {
				return
			}
		}
	}
}
