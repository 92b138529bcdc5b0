package he

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/schemes/bgv"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he/internal/wire"
)

// Operator is the operator's side (the SDK): a key pair of its own. Results
// re-encrypted to its public key, and replies to its encrypted queries, open
// only with its secret key, which never leaves the operator. Not safe for
// concurrent use.
type Operator struct {
	params Params
	sk     *rlwe.SecretKey
	key    *OperatorKey
}

// OperatorKey is an operator's public key, sent to the platform as the
// recipient of releases.
type OperatorKey struct {
	params Params
	pk     *rlwe.PublicKey
}

// NewOperator draws a fresh key pair.
func NewOperator(p Params) (*Operator, error) {
	if p.rlwe.N() == 0 {
		return nil, fmt.Errorf("%w: he: operator without parameters", cove.ErrInvalid)
	}
	kg := rlwe.NewKeyGenerator(p.rlwe)
	sk, pk := kg.GenKeyPairNew()
	return &Operator{params: p, sk: sk, key: &OperatorKey{params: p, pk: pk}}, nil
}

// Key returns the operator's public key.
func (o *Operator) Key() *OperatorKey { return o.key }

// Hash returns the SHA-256 of the serialized public key (what an approval
// names as the recipient).
func (k *OperatorKey) Hash() [32]byte {
	b, _ := k.pk.MarshalBinary()
	return sha256.Sum256(b)
}

// MarshalBinary serializes the public key.
func (k *OperatorKey) MarshalBinary() ([]byte, error) {
	lit, _ := json.Marshal(k.params.lit)
	b, err := k.pk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return wire.Encode(wire.KindOperatorKey, lit, b), nil
}

// UnmarshalOperatorKey parses an operator's public key.
func UnmarshalOperatorKey(b []byte) (*OperatorKey, error) {
	f, err := wire.Parse(b, wire.KindOperatorKey, 2)
	if err != nil {
		return nil, fmt.Errorf("%w: he: operator key: %v", cove.ErrInvalid, err)
	}
	p, err := paramsFromJSON(f[0])
	if err != nil {
		return nil, err
	}
	k := &OperatorKey{params: p, pk: rlwe.NewPublicKey(p.rlwe)}
	if err := k.pk.UnmarshalBinary(f[1]); err != nil || k.pk.Value[0].Q.N() != p.rlwe.N() || k.pk.LevelQ() != p.rlwe.MaxLevelQ() {
		return nil, fmt.Errorf("%w: he: operator key does not fit its parameters", cove.ErrInvalid)
	}
	return k, nil
}

// Open decrypts a release addressed to this operator and returns one value
// per group. CKKS values are decoded with DecodePublic at the release's
// precision; BGV values are exact residues mod t, mapped to (−t/2, t/2].
func (o *Operator) Open(rel *Release) ([]float64, error) {
	if !rel.params.rlwe.Equal(&o.params.rlwe) {
		return nil, fmt.Errorf("%w: he: release under other parameters", cove.ErrInvalid)
	}
	pt := rlwe.NewDecryptor(o.params.rlwe, o.sk).DecryptNew(rel.ct)
	if o.params.lit.Scheme == CKKS {
		return decodePublic(o.params, pt, rel.meta.Groups, rel.meta.LogPrecision)
	}
	return decodeExactBGV(o.params, pt, rel.meta.Groups)
}

// Opened is a release opened by its operator: a value per group, the
// standard deviation of each value's noise (DP and flooding) and the half
// width of its 95% interval (NoiseInfo.Interval).
type Opened struct {
	Values   []float64
	NoiseStd float64
	Half95   float64
}

// OpenEncoded opens a release as the API carries it (base64 of
// MarshalRelease), expecting one value per group: what the SDK and the
// Runner's operator side both do with an HE output.
func (o *Operator) OpenEncoded(release string, groups int) (Opened, error) {
	b, err := base64.StdEncoding.DecodeString(release)
	if err != nil {
		return Opened{}, fmt.Errorf("%w: he: release is not base64", cove.ErrInvalid)
	}
	rel, err := UnmarshalRelease(b)
	if err != nil {
		return Opened{}, err
	}
	vals, err := o.Open(rel)
	if err != nil {
		return Opened{}, err
	}
	if len(vals) != groups {
		return Opened{}, fmt.Errorf("%w: he: %d values for %d groups", cove.ErrInvalid, len(vals), groups)
	}
	nz := rel.Noise()
	return Opened{Values: vals, NoiseStd: math.Hypot(nz.Std, nz.FloodStdOut), Half95: nz.Interval(0.05)}, nil
}

