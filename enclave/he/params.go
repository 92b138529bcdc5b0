package he

import (
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/schemes/bgv"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"

	"github.com/covedata/cove"
)

// Scheme names the homomorphic scheme of a parameter set.
type Scheme string

const (
	// CKKS encrypts reals approximately.
	CKKS Scheme = "ckks"
	// BGV encrypts integers exactly, modulo the plaintext modulus.
	BGV Scheme = "bgv"
)

// maxLogQP is the 128-bit classical security table of the Homomorphic
// Encryption Standard for a uniform ternary secret and error σ = 3.2: the
// largest log2(QP) allowed for each log2(N). lattigo's example sets are named
// after the same bounds (ExampleParameters128BitLogN14LogQP438).
var maxLogQP = map[int]float64{
	10: 27,
	11: 54,
	12: 109,
	13: 218,
	14: 438,
	15: 881,
}

// MaxLogQP returns the largest log2(QP) that keeps 128-bit security for a
// ring of degree 2^logN, and false when logN is outside the table.
func MaxLogQP(logN int) (float64, bool) {
	v, ok := maxLogQP[logN]
	return v, ok
}

// ParamsLiteral is the public, serializable description of a parameter set.
// Decode it from untrusted input, then validate it with NewParams.
// Secret and error distributions are not configurable: they are lattigo's
// defaults (ternary secret, σ = 3.2), which the security table assumes.
type ParamsLiteral struct {
	Scheme Scheme `json:"scheme"`
	LogN   int    `json:"log_n"`
	// LogQ lists the bit sizes of the ciphertext primes, q0 first. Encrypted
	// columns live at the top level; an aggregate uses two levels (weights,
	// then the group mask) and is released at level len(LogQ)-3.
	LogQ []int `json:"log_q"`
	// LogP lists the bit sizes of the key-switching primes.
	LogP []int `json:"log_p"`
	// LogScale is the CKKS scaling factor 2^LogScale (CKKS only).
	LogScale int `json:"log_scale,omitempty"`
	// PlaintextModulus is the BGV plaintext prime t, t ≡ 1 mod 2N (BGV only).
	// Sums are exact while they stay within (−t/2, t/2).
	PlaintextModulus uint64 `json:"plaintext_modulus,omitempty"`
	// FloodBits is the statistical security, in bits, of the noise flooding
	// in a collective key switch: each provider's flooding noise has a
	// standard deviation 2^FloodBits times the bound on the ciphertext's own
	// noise (see docs/he.md).
	FloodBits int `json:"flood_bits"`
}

// DefaultCKKS is Cove's CKKS set: N = 2^14 (8,192 real slots per
// ciphertext), Q = 60 + 3×50 bits, P = 61 bits, scale 2^50 (logQP 271 ≤ 438).
func DefaultCKKS() ParamsLiteral {
	return ParamsLiteral{Scheme: CKKS, LogN: 14, LogQ: []int{60, 50, 50, 50}, LogP: []int{61}, LogScale: 50, FloodBits: 30}
}

// DefaultBGV is Cove's BGV set: N = 2^14 (16,384 integer slots), Q = 4×60
// bits, P = 61 bits (logQP 301 ≤ 438), t = 68720066561 (36 bits, ≡ 1 mod 2^15):
// exact sums within ±3.4·10^10.
func DefaultBGV() ParamsLiteral {
	return ParamsLiteral{Scheme: BGV, LogN: 14, LogQ: []int{60, 60, 60, 60}, LogP: []int{61}, PlaintextModulus: 68720066561, FloodBits: 30}
}

// Params is a validated parameter set. The zero value is not usable.
// Params is immutable and safe for concurrent use.
type Params struct {
	lit  ParamsLiteral
	rlwe rlwe.Parameters
	ckks ckks.Parameters
	bgv  bgv.Parameters
}

