package jobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/store"
)

// The sandbox's side of the HE path when key holders and operators reach it
// through the API (service): keygen shares arrive one by one and the keys
// are built when the last one does; encrypted columns are uploaded; see
// ShareBox for key-switch shares and AnswerHEQuery for encrypted queries.

// HEDir is the folder of the data directory that holds the HE files.
const HEDir = "he"

var keysBuild sync.Mutex // one key build at a time (they are large)

// KeygenResult is what the sandbox recorded of a keygen share, and the
// fingerprint of the collective keys if this share completed them.
type KeygenResult struct {
	Share store.HEKeygenShare `json:"share"`
	Keys  string              `json:"keys,omitempty"`
}

// AcceptKeygenShare takes provider's keygen share for the registered setup
// named setup: checked in full against the setup, written to the data
// directory, recorded with its ledger entry (he.keygen_share; a second
// share of the holder is ErrExists) and, once every holder's share is in,
// the collective keys are built and registered (he.keys).
func AcceptKeygenShare(ctx context.Context, st *store.Store, dataDir, setup, provider string, share []byte) (KeygenResult, error) {
	var res KeygenResult
	su, err := st.HESetupByName(ctx, setup)
	if err != nil {
		return res, err
	}
	s, err := HESetupOf(su)
	if err != nil {
		return res, err
	}
	if !policy.ValidName(provider) {
		return res, fmt.Errorf("%w: provider id %q", cove.ErrInvalid, provider)
	}
	if err := he.CheckKeygenShare(s, provider, share); err != nil {
		return res, err
	}
	rel := filepath.Join(HEDir, "keygen", su.Name+"."+provider+".share")
	path := filepath.Join(dataDir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return res, err
	}
	// Written before it is recorded: a share is in the ledger only if its
	// file is durable. A refused share's file is overwritten by the holder's
	// next attempt, which carries the same bytes (a holder keeps its share).
	if prev, err := st.HEKeygenShares(ctx, su.Name); err != nil {
		return res, err
	} else {
		for _, p := range prev {
			if p.Provider == provider {
				return res, fmt.Errorf("%w: provider %s already gave its keygen share for HE setup %s", cove.ErrExists, provider, su.Name)
			}
		}
	}
	if err := he.WriteFileDurable(path, share, 0o644); err != nil {
		return res, err
	}
	sum := sha256.Sum256(share)
	if res.Share, err = st.RecordHEKeygenShare(ctx, store.HEKeygenShare{Setup: su.Name, Provider: provider, SHA256: hex.EncodeToString(sum[:]), Path: rel}); err != nil {
		return res, err
	}
	res.Keys, err = buildKeysIfComplete(ctx, st, dataDir, su)
	return res, err
}

// buildKeysIfComplete builds and registers the keys of su once every holder
// gave its keygen share; it returns their fingerprint, or "" while shares
// are missing.
func buildKeysIfComplete(ctx context.Context, st *store.Store, dataDir string, su store.HESetup) (string, error) {
	keysBuild.Lock()
	defer keysBuild.Unlock()
	if k, err := st.HEKeysOfSetup(ctx, su.Name); err == nil {
		return k.Fingerprint, nil
	}
	got, err := st.HEKeygenShares(ctx, su.Name)
	if err != nil || len(got) < len(su.Providers) {
		return "", err
	}
	shares := map[string][]byte{}
	for _, g := range got {
		b, err := readChecked(dataDir, g.Path, g.SHA256, "keygen share of "+g.Provider)
		if err != nil {
			return "", err
		}
		shares[g.Provider] = b
	}
	keys, sums, err := CombineKeys(su, shares)
	if err != nil {
		return "", err
	}
	rel := filepath.Join(HEDir, su.Name+".keys")
	fp, err := RegisterKeys(ctx, st, su, keys, sums, filepath.Join(dataDir, rel), rel)
	if errors.Is(err, cove.ErrExists) {
		k, kerr := st.HEKeysOfSetup(ctx, su.Name)
		return k.Fingerprint, kerr
	}
	return fp, err
}

// HEKeysFile returns the path of the collective keys of setup and their
// registration.
func HEKeysFile(ctx context.Context, st *store.Store, dataDir, setup string) (string, store.HEKeys, error) {
	k, err := st.HEKeysOfSetup(ctx, setup)
	if err != nil {
		return "", k, err
	}
	path := k.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(dataDir, path)
	}
	return path, k, nil
}

