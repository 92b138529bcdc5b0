package he

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/multiparty"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he/internal/wire"
)

// ProviderOptions configure a provider's key holder.
type ProviderOptions struct {
	// Approver decides whether a release was approved; required before the
	// provider gives any key-switch share.
	Approver Approver
	// Shares records the ciphertexts this provider has given a share for.
	// Nil: an in-memory record (one process lifetime); the lead backs it
	// with the ledger so a restart does not forget.
	Shares ShareLog
}

// Provider is one key holder: it keeps its secret share on its own side,
// contributes to the collective key and, for approved releases only, to key
// switches. Safe for concurrent use.
type Provider struct {
	id     string
	params Params
	sk     *rlwe.SecretKey
	opts   ProviderOptions

	mu     sync.Mutex
	keygen map[[32]byte]bool
}

// NewProvider draws a fresh secret share for the provider id.
func NewProvider(p Params, id string, opts ProviderOptions) (*Provider, error) {
	if p.rlwe.N() == 0 || id == "" {
		return nil, fmt.Errorf("%w: he: provider needs parameters and an id", cove.ErrInvalid)
	}
	sk := rlwe.NewKeyGenerator(p.rlwe).GenSecretKeyNew()
	return newProvider(p, id, sk, opts), nil
}

func newProvider(p Params, id string, sk *rlwe.SecretKey, opts ProviderOptions) *Provider {
	if opts.Shares == nil {
		opts.Shares = NewMemoryShareLog()
	}
	return &Provider{id: id, params: p, sk: sk, opts: opts, keygen: map[[32]byte]bool{}}
}

// ID returns the provider's id.
func (pr *Provider) ID() string { return pr.id }

// MarshalSecret serializes the provider's secret share for its own storage.
// It never leaves the provider's domain.
func (pr *Provider) MarshalSecret() ([]byte, error) {
	sk, err := pr.sk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return wire.Encode(wire.KindSecret, []byte(pr.id), sk), nil
}

// LoadProvider restores a provider from MarshalSecret's bytes.
func LoadProvider(p Params, secret []byte, opts ProviderOptions) (*Provider, error) {
	f, err := wire.Parse(secret, wire.KindSecret, 2)
	if err != nil {
		return nil, fmt.Errorf("%w: he: secret share: %v", cove.ErrInvalid, err)
	}
	sk := rlwe.NewSecretKey(p.rlwe)
	if err := sk.UnmarshalBinary(f[1]); err != nil || sk.Value.Q.N() != p.rlwe.N() || sk.Value.Q.Level() != p.rlwe.MaxLevelQ() {
		return nil, fmt.Errorf("%w: he: secret share does not fit the parameters", cove.ErrInvalid)
	}
	return newProvider(p, string(f[0]), sk, opts), nil
}

// KeygenShare returns the provider's public share of the collective keys
// for setup s: its share of the public key and of each Galois key. A
// provider gives one share per setup: a second request is refused, since two
// shares on the same common reference string with fresh errors would leak
// information on the secret.
func (pr *Provider) KeygenShare(s Setup) ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if !slices.Contains(s.Providers, pr.id) {
		return nil, fmt.Errorf("%w: he: provider %q is not in the setup", cove.ErrInvalid, pr.id)
	}
	if s.Params.lit.Scheme != pr.params.lit.Scheme || !s.Params.rlwe.Equal(&pr.params.rlwe) {
		return nil, fmt.Errorf("%w: he: setup parameters differ from the provider's", cove.ErrInvalid)
	}
	sid := s.id()
	pr.mu.Lock()
	if pr.keygen[sid] {
		pr.mu.Unlock()
		return nil, fmt.Errorf("%w: he: provider %q already gave its keygen share for this setup", cove.ErrPrivacy, pr.id)
	}
	pr.keygen[sid] = true
	pr.mu.Unlock()

	p := pr.params
	ckg := multiparty.NewPublicKeyGenProtocol(p.rlwe)
	pkShare := ckg.AllocateShare()
	ckg.GenShare(pr.sk, ckg.SampleCRP(s.crs("ckg", 0)), &pkShare)
	pkb, err := pkShare.MarshalBinary()
	if err != nil {
		return nil, err
	}
	fields := [][]byte{[]byte(pr.id), sid[:], pkb}
	gkg := multiparty.NewGaloisKeyGenProtocol(p.rlwe)
	evkp := evkParams(p)
	sh := gkg.AllocateShare(evkp)
	for _, el := range galoisElements(p) {
		if err := gkg.GenShare(pr.sk, el, gkg.SampleCRP(s.crs("gkg", el), evkp), &sh); err != nil {
			return nil, fmt.Errorf("%w: he: %v", cove.ErrPrivacy, err)
		}
		b, err := sh.MarshalBinary()
		if err != nil {
			return nil, err
		}
		fields = append(fields, b)
	}
	return wire.Encode(wire.KindKeygenShare, fields...), nil
}

// ReleaseShare returns the provider's share of the collective key switch of
// req's ciphertext to the operator's key, after checking, in order: the
// request is well formed; the approver approved this job's release of this
// ciphertext to this recipient; and the share log records that the provider
// has not shared this ciphertext before (the record is written before the
// share is computed, so a crash never yields an unrecorded share). The share
// carries fresh encryption randomness and flooding noise.
func (pr *Provider) ReleaseShare(ctx context.Context, req *ShareRequest) ([]byte, error) {
	if pr.opts.Approver == nil {
		return nil, fmt.Errorf("%w: he: provider %q has no approver", cove.ErrPrivacy, pr.id)
	}
	if err := req.check(pr.params); err != nil {
		return nil, err
	}
	fl, err := flooding(pr.params, req.meta.NoiseBound, req.meta.Providers)
	if err != nil {
		return nil, err
	}
	a := Approval{Job: req.Job, Provider: pr.id, Ciphertext: req.CiphertextHash(), Recipient: req.recipientHash(), Token: req.Token}
	if err := pr.opts.Approver.Approve(ctx, a); err != nil {
		return nil, fmt.Errorf("%w: he: release of job %q not approved: %v", cove.ErrPrivacy, req.Job, err)
	}
	if err := pr.opts.Shares.Record(ctx, pr.id, a.Ciphertext, req.Session); err != nil {
		return nil, err
	}
	pcks, err := multiparty.NewPublicKeySwitchProtocol(pr.params.rlwe, fl)
	if err != nil {
		return nil, fmt.Errorf("%w: he: %v", cove.ErrPrivacy, err)
	}
	sh := pcks.AllocateShare(req.ct.Level())
	pcks.GenShare(pr.sk, req.recipient, req.ct, &sh)
	b, err := sh.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return wire.Encode(wire.KindReleaseShare, []byte(pr.id), req.Session[:], b), nil
}
