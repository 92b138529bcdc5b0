package he

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/multiparty"
	"github.com/tuneinsight/lattigo/v6/ring"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he/internal/wire"
)

// Approval is what a provider asks its Approver before it contributes to a
// key switch: that the policy approved the release of this job's ciphertext
// (by hash) to this recipient key (by hash).
type Approval struct {
	Job        string
	Provider   string
	Ciphertext [32]byte
	Recipient  [32]byte
	// Token is the approval evidence the request carries (a signature, a
	// ledger entry id); its meaning is the Approver's.
	Token []byte
}

// Approver decides whether a release was approved. The lead backs it with
// the ledger (a recorded release approval for the job, ciphertext and
// recipient); SignedApprover checks an Ed25519-signed token instead.
// Implementations must be safe for concurrent use.
type Approver interface {
	Approve(ctx context.Context, a Approval) error
}

// approvalMessage is what an authority signs to approve a release.
func approvalMessage(job string, ct, recipient [32]byte) []byte {
	m := []byte("cove/he/approval/v1\x00")
	m = append(m, job...)
	m = append(m, 0)
	m = append(m, ct[:]...)
	return append(m, recipient[:]...)
}

// SignApproval signs the approval of a release of the ciphertext with hash
// ct, for job, to the recipient key with hash recipient.
func SignApproval(priv ed25519.PrivateKey, job string, ct, recipient [32]byte) []byte {
	return ed25519.Sign(priv, approvalMessage(job, ct, recipient))
}

// SignedApprover approves a release whose token is the authority's Ed25519
// signature over (job, ciphertext hash, recipient hash).
type SignedApprover struct{ Authority ed25519.PublicKey }

// Approve implements Approver.
func (s SignedApprover) Approve(_ context.Context, a Approval) error {
	if len(s.Authority) != ed25519.PublicKeySize || !ed25519.Verify(s.Authority, approvalMessage(a.Job, a.Ciphertext, a.Recipient), a.Token) {
		return errors.New("approval signature does not verify")
	}
	return nil
}

// ShareLog records the ciphertexts a provider has given a key-switch share
// for. Record must fail, and record nothing, when the provider already
// shared the ciphertext (any session) or the session id was used before;
// it must be durable before it returns nil. Safe for concurrent use.
type ShareLog interface {
	Record(ctx context.Context, provider string, ciphertext, session [32]byte) error
}

// MemoryShareLog is an in-memory ShareLog.
type MemoryShareLog struct {
	mu       sync.Mutex
	cts      map[string]bool
	sessions map[string]bool
}

// NewMemoryShareLog returns an empty in-memory share log.
func NewMemoryShareLog() *MemoryShareLog {
	return &MemoryShareLog{cts: map[string]bool{}, sessions: map[string]bool{}}
}

// Record implements ShareLog.
func (m *MemoryShareLog) Record(_ context.Context, provider string, ct, session [32]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	kc, ks := provider+"\x00"+string(ct[:]), provider+"\x00"+string(session[:])
	if m.cts[kc] {
		return fmt.Errorf("%w: he: provider %q already gave a share for ciphertext %x", cove.ErrPrivacy, provider, ct[:8])
	}
	if m.sessions[ks] {
		return fmt.Errorf("%w: he: session %x reused", cove.ErrPrivacy, session[:8])
	}
	m.cts[kc], m.sessions[ks] = true, true
	return nil
}

// Count returns how many shares were recorded.
func (m *MemoryShareLog) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.cts)
}

// releaseMeta travels with a noised aggregate to the operator.
type releaseMeta struct {
	Scheme Scheme `json:"scheme"`
	Groups int    `json:"groups"`
	// LogPrecision is the DecodePublic precision (CKKS): values are rounded
	// to multiples of 2^-LogPrecision.
	LogPrecision float64 `json:"log_precision"`
	// Noise describes the DP noise added under encryption.
	Noise NoiseInfo `json:"noise"`
	// NoiseBound bounds the ciphertext noise; providers size flooding from it.
	NoiseBound float64 `json:"noise_bound"`
	// Providers is the number of key holders (flooding adds up over them).
	Providers int `json:"providers"`
}

