package he

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/tuneinsight/lattigo/v6/multiparty"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he/internal/wire"
)

// The Peek functions read the public header of a message without parsing
// its lattice objects: what the sandbox needs to route a message and check
// who sent it before anything expensive (or secret) happens. A peeked
// message may still be malformed; the full parse checks the rest.

// ShareRequestInfo is the public header of a share request.
type ShareRequestInfo struct {
	Job        string
	Session    [32]byte
	Ciphertext [32]byte // SHA-256 of the ciphertext to release
	Recipient  [32]byte // SHA-256 of the recipient's public key
	Token      []byte   // the approval evidence
}

// PeekShareRequest reads the header of a serialized ShareRequest.
func PeekShareRequest(b []byte) (ShareRequestInfo, error) {
	var info ShareRequestInfo
	f, err := wire.Parse(b, wire.KindShareRequest, 7)
	if err != nil {
		return info, fmt.Errorf("%w: he: share request: %v", cove.ErrInvalid, err)
	}
	if len(f[0]) == 0 || len(f[1]) != 32 {
		return info, fmt.Errorf("%w: he: share request: job or session", cove.ErrInvalid)
	}
	info.Job, info.Token = string(f[0]), slices.Clone(f[2])
	copy(info.Session[:], f[1])
	info.Ciphertext, info.Recipient = sha256.Sum256(f[5]), sha256.Sum256(f[6])
	return info, nil
}

// PeekReleaseShare reads the provider id and session of a key-switch share.
func PeekReleaseShare(b []byte) (provider string, session [32]byte, err error) {
	f, err := wire.Parse(b, wire.KindReleaseShare, 3)
	if err != nil {
		return "", session, fmt.Errorf("%w: he: release share: %v", cove.ErrInvalid, err)
	}
	if len(f[0]) == 0 || len(f[1]) != 32 {
		return "", session, fmt.Errorf("%w: he: release share: provider or session", cove.ErrInvalid)
	}
	copy(session[:], f[1])
	return string(f[0]), session, nil
}

// PeekKeygenShare reads the provider id and setup id of a keygen share.
func PeekKeygenShare(b []byte) (provider string, setup [32]byte, err error) {
	f, err := wire.Parse(b, wire.KindKeygenShare, -1)
	if err != nil || len(f) < 3 {
		return "", setup, fmt.Errorf("%w: he: keygen share: malformed", cove.ErrInvalid)
	}
	if len(f[0]) == 0 || len(f[1]) != 32 {
		return "", setup, fmt.Errorf("%w: he: keygen share: provider or setup", cove.ErrInvalid)
	}
	copy(setup[:], f[1])
	return string(f[0]), setup, nil
}

// ID returns the identifier that binds a setup (parameters, providers,
// seed); keygen shares name the setup they are for by it.
func (s Setup) ID() [32]byte { return s.id() }

// CheckKeygenShare parses a keygen share fully against setup s: it must be
// provider's, for s, with a share of every Galois key in the expected
// shape. The sandbox checks a share as it arrives, so that one malformed
// share cannot leave a setup whose keys can never be built.
func CheckKeygenShare(s Setup, provider string, b []byte) error {
	if err := s.validate(); err != nil {
		return err
	}
	evkp := evkParams(s.Params)
	ref := multiparty.NewGaloisKeyGenProtocol(s.Params.rlwe).AllocateShare(evkp)
	els := galoisElements(s.Params)
	sh, err := parseKeygenShare(s.Params, b, len(els), ref)
	if err != nil {
		return err
	}
	if sh.provider != provider || !slices.Contains(s.Providers, provider) {
		return fmt.Errorf("%w: he: keygen share of %q, not of %q", cove.ErrInvalid, sh.provider, provider)
	}
	if sh.setup != s.id() {
		return fmt.Errorf("%w: he: keygen share of %q is for another setup", cove.ErrInvalid, provider)
	}
	for i, g := range sh.gks {
		if g.GaloisElement != els[i] {
			return fmt.Errorf("%w: he: keygen share of %q has Galois element %d, want %d", cove.ErrInvalid, provider, g.GaloisElement, els[i])
		}
	}
	return nil
}