// LoadHEKeys reads registered collective keys from their file, checking its
// SHA-256 and the keys' fingerprint.
func LoadHEKeys(ctx context.Context, st *store.Store, dataDir, fingerprint string) (*he.PublicKeys, error) {
	reg, err := st.HEKeysByFingerprint(ctx, fingerprint)
	if err != nil {
		return nil, err
	}
	b, err := readChecked(dataDir, reg.Path, reg.SHA256, "HE keys "+fingerprint)
	if err != nil {
		return nil, err
	}
	keys, err := he.UnmarshalPublicKeys(b)
	if err != nil {
		return nil, err
	}
	if hex.EncodeToString(fpOf(keys)) != fingerprint {
		return nil, fmt.Errorf("%w: HE keys file %s has another fingerprint", cove.ErrInvalid, reg.Path)
	}
	return keys, nil
}

// UploadColumn attaches an encrypted column, or a segment of it (c.Start,
// c.End: see AttachColumn), that a key holder uploaded: the setup's keys
// must be built and the provider one of their holders; the column must be
// encrypted under them (parsed in full), and is written to the data
// directory and registered (he.column, with its range and provider). A
// segment under other keys than the column's other segments, or over rows
// already attached, is refused.
func UploadColumn(ctx context.Context, st *store.Store, dataDir, setup, provider string, b []byte, c store.HEColumn) (store.HEColumn, error) {
	su, err := st.HESetupByName(ctx, setup)
	if err != nil {
		return c, err
	}
	if !slices.Contains(su.Providers, provider) {
		return c, fmt.Errorf("%w: provider %s holds no share of HE setup %s", cove.ErrOutOfScope, provider, setup)
	}
	k, err := st.HEKeysOfSetup(ctx, setup)
	if err != nil {
		return c, err
	}
	keys, err := LoadHEKeys(ctx, st, dataDir, k.Fingerprint)
	if err != nil {
		return c, err
	}
	if !policy.ValidName(c.Dataset) || c.Column == "" || len(c.Column) > 128 || filepath.Base(c.Column) != c.Column {
		return c, fmt.Errorf("%w: dataset or column name", cove.ErrInvalid)
	}
	// A segment over rows already attached is refused before the body is
	// parsed or written (the store checks it again when it registers).
	if segs, err := st.HEColumnSegments(ctx, c.Dataset, c.Column); err == nil {
		start, end := c.Start, c.End
		if start == 0 && end == 0 {
			end = math.MaxInt64 // the whole table
		} else if end <= 0 {
			end = start + 1 // at least the first row (SegmentToEnd: the rows are not known yet)
		}
		for _, o := range segs {
			if o.Start < end && start < o.End {
				return c, fmt.Errorf("%w: encrypted column %s.%s: a segment from row %d overlaps rows [%d, %d), attached by %s", cove.ErrExists, c.Dataset, c.Column, c.Start, o.Start, o.End, o.Provider)
			}
		}
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return c, err
	}
	rel := filepath.Join(HEDir, "columns", c.Dataset+"."+hex.EncodeToString(rnd[:])+".he")
	path := filepath.Join(dataDir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return c, err
	}
	c.Provider = provider
	if err := AttachColumn(ctx, st, keys, b, path, rel, c); err != nil {
		os.Remove(path)
		return c, err
	}
	return st.HEColumnSegment(ctx, c.Dataset, c.Column, c.Start)
}

// readChecked reads a file of the data directory and checks its SHA-256.
func readChecked(dataDir, path, sum, what string) ([]byte, error) {
	if !filepath.IsAbs(path) && dataDir != "" {
		path = filepath.Join(dataDir, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", cove.ErrNotFound, what, err)
	}
	if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
		return nil, fmt.Errorf("%w: %s changed since registration", cove.ErrInvalid, what)
	}
	return b, nil
}

// RegisterRecipientKey registers a serialized operator key (he.OperatorKey)
// as a recipient of HE releases for operator and returns its hash, the
// manifest's recipient. Registering the same key again returns its hash.
func RegisterRecipientKey(ctx context.Context, st *store.Store, operator string, b []byte) (string, error) {
	key, err := he.UnmarshalOperatorKey(b)
	if err != nil {
		return "", err
	}
	h := key.Hash()
	hash := hex.EncodeToString(h[:])
	if op, _, err := st.HERecipientKey(ctx, hash); err == nil {
		if op != operator {
			return "", fmt.Errorf("%w: recipient key %s is another operator's", cove.ErrExists, hash)
		}
		return hash, nil
	}
	return RegisterRecipient(ctx, st, operator, key)
}
