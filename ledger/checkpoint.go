package ledger

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/covedata/cove"
)

// A checkpoint is a signed note (golang.org/x/mod/sumdb/note) whose text is
// tlog.FormatTree of a tree head, the format of Go's checksum database:
//
//	go.sum database tree
//	1000
//	<base64 tree hash>
//
//	— cove-ledger <base64 key hash and Ed25519 signature>
//
// The signature line names the log (its origin, the key's name). Other
// signatures, such as a witness's cosignature, may follow; they are kept and
// ignored here.

// Checkpoint is a verified, signed tree head and the note it came from.
type Checkpoint struct {
	Head
	Note []byte // the signed note, byte for byte
}

// GenerateKey makes a new Ed25519 key pair for the log named origin, as note
// keys: skey is secret, vkey is what verifiers need.
func GenerateKey(origin string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", "", fmt.Errorf("%w: generating ledger key %q: %v", cove.ErrInvalid, origin, err)
	}
	return skey, vkey, nil
}

// VerifierKey derives the verifier key of the signer key skey.
func VerifierKey(skey string) (string, error) {
	bad := fmt.Errorf("%w: malformed ledger signer key", cove.ErrInvalid)
	s, err := note.NewSigner(skey)
	if err != nil {
		return "", bad
	}
	// PRIVATE+KEY+<name>+<hash>+<base64(1 || seed)>; a name has no '+'.
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	parts := strings.SplitN(rest, "+", 3)
	if !ok || len(parts) != 3 {
		return "", bad
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", bad
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return "", bad
	}
	if v, err := note.NewVerifier(vkey); err != nil || v.KeyHash() != s.KeyHash() {
		return "", bad
	}
	return vkey, nil
}

// NewVerifier parses a verifier key.
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("%w: ledger verifier key: %v", cove.ErrInvalid, err)
	}
	return v, nil
}

// Sign makes the checkpoint of head h.
func Sign(s note.Signer, h Head) (Checkpoint, error) {
	msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(h.tree()))}, s)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: signing checkpoint %d: %v", cove.ErrLedger, h.Size, err)
	}
	return Checkpoint{Head: h, Note: msg}, nil
}

// maxNote bounds a checkpoint read from outside; a real one is about 200 bytes.
const maxNote = 64 << 10

// OpenCheckpoint checks msg's signature by v and parses the tree head it
// signs. It fails unless v signed it.
func OpenCheckpoint(msg []byte, v note.Verifier) (Checkpoint, error) {
	if len(msg) > maxNote {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint is %d bytes, limit %d", cove.ErrLimit, len(msg), maxNote)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return Checkpoint{}, fmt.Errorf("%w: checkpoint is not signed by %s", cove.ErrLedger, v.Name())
		}
		return Checkpoint{}, fmt.Errorf("%w: checkpoint: %v", cove.ErrLedger, err)
	}
	t, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint text: %v", cove.ErrLedger, err)
	}
	return Checkpoint{Head: Head{Size: uint64(t.N), Hash: t.Hash}, Note: msg}, nil
}