// NoiseInfo describes the DP noise of a release, for the operator's
// confidence intervals and the lead's accounting.
type NoiseInfo struct {
	Mechanism   Mechanism `json:"mechanism"`
	Epsilon     float64   `json:"epsilon"`
	Delta       float64   `json:"delta"`
	L0          int64     `json:"l0"`
	LInf        float64   `json:"linf"`
	Std         float64   `json:"std"`          // standard deviation of the DP noise per group
	FloodStdOut float64   `json:"flood_std"`    // standard deviation of the flooding noise per decoded value
	Rounding    float64   `json:"rounding_ulp"` // the DecodePublic grid, 2^-LogPrecision (CKKS)
}

// ShareRequest asks every provider for its share of the key switch of one
// noised aggregate to one recipient. Each request carries a fresh random
// session id; providers refuse a ciphertext they already shared.
type ShareRequest struct {
	Job     string
	Session [32]byte
	Token   []byte

	params    Params
	meta      releaseMeta
	ct        *rlwe.Ciphertext
	ctBytes   []byte
	recipient *rlwe.PublicKey
	recBytes  []byte
}

// NewShareRequest prepares the release of n to the recipient for job, with
// a fresh session id; token is the approval evidence providers will check.
func NewShareRequest(job string, n *Noised, recipient *OperatorKey, token []byte) (*ShareRequest, error) {
	if job == "" || n == nil || recipient == nil {
		return nil, fmt.Errorf("%w: he: share request needs a job, an aggregate and a recipient", cove.ErrInvalid)
	}
	if !recipient.params.rlwe.Equal(&n.params.rlwe) {
		return nil, fmt.Errorf("%w: he: recipient key has other parameters", cove.ErrInvalid)
	}
	r := &ShareRequest{Job: job, Token: token, params: n.params, meta: n.meta, ct: n.ct, recipient: recipient.pk}
	if _, err := rand.Read(r.Session[:]); err != nil {
		return nil, err
	}
	var err error
	if r.ctBytes, err = n.ct.MarshalBinary(); err != nil {
		return nil, err
	}
	if r.recBytes, err = recipient.pk.MarshalBinary(); err != nil {
		return nil, err
	}
	return r, nil
}

// CiphertextHash is the SHA-256 of the ciphertext to release: what the
// policy approves and the share log records.
func (r *ShareRequest) CiphertextHash() [32]byte { return sha256.Sum256(r.ctBytes) }

// RecipientHash is the SHA-256 of the recipient's public key.
func (r *ShareRequest) RecipientHash() [32]byte { return r.recipientHash() }

func (r *ShareRequest) recipientHash() [32]byte { return sha256.Sum256(r.recBytes) }

func (r *ShareRequest) check(p Params) error {
	if r.Job == "" || r.ct == nil || r.recipient == nil {
		return fmt.Errorf("%w: he: incomplete share request", cove.ErrInvalid)
	}
	if r.Session == ([32]byte{}) {
		return fmt.Errorf("%w: he: share request without a session id", cove.ErrInvalid)
	}
	if r.ct.Degree() != 1 || r.ct.Level() != p.releaseLevel() || r.ct.Value[1].N() != p.rlwe.N() {
		return fmt.Errorf("%w: he: ciphertext to release has the wrong shape", cove.ErrInvalid)
	}
	return nil
}

// MarshalBinary serializes the request for the providers.
func (r *ShareRequest) MarshalBinary() ([]byte, error) {
	lit, _ := json.Marshal(r.params.lit)
	meta, _ := json.Marshal(r.meta)
	return wire.Encode(wire.KindShareRequest, []byte(r.Job), r.Session[:], r.Token, lit, meta, r.ctBytes, r.recBytes), nil
}

