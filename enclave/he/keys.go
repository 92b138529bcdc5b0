package he

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/multiparty"
	"github.com/tuneinsight/lattigo/v6/utils"
	"github.com/tuneinsight/lattigo/v6/utils/sampling"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he/internal/wire"
)

// Setup is what the providers agree on, publicly, before they generate a
// collective key: the parameters, who takes part, and a seed for the common
// reference string (for instance the hash of the ledger entry that records
// the setup). Every polynomial sampled from the seed is public.
type Setup struct {
	Params    Params
	Providers []string
	Seed      []byte
}

func (s Setup) validate() error {
	if s.Params.rlwe.N() == 0 {
		return fmt.Errorf("%w: he: setup without parameters", cove.ErrInvalid)
	}
	if len(s.Seed) < 32 {
		return fmt.Errorf("%w: he: CRS seed of %d bytes, need ≥ 32", cove.ErrInvalid, len(s.Seed))
	}
	if len(s.Providers) == 0 {
		return fmt.Errorf("%w: he: setup without providers", cove.ErrInvalid)
	}
	seen := map[string]bool{}
	for _, p := range s.Providers {
		if p == "" || seen[p] {
			return fmt.Errorf("%w: he: provider id %q empty or repeated", cove.ErrInvalid, p)
		}
		seen[p] = true
	}
	return nil
}