// decodePublic is the only CKKS decoding in this package: lattigo's
// DecodePublic, which rounds to 2^-logPrec (lattigo SECURITY.md).
func decodePublic(p Params, pt *rlwe.Plaintext, n int, logPrec float64) ([]float64, error) {
	if logPrec == 0 {
		return nil, fmt.Errorf("%w: he: a public decoding needs a precision", cove.ErrPrivacy)
	}
	vals := make([]float64, p.Slots())
	if err := ckks.NewEncoder(p.ckks).DecodePublic(pt, vals, logPrec); err != nil {
		return nil, wrap(err)
	}
	return vals[:n], nil
}

// decodeExactBGV decodes a BGV plaintext. BGV decryption is exact (the
// noise is removed modulo t), so it leaks no key-dependent noise and needs
// no rounding; it is the one Decode the no-Decode test allows.
func decodeExactBGV(p Params, pt *rlwe.Plaintext, n int) ([]float64, error) {
	vals := make([]uint64, p.Slots())
	if err := bgv.NewEncoder(p.bgv).Decode(pt, vals); err != nil {
		return nil, wrap(err)
	}
	t := p.lit.PlaintextModulus
	out := make([]float64, n)
	for i := range out {
		v := vals[i]
		if v > t/2 {
			out[i] = -float64(t - v)
		} else {
			out[i] = float64(v)
		}
	}
	return out, nil
}

// Interval returns, for a released value, the half-width of an interval
// that contains the exact aggregate with probability about 1−α, from the DP
// noise (Laplace or Gaussian tail), the flooding noise (Gaussian) and the
// DecodePublic rounding, combined by a union bound.
func (n NoiseInfo) Interval(alpha float64) float64 {
	var dp float64
	switch n.Mechanism {
	case Laplace:
		b := n.Std / math.Sqrt2
		dp = b * math.Log(2/alpha)
	default:
		dp = n.Std * math.Sqrt(2*math.Log(4/alpha))
	}
	flood := n.FloodStdOut * math.Sqrt(2*math.Log(4/alpha))
	return dp + flood + n.Rounding
}

// MarshalSecret serializes the operator's key pair (secret and public key)
// for the operator's own storage. It never goes to the platform: the SDK
// keeps it in a file readable by the operator only.
func (o *Operator) MarshalSecret() ([]byte, error) {
	lit, _ := json.Marshal(o.params.lit)
	sk, err := o.sk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	pk, err := o.key.pk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return wire.Encode(wire.KindOperatorSecret, lit, sk, pk), nil
}

// LoadOperator restores an operator from MarshalSecret's bytes, validating
// the parameters and the shapes of both keys again.
func LoadOperator(b []byte) (*Operator, error) {
	f, err := wire.Parse(b, wire.KindOperatorSecret, 3)
	if err != nil {
		return nil, fmt.Errorf("%w: he: operator secret: %v", cove.ErrInvalid, err)
	}
	p, err := paramsFromJSON(f[0])
	if err != nil {
		return nil, err
	}
	sk := rlwe.NewSecretKey(p.rlwe)
	if err := sk.UnmarshalBinary(f[1]); err != nil || sk.Value.Q.N() != p.rlwe.N() || sk.Value.Q.Level() != p.rlwe.MaxLevelQ() {
		return nil, fmt.Errorf("%w: he: operator secret does not fit its parameters", cove.ErrInvalid)
	}
	pk := rlwe.NewPublicKey(p.rlwe)
	if err := pk.UnmarshalBinary(f[2]); err != nil || pk.Value[0].Q.N() != p.rlwe.N() || pk.LevelQ() != p.rlwe.MaxLevelQ() {
		return nil, fmt.Errorf("%w: he: operator public key does not fit its parameters", cove.ErrInvalid)
	}
	return &Operator{params: p, sk: sk, key: &OperatorKey{params: p, pk: pk}}, nil
}

// Params returns the operator's parameters.
func (o *Operator) Params() Params { return o.params }