// UnmarshalShareRequest parses a request; the provider passes its own
// parameters, and a request for others is refused.
func UnmarshalShareRequest(p Params, b []byte) (*ShareRequest, error) {
	f, err := wire.Parse(b, wire.KindShareRequest, 7)
	if err != nil {
		return nil, fmt.Errorf("%w: he: share request: %v", cove.ErrInvalid, err)
	}
	rp, err := paramsFromJSON(f[3])
	if err != nil {
		return nil, err
	}
	if !rp.rlwe.Equal(&p.rlwe) {
		return nil, fmt.Errorf("%w: he: share request for other parameters", cove.ErrInvalid)
	}
	r := &ShareRequest{Job: string(f[0]), Token: slices.Clone(f[2]), params: p, ctBytes: slices.Clone(f[5]), recBytes: slices.Clone(f[6])}
	if len(f[1]) != 32 {
		return nil, fmt.Errorf("%w: he: share request: session", cove.ErrInvalid)
	}
	copy(r.Session[:], f[1])
	if err := json.Unmarshal(f[4], &r.meta); err != nil {
		return nil, fmt.Errorf("%w: he: share request: %v", cove.ErrInvalid, err)
	}
	r.ct = rlwe.NewCiphertext(p.rlwe, 1, p.releaseLevel())
	if err := r.ct.UnmarshalBinary(r.ctBytes); err != nil {
		return nil, fmt.Errorf("%w: he: share request: %v", cove.ErrInvalid, err)
	}
	r.recipient = rlwe.NewPublicKey(p.rlwe)
	if err := r.recipient.UnmarshalBinary(r.recBytes); err != nil {
		return nil, fmt.Errorf("%w: he: share request: %v", cove.ErrInvalid, err)
	}
	return r, r.check(p)
}

// floodSigma is the standard deviation of each provider's flooding noise:
// 2^FloodBits times the bound on the released ciphertext's own noise, so the
// key-switched result statistically hides that noise (which depends on the
// secret key) and each provider's secret share.
func floodSigma(p Params, noiseBound float64) float64 {
	return math.Exp2(float64(p.lit.FloodBits)) * max(noiseBound, minNoiseBound(p))
}

// minNoiseBound is the noise floor of Cove's circuit at the release level
// (rescale rounding), whatever the weights.
func minNoiseBound(p Params) float64 {
	if p.lit.Scheme == BGV {
		return 1 << 7
	}
	return 1 << 8
}

// noiseBound bounds the standard deviation of the coefficients of an
// aggregate's noise at the release level, before flooding. The noise after a
// weight multiplication grows with the Euclidean norm of the weights (CKKS;
// BGV's rescale removes it), and the mask sums one such term per group.
// TestNoiseBound measures the circuit with the ideal secret key over several
// weight shapes and fails if a measurement exceeds this bound.
func noiseBound(p Params, weights [][]float64) float64 {
	g := math.Sqrt(float64(len(weights)))
	if p.lit.Scheme == BGV {
		return g * minNoiseBound(p)
	}
	var most float64
	for _, w := range weights {
		var s float64
		for _, x := range w {
			s += x * x
		}
		most = max(most, math.Sqrt(s))
	}
	return 2 * g * (181 + most)
}

// flooding returns lattigo's flooding distribution for p and a noise bound,
// refusing one that would break decryption (BGV) or leave no precision.
func flooding(p Params, noiseBound float64, providers int) (ring.DiscreteGaussian, error) {
	s := floodSigma(p, noiseBound)
	total := 6 * s * math.Sqrt(float64(max(providers, 1)))
	var room float64
	if p.lit.Scheme == BGV {
		room = math.Exp2(float64(p.lit.LogQ[0]+p.lit.LogQ[1]-2)) / float64(p.lit.PlaintextModulus)
	} else {
		room = math.Exp2(float64(p.lit.LogScale))
	}
	if math.IsNaN(s) || total >= room {
		return ring.DiscreteGaussian{}, fmt.Errorf("%w: he: flooding σ = 2^%.1f leaves no room at these parameters", cove.ErrPrivacy, math.Log2(s))
	}
	return ring.DiscreteGaussian{Sigma: s, Bound: 6 * s}, nil
}