// id binds a setup: parameters, providers (sorted) and seed.
func (s Setup) id() [32]byte {
	h := sha256.New()
	lit, _ := json.Marshal(s.Params.lit)
	h.Write([]byte("cove/he/setup/v1\x00"))
	h.Write(lit)
	ps := slices.Clone(s.Providers)
	slices.Sort(ps)
	for _, p := range ps {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	h.Write(s.Seed)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// crs returns the common reference string for one protocol instance; label
// and n separate the instances so no two sample the same polynomials.
func (s Setup) crs(label string, n uint64) multiparty.CRS {
	id := s.id()
	h := sha256.New()
	h.Write(id[:])
	h.Write([]byte(label))
	h.Write(binary.BigEndian.AppendUint64(nil, n))
	prng, err := sampling.NewKeyedPRNG(h.Sum(nil))
	if err != nil {
		panic(err) // blake2b keyed with 32 bytes cannot fail
	}
	return prng
}

// galoisElements lists the automorphisms the host needs for inner sums.
func galoisElements(p Params) []uint64 {
	var els []uint64
	if p.lit.Scheme == BGV {
		els = rlwe.GaloisElementsForInnerSum(p.rlwe, 1, p.Slots()/2)
		els = append(els, p.rlwe.GaloisElementOrderTwoOrthogonalSubgroup())
	} else {
		els = rlwe.GaloisElementsForInnerSum(p.rlwe, 1, p.Slots())
	}
	slices.Sort(els) // lattigo returns them in map order
	return slices.Compact(els)
}

// evkParams places the Galois keys at the level where inner sums run.
func evkParams(p Params) rlwe.EvaluationKeyParameters {
	return rlwe.EvaluationKeyParameters{LevelQ: utils.Pointy(p.topLevel() - 1)}
}

// PublicKeys is the collective public material: the encryption key and the
// Galois keys for the inner sums, all under the ideal secret (the sum of
// the providers' shares). Safe for concurrent use once built.
type PublicKeys struct {
	params    Params
	setupID   [32]byte
	providers []string
	pk        *rlwe.PublicKey
	evk       *rlwe.MemEvaluationKeySet
}

// Params returns the parameters of the keys.
func (k *PublicKeys) Params() Params { return k.params }

// Providers returns the ids of the key holders, sorted.
func (k *PublicKeys) Providers() []string { return slices.Clone(k.providers) }

// Fingerprint identifies the keys (the setup they came from and the
// public key), for ledger entries and for binding columns to keys.
func (k *PublicKeys) Fingerprint() [32]byte {
	b, _ := k.pk.MarshalBinary()
	h := sha256.New()
	h.Write(k.setupID[:])
	h.Write(b)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// CollectiveKeys aggregates one keygen share from every provider of the
// setup into the collective public keys. It is the aggregator's side of the
// key generation; anyone holding the shares can run it and gets the same keys.
func CollectiveKeys(s Setup, shares [][]byte) (*PublicKeys, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	params := s.Params
	sid := s.id()
	ckg := multiparty.NewPublicKeyGenProtocol(params.rlwe)
	gkg := multiparty.NewGaloisKeyGenProtocol(params.rlwe)
	els := galoisElements(params)
	evkp := evkParams(params)

	pkAgg := ckg.AllocateShare()
	gkAgg := make([]multiparty.GaloisKeyGenShare, len(els))
	for i, el := range els {
		gkAgg[i] = gkg.AllocateShare(evkp)
		gkAgg[i].GaloisElement = el
	}
	got := map[string]bool{}
	for _, b := range shares {
		sh, err := parseKeygenShare(params, b, len(els), gkAgg[0])
		if err != nil {
			return nil, err
		}
		if sh.setup != sid {
			return nil, fmt.Errorf("%w: he: keygen share of %q is for another setup", cove.ErrInvalid, sh.provider)
		}
		if !slices.Contains(s.Providers, sh.provider) || got[sh.provider] {
			return nil, fmt.Errorf("%w: he: keygen share from unknown or repeated provider %q", cove.ErrInvalid, sh.provider)
		}
		got[sh.provider] = true
		ckg.AggregateShares(pkAgg, sh.pk, &pkAgg)
		for i, g := range sh.gks {
			if g.GaloisElement != els[i] {
				return nil, fmt.Errorf("%w: he: keygen share of %q has Galois element %d, want %d", cove.ErrInvalid, sh.provider, g.GaloisElement, els[i])
			}
			if err := gkg.AggregateShares(gkAgg[i], g, &gkAgg[i]); err != nil {
				return nil, fmt.Errorf("%w: he: %v", cove.ErrInvalid, err)
			}
		}
	}
	for _, p := range s.Providers {
		if !got[p] {
			return nil, fmt.Errorf("%w: he: no keygen share from provider %q", cove.ErrInvalid, p)
		}
	}
	pk := rlwe.NewPublicKey(params.rlwe)
	ckg.GenPublicKey(pkAgg, ckg.SampleCRP(s.crs("ckg", 0)), pk)
	gks := make([]*rlwe.GaloisKey, len(els))
	for i, el := range els {
		gks[i] = rlwe.NewGaloisKey(params.rlwe, evkp)
		if err := gkg.GenGaloisKey(gkAgg[i], gkg.SampleCRP(s.crs("gkg", el), evkp), gks[i]); err != nil {
			return nil, fmt.Errorf("%w: he: %v", cove.ErrInvalid, err)
		}
	}
	ps := slices.Clone(s.Providers)
	slices.Sort(ps)
	return &PublicKeys{params: params, setupID: sid, providers: ps, pk: pk, evk: rlwe.NewMemEvaluationKeySet(nil, gks...)}, nil
}

// MarshalBinary serializes the keys with their parameters and providers.
func (k *PublicKeys) MarshalBinary() ([]byte, error) {
	lit, err := json.Marshal(k.params.lit)
	if err != nil {
		return nil, err
	}
	ps, _ := json.Marshal(k.providers)
	pk, err := k.pk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	evk, err := k.evk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return wire.Encode(wire.KindPublicKeys, lit, k.setupID[:], ps, pk, evk), nil
}

// UnmarshalPublicKeys parses keys written by MarshalBinary, validating
// their parameters again.
func UnmarshalPublicKeys(b []byte) (*PublicKeys, error) {
	f, err := wire.Parse(b, wire.KindPublicKeys, 5)
	if err != nil {
		return nil, fmt.Errorf("%w: he: public keys: %v", cove.ErrInvalid, err)
	}
	params, err := paramsFromJSON(f[0])
	if err != nil {
		return nil, err
	}
	k := &PublicKeys{params: params}
	if len(f[1]) != 32 {
		return nil, fmt.Errorf("%w: he: public keys: setup id", cove.ErrInvalid)
	}
	copy(k.setupID[:], f[1])
	if err := json.Unmarshal(f[2], &k.providers); err != nil || len(k.providers) == 0 {
		return nil, fmt.Errorf("%w: he: public keys: providers", cove.ErrInvalid)
	}
	k.pk = rlwe.NewPublicKey(params.rlwe)
	if err := k.pk.UnmarshalBinary(f[3]); err != nil {
		return nil, fmt.Errorf("%w: he: public key: %v", cove.ErrInvalid, err)
	}
	k.evk = &rlwe.MemEvaluationKeySet{}
	if err := k.evk.UnmarshalBinary(f[4]); err != nil {
		return nil, fmt.Errorf("%w: he: evaluation keys: %v", cove.ErrInvalid, err)
	}
	for _, el := range galoisElements(params) {
		if _, err := k.evk.GetGaloisKey(el); err != nil {
			return nil, fmt.Errorf("%w: he: evaluation keys: %v", cove.ErrInvalid, err)
		}
	}
	return k, nil
}

func paramsFromJSON(b []byte) (Params, error) {
	var lit ParamsLiteral
	if err := json.Unmarshal(b, &lit); err != nil {
		return Params{}, fmt.Errorf("%w: he: parameters: %v", cove.ErrInvalid, err)
	}
	return NewParams(lit)
}

// keygenShare is one provider's contribution to the collective keys.
type keygenShare struct {
	provider string
	setup    [32]byte
	pk       multiparty.PublicKeyGenShare
	gks      []multiparty.GaloisKeyGenShare
}

func parseKeygenShare(p Params, b []byte, nGal int, ref multiparty.GaloisKeyGenShare) (*keygenShare, error) {
	f, err := wire.Parse(b, wire.KindKeygenShare, 3+nGal)
	if err != nil {
		return nil, fmt.Errorf("%w: he: keygen share: %v", cove.ErrInvalid, err)
	}
	sh := &keygenShare{provider: string(f[0])}
	if len(f[1]) != 32 {
		return nil, fmt.Errorf("%w: he: keygen share: setup id", cove.ErrInvalid)
	}
	copy(sh.setup[:], f[1])
	if err := sh.pk.UnmarshalBinary(f[2]); err != nil {
		return nil, fmt.Errorf("%w: he: keygen share: %v", cove.ErrInvalid, err)
	}
	if sh.pk.Value.Q.N() != p.rlwe.N() || sh.pk.Value.Q.Level() != p.rlwe.MaxLevelQ() || sh.pk.Value.P.Level() != p.rlwe.MaxLevelP() {
		return nil, fmt.Errorf("%w: he: keygen share: shape", cove.ErrInvalid)
	}
	sh.gks = make([]multiparty.GaloisKeyGenShare, nGal)
	for i := range nGal {
		g := &sh.gks[i]
		if err := g.UnmarshalBinary(f[3+i]); err != nil {
			return nil, fmt.Errorf("%w: he: keygen share: %v", cove.ErrInvalid, err)
		}
		if g.LevelQ() != ref.LevelQ() || g.LevelP() != ref.LevelP() || g.BaseRNSDecompositionVectorSize() != ref.BaseRNSDecompositionVectorSize() || !slices.Equal(g.BaseTwoDecompositionVectorSize(), ref.BaseTwoDecompositionVectorSize()) {
			return nil, fmt.Errorf("%w: he: keygen share: Galois share shape", cove.ErrInvalid)
		}
	}
	return sh, nil
}
