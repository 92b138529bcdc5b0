package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"time"

	"github.com/covedata/cove"
)

// Kind names an event. The set is closed: entries of other kinds do not verify.
type Kind string

// The events Cove records.
const (
	DatasetRegistered Kind = "dataset.registered"
	GrantCreated      Kind = "grant.created"
	JobSubmitted      Kind = "job.submitted"
	JobAdmitted       Kind = "job.admitted"
	JobRejected       Kind = "job.rejected"
	JobRan            Kind = "job.ran"
	JobFailed         Kind = "job.failed"
	Released          Kind = "release"
)

var kinds = map[Kind]bool{
	DatasetRegistered: true, GrantCreated: true, JobSubmitted: true, JobAdmitted: true,
	JobRejected: true, JobRan: true, JobFailed: true, Released: true,
}

// Genesis is the Prev of the first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Entry is one event. Body is JSON, hashed as the exact bytes stored.
type Entry struct {
	Seq     uint64          `json:"seq"`
	Time    time.Time       `json:"time"`
	Kind    Kind            `json:"kind"`
	Subject string          `json:"subject"`
	Body    json.RawMessage `json:"body"`
	Prev    string          `json:"prev"`
	Hash    string          `json:"hash"`
}

// New returns the entry that follows prev (nil for the first) with its hash
// computed. The time is truncated to microseconds and kept in UTC so that it
// survives a round trip through SQLite and JSON unchanged.
func New(prev *Entry, at time.Time, kind Kind, subject string, body any) (Entry, error) {
	if !kinds[kind] {
		return Entry{}, fmt.Errorf("%w: unknown ledger kind %q", cove.ErrInvalid, kind)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: encoding %s body: %v", cove.ErrLedger, kind, err)
	}
	e := Entry{Seq: 1, Time: at.UTC().Truncate(time.Microsecond), Kind: kind, Subject: subject, Body: raw, Prev: Genesis}
	if prev != nil {
		e.Seq, e.Prev = prev.Seq+1, prev.Hash
	}
	e.Hash = e.computeHash()
	return e, nil
}

// computeHash hashes a length-prefixed encoding of every field but Hash, so
// no two different entries share an encoding.
func (e Entry) computeHash() string {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte("cove-ledger-v1"))
	binary.BigEndian.PutUint64(n[:], e.Seq)
	field(n[:])
	field([]byte(e.Time.UTC().Format(time.RFC3339Nano)))
	field([]byte(e.Kind))
	field([]byte(e.Subject))
	field(e.Body)
	field([]byte(e.Prev))
	return hex.EncodeToString(h.Sum(nil))
}

// Head is what Verify reports: how many entries it checked and the last hash.
type Head struct {
	Size uint64 `json:"size"`
	Hash string `json:"hash"`
}

// Verify checks a whole log in order: sequence numbers from 1 without gaps,
// known kinds, valid JSON bodies, each Prev equal to the previous Hash and each
// Hash recomputed. The first failure is returned, naming the entry.
func Verify(entries iter.Seq2[Entry, error]) (Head, error) {
	head := Head{Hash: Genesis}
	for e, err := range entries {
		if err != nil {
			return head, fmt.Errorf("%w: reading entry %d: %v", cove.ErrLedger, head.Size+1, err)
		}
		want := head.Size + 1
		switch {
		case e.Seq != want:
			return head, fmt.Errorf("%w: entry %d has sequence number %d", cove.ErrLedger, want, e.Seq)
		case !kinds[e.Kind]:
			return head, fmt.Errorf("%w: entry %d has unknown kind %q", cove.ErrLedger, want, e.Kind)
		case !json.Valid(e.Body):
			return head, fmt.Errorf("%w: entry %d body is not valid JSON", cove.ErrLedger, want)
		case e.Prev != head.Hash:
			return head, fmt.Errorf("%w: entry %d does not link to entry %d", cove.ErrLedger, want, head.Size)
		case e.computeHash() != e.Hash:
			return head, fmt.Errorf("%w: entry %d hash does not match its content", cove.ErrLedger, want)
		}
		head = Head{Size: e.Seq, Hash: e.Hash}
	}
	return head, nil
}

// VerifyHead verifies the log and checks that it still contains the head
// published earlier: an entry at want.Size with want.Hash. That catches a log
// truncated or rebuilt since want was taken.
func VerifyHead(entries iter.Seq2[Entry, error], want Head) (Head, error) {
	var seen string
	checked := func(yield func(Entry, error) bool) {
		for e, err := range entries {
			if err == nil && e.Seq == want.Size {
				seen = e.Hash
			}
			if !yield(e, err) {
				return
			}
		}
	}
	head, err := Verify(checked)
	if err != nil {
		return head, err
	}
	if want.Size == 0 {
		return head, nil
	}
	if head.Size < want.Size {
		return head, fmt.Errorf("%w: log has %d entries, the published head has %d (truncated)", cove.ErrLedger, head.Size, want.Size)
	}
	if seen != want.Hash {
		return head, fmt.Errorf("%w: entry %d hash differs from the published head (rewritten)", cove.ErrLedger, want.Size)
	}
	return head, nil
}

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