// NewParams validates lit: the scheme is known, log2(N) is in the security
// table and log2(QP) does not exceed it, there are enough levels for an
// aggregate, and the flooding leaves room for a useful precision.
func NewParams(lit ParamsLiteral) (Params, error) {
	bound, ok := maxLogQP[lit.LogN]
	if !ok {
		return Params{}, fmt.Errorf("%w: he: log N = %d is outside the 128-bit security table (10..15)", cove.ErrInvalid, lit.LogN)
	}
	if len(lit.LogQ) < 3 || len(lit.LogP) < 1 {
		return Params{}, fmt.Errorf("%w: he: need at least 3 primes in Q and 1 in P, got %d and %d", cove.ErrInvalid, len(lit.LogQ), len(lit.LogP))
	}
	sum := 0
	for _, b := range append(append([]int(nil), lit.LogQ...), lit.LogP...) {
		if b < 20 || b > 61 {
			return Params{}, fmt.Errorf("%w: he: prime size %d bits outside 20..61", cove.ErrInvalid, b)
		}
		sum += b
	}
	// The requested sizes bound the real primes from above by one bit each;
	// check the request first, then the generated moduli.
	if float64(sum) > bound+float64(len(lit.LogQ)+len(lit.LogP)) {
		return Params{}, fmt.Errorf("%w: he: log QP ≈ %d exceeds %v, the 128-bit bound for log N = %d", cove.ErrInvalid, sum, bound, lit.LogN)
	}
	if lit.FloodBits < 20 || lit.FloodBits > 60 {
		return Params{}, fmt.Errorf("%w: he: flood bits %d outside 20..60", cove.ErrInvalid, lit.FloodBits)
	}
	p := Params{lit: lit}
	p.lit.LogQ = append([]int(nil), lit.LogQ...)
	p.lit.LogP = append([]int(nil), lit.LogP...)
	var err error
	switch lit.Scheme {
	case CKKS:
		if lit.LogScale < 20 || lit.LogScale >= lit.LogQ[0] {
			return Params{}, fmt.Errorf("%w: he: CKKS log scale %d must be in [20, log q0)", cove.ErrInvalid, lit.LogScale)
		}
		p.ckks, err = ckks.NewParametersFromLiteral(ckks.ParametersLiteral{
			LogN: lit.LogN, LogQ: lit.LogQ, LogP: lit.LogP, LogDefaultScale: lit.LogScale,
		})
		p.rlwe = p.ckks.Parameters
	case BGV:
		if lit.PlaintextModulus < 1<<16 || lit.PlaintextModulus%(2<<lit.LogN) != 1 {
			return Params{}, fmt.Errorf("%w: he: BGV plaintext modulus must be a prime ≥ 2^16 and ≡ 1 mod 2N", cove.ErrInvalid)
		}
		p.bgv, err = bgv.NewParametersFromLiteral(bgv.ParametersLiteral{
			LogN: lit.LogN, LogQ: lit.LogQ, LogP: lit.LogP, PlaintextModulus: lit.PlaintextModulus,
		})
		p.rlwe = p.bgv.Parameters
	default:
		return Params{}, fmt.Errorf("%w: he: unknown scheme %q", cove.ErrInvalid, lit.Scheme)
	}
	if err != nil {
		return Params{}, fmt.Errorf("%w: he: %v", cove.ErrInvalid, err)
	}
	if got := p.rlwe.LogQP(); got > bound {
		return Params{}, fmt.Errorf("%w: he: log QP = %.1f exceeds %v, the 128-bit bound for log N = %d", cove.ErrInvalid, got, bound, lit.LogN)
	}
	return p, nil
}

// Literal returns a copy of the literal p was built from.
func (p Params) Literal() ParamsLiteral {
	l := p.lit
	l.LogQ = append([]int(nil), p.lit.LogQ...)
	l.LogP = append([]int(nil), p.lit.LogP...)
	return l
}

// Scheme returns the scheme of p.
func (p Params) Scheme() Scheme { return p.lit.Scheme }

// Slots returns the number of values one ciphertext holds.
func (p Params) Slots() int {
	if p.lit.Scheme == CKKS {
		return p.ckks.MaxSlots()
	}
	return p.bgv.MaxSlots()
}

// LogQP returns log2 of the full modulus, the figure the security table bounds.
func (p Params) LogQP() float64 { return p.rlwe.LogQP() }

// topLevel is the level at which columns are encrypted.
func (p Params) topLevel() int { return p.rlwe.MaxLevel() }

// releaseLevel is the level of an aggregate after the weights and the mask.
func (p Params) releaseLevel() int { return p.rlwe.MaxLevel() - 2 }

// logSlots returns log2(Slots()).
func (p Params) logSlots() int { return int(math.Round(math.Log2(float64(p.Slots())))) }
