package ledger

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/covedata/cove"
)

// Kind names an event. The set is closed: entries of other kinds do not verify.
type Kind string

// The events Cove records.
const (
	DatasetRegistered Kind = "dataset.registered"
	GrantCreated      Kind = "grant.created"
	GrantRevoked      Kind = "grant.revoked"
	JobSubmitted      Kind = "job.submitted"
	JobQueued         Kind = "job.queued" // waiting for the authority's review
	JobReviewed       Kind = "job.reviewed"
	JobAdmitted       Kind = "job.admitted"
	JobRejected       Kind = "job.rejected"
	JobCancelled      Kind = "job.cancelled"
	JobRan            Kind = "job.ran"
	JobFailed         Kind = "job.failed"
	Released          Kind = "release"
	// The homomorphic path (see docs/he.md).
	HESetup       Kind = "he.setup"        // key holders, parameters and public seed of a collective key
	HEKeys        Kind = "he.keys"         // collective public keys built from every holder's keygen share
	HEColumn      Kind = "he.column"       // an encrypted column attached to a dataset
	HERecipient   Kind = "he.recipient"    // an operator's public key, recipient of HE releases
	HEApproved    Kind = "he.approved"     // release of one ciphertext to one recipient approved for a job
	KeyShareGiven Kind = "he.share"        // a key holder's key-switch share received for an approved release
	HEKeygenShare Kind = "he.keygen_share" // a key holder's keygen share received through the API
	HEQuery       Kind = "he.query"        // an operator's encrypted query answered, its budget debited
)

var kinds = map[Kind]bool{
	DatasetRegistered: true, GrantCreated: true, GrantRevoked: true,
	JobSubmitted: true, JobQueued: true, JobReviewed: true, JobAdmitted: true, JobRejected: true,
	JobCancelled: true, JobRan: true, JobFailed: true, Released: true,
	HESetup: true, HEKeys: true, HEColumn: true, HERecipient: true, HEApproved: true, KeyShareGiven: true,
	HEKeygenShare: true, HEQuery: true,
}

// Known reports whether k is one of the kinds above.
func Known(k Kind) bool { return kinds[k] }

// Entry is one event and one record of the Merkle tree. Body is JSON, hashed
// as the exact bytes stored. Hash is the entry's tlog record hash (see Record);
// it is carried for convenience and always recomputed by a verifier.
type Entry struct {
	Seq     uint64          `json:"seq"` // 1-based; the tree's record index is Seq-1
	Time    time.Time       `json:"time"`
	Kind    Kind            `json:"kind"`
	Subject string          `json:"subject"`
	Body    json.RawMessage `json:"body"`
	Hash    tlog.Hash       `json:"hash"`
}

// New returns entry seq (1 for the first) with its hash computed. The time is
// truncated to microseconds and kept in UTC so that it survives a round trip
// through SQLite and JSON unchanged.
func New(seq uint64, at time.Time, kind Kind, subject string, body any) (Entry, error) {
	if !kinds[kind] {
		return Entry{}, fmt.Errorf("%w: unknown ledger kind %q", cove.ErrInvalid, kind)
	}
	if seq == 0 {
		return Entry{}, fmt.Errorf("%w: ledger sequence numbers start at 1", cove.ErrInvalid)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: encoding %s body: %v", cove.ErrLedger, kind, err)
	}
	e := Entry{Seq: seq, Time: at.UTC().Truncate(time.Microsecond), Kind: kind, Subject: subject, Body: raw}
	e.Hash = e.RecordHash()
	return e, nil
}

// recordVersion opens every record; a change of encoding changes it.
const recordVersion = "cove-ledger-v2"

// Record is the entry's wire encoding, the tlog record: a length-prefixed
// sequence of the version tag, Seq, Time (RFC 3339, UTC), Kind, Subject and
// Body, so no two different entries share an encoding. Hash is not part of it.
// The encoding is frozen: a golden test holds it.
func (e Entry) Record() []byte {
	const ts = len("2006-01-02T15:04:05.000000000Z")
	b := make([]byte, 0, 6*8+len(recordVersion)+8+ts+len(e.Kind)+len(e.Subject)+len(e.Body))
	b = appendField(b, recordVersion)
	b = binary.BigEndian.AppendUint64(b, 8)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, 0) // length of the time, set below
	at := len(b)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	binary.BigEndian.PutUint64(b[at-8:], uint64(len(b)-at))
	b = appendField(b, string(e.Kind))
	b = appendField(b, e.Subject)
	return appendField(b, e.Body)
}

func appendField[T ~string | ~[]byte](b []byte, f T) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
	return append(b, f...)
}

// RecordHash is tlog.RecordHash(e.Record()): SHA-256 of a zero byte and the
// record, the leaf hash of RFC 6962.
func (e Entry) RecordHash() tlog.Hash { return tlog.RecordHash(e.Record()) }

// check verifies one entry on its own: it must be entry want, of a known kind,
// with a JSON body and its Hash equal to its content's.
func (e Entry) check(want uint64) error {
	switch {
	case e.Seq != want:
		return fmt.Errorf("%w: entry %d has sequence number %d", cove.ErrLedger, want, e.Seq)
	case !kinds[e.Kind]:
		return fmt.Errorf("%w: entry %d has unknown kind %q", cove.ErrLedger, want, e.Kind)
	case !json.Valid(e.Body):
		return fmt.Errorf("%w: entry %d body is not valid JSON", cove.ErrLedger, want)
	case e.RecordHash() != e.Hash:
		return fmt.Errorf("%w: entry %d hash does not match its content", cove.ErrLedger, want)
	}
	return nil
}