// Release is an aggregate re-encrypted to the operator's key: only the
// operator can open it.
type Release struct {
	params Params
	meta   releaseMeta
	ct     *rlwe.Ciphertext
}

// Combine aggregates one share from every provider of keys into the
// re-encrypted result. A missing share blocks the release.
func (r *ShareRequest) Combine(keys *PublicKeys, shares [][]byte) (*Release, error) {
	fl, err := flooding(r.params, r.meta.NoiseBound, len(keys.providers))
	if err != nil {
		return nil, err
	}
	pcks, err := multiparty.NewPublicKeySwitchProtocol(r.params.rlwe, fl)
	if err != nil {
		return nil, fmt.Errorf("%w: he: %v", cove.ErrPrivacy, err)
	}
	agg := pcks.AllocateShare(r.ct.Level())
	got := map[string]bool{}
	for _, b := range shares {
		f, err := wire.Parse(b, wire.KindReleaseShare, 3)
		if err != nil {
			return nil, fmt.Errorf("%w: he: release share: %v", cove.ErrInvalid, err)
		}
		id := string(f[0])
		if !slices.Contains(keys.providers, id) || got[id] {
			return nil, fmt.Errorf("%w: he: release share from unknown or repeated provider %q", cove.ErrInvalid, id)
		}
		if string(f[1]) != string(r.Session[:]) {
			return nil, fmt.Errorf("%w: he: release share of %q is for another session", cove.ErrInvalid, id)
		}
		var sh multiparty.PublicKeySwitchShare
		if err := sh.UnmarshalBinary(f[2]); err != nil || sh.Level() != r.ct.Level() || sh.Value[0].N() != r.params.rlwe.N() {
			return nil, fmt.Errorf("%w: he: release share of %q is malformed", cove.ErrInvalid, id)
		}
		got[id] = true
		if err := pcks.AggregateShares(agg, sh, &agg); err != nil {
			return nil, fmt.Errorf("%w: he: %v", cove.ErrInvalid, err)
		}
	}
	var missing []string
	for _, p := range keys.providers {
		if !got[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: he: release blocked: no share from %v", cove.ErrPrivacy, missing)
	}
	out := rlwe.NewCiphertext(r.params.rlwe, 1, r.ct.Level())
	pcks.KeySwitch(r.ct, agg, out)
	return &Release{params: r.params, meta: r.meta, ct: out}, nil
}

// Groups returns the number of values in the release.
func (rel *Release) Groups() int { return rel.meta.Groups }

// Noise describes the noise of the release.
func (rel *Release) Noise() NoiseInfo { return rel.meta.Noise }

// MarshalBinary serializes the release for the operator.
func (rel *Release) MarshalBinary() ([]byte, error) {
	lit, _ := json.Marshal(rel.params.lit)
	meta, _ := json.Marshal(rel.meta)
	ct, err := rel.ct.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return wire.Encode(wire.KindRelease, lit, meta, ct), nil
}

// UnmarshalRelease parses a release written by MarshalBinary.
func UnmarshalRelease(b []byte) (*Release, error) {
	f, err := wire.Parse(b, wire.KindRelease, 3)
	if err != nil {
		return nil, fmt.Errorf("%w: he: release: %v", cove.ErrInvalid, err)
	}
	p, err := paramsFromJSON(f[0])
	if err != nil {
		return nil, err
	}
	rel := &Release{params: p}
	if err := json.Unmarshal(f[1], &rel.meta); err != nil {
		return nil, fmt.Errorf("%w: he: release: %v", cove.ErrInvalid, err)
	}
	rel.ct = rlwe.NewCiphertext(p.rlwe, 1, p.releaseLevel())
	if err := rel.ct.UnmarshalBinary(f[2]); err != nil {
		return nil, fmt.Errorf("%w: he: release: %v", cove.ErrInvalid, err)
	}
	if rel.meta.Groups < 1 || rel.meta.Groups > p.Slots() {
		return nil, fmt.Errorf("%w: he: release: %d groups", cove.ErrInvalid, rel.meta.Groups)
	}
	return rel, nil
}
