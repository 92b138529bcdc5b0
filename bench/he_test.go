package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/multiparty"
	"github.com/tuneinsight/lattigo/v6/ring"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"

	"github.com/covedata/cove/enclave/he"
)

const (
	heValues = 1 << 20
	heGroups = 4
)

// BenchmarkHE measures, on 2^20 values at Cove's default CKKS set and three
// providers, Cove's encryption, encrypted aggregate (4 groups, weighted sum)
// and release (flooded key switch to the operator, decryption with
// DecodePublic) against the same lattigo operations called directly (same
// parameters, same circuit, single-party keys of the same shape), in the
// same iteration. Run once:
//
//	go test -run '^$' -bench HE -benchtime 1x ./bench/
func BenchmarkHE(b *testing.B) {
	p, err := he.NewParams(he.DefaultCKKS())
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	vals := make([]float64, heValues)
	for i := range vals {
		vals[i] = 500 * r.Float64()
	}
	weights := make([][]float64, heGroups)
	for g := range weights {
		weights[g] = make([]float64, heValues)
	}
	for i := range vals {
		weights[r.IntN(heGroups)][i] = 1
	}

	// Cove: three providers, collective keys, an operator.
	pub, priv, _ := ed25519.GenerateKey(nil)
	seed := sha256.Sum256([]byte("bench setup"))
	ids := []string{"p1", "p2", "p3"}
	setup := he.Setup{Params: p, Providers: ids, Seed: seed[:]}
	var provs []*he.Provider
	var shares [][]byte
	for _, id := range ids {
		pr, err := he.NewProvider(p, id, he.ProviderOptions{Approver: he.SignedApprover{Authority: pub}})
		if err != nil {
			b.Fatal(err)
		}
		sh, err := pr.KeygenShare(setup)
		if err != nil {
			b.Fatal(err)
		}
		provs, shares = append(provs, pr), append(shares, sh)
	}
	keys, err := he.CollectiveKeys(setup, shares)
	if err != nil {
		b.Fatal(err)
	}
	op, err := he.NewOperator(p)
	if err != nil {
		b.Fatal(err)
	}

	// Raw lattigo: the same parameters and circuit.
	lp, err := ckks.NewParametersFromLiteral(ckks.ParametersLiteral{LogN: 14, LogQ: []int{60, 50, 50, 50}, LogP: []int{61}, LogDefaultScale: 50})
	if err != nil {
		b.Fatal(err)
	}
	kg := rlwe.NewKeyGenerator(lp)
	sks := []*rlwe.SecretKey{kg.GenSecretKeyNew(), kg.GenSecretKeyNew(), kg.GenSecretKeyNew()}
	skIdeal := rlwe.NewSecretKey(lp)
	for _, sk := range sks {
		lp.RingQP().Add(skIdeal.Value, sk.Value, skIdeal.Value)
	}
	pk := kg.GenPublicKeyNew(skIdeal)
	top := lp.MaxLevel()
	gks := kg.GenGaloisKeysNew(rlwe.GaloisElementsForInnerSum(lp, 1, lp.MaxSlots()), skIdeal, rlwe.EvaluationKeyParameters{LevelQ: &[]int{top - 1}[0]})
	opSk, opPk := kg.GenKeyPairNew()

	// Shared machines are noisy: each phase runs heReps times, Cove and
	// lattigo alternating, and the fastest run of each counts.
	var t [6]time.Duration
	for i := range t {
		t[i] = time.Duration(1 << 62)
	}
	keep := func(i int, start time.Time) { t[i] = min(t[i], time.Since(start)) }
	for b.Loop() {
		for range heReps {
			heRound(b, p, keys, provs, op, priv, lp, pk, gks, sks, opSk, opPk, vals, weights, keep)
		}
	}
	for i, name := range []string{"encrypt", "aggregate", "release"} {
		cove, raw := t[2*i].Seconds(), t[2*i+1].Seconds()
		b.ReportMetric(cove, name+"-cove-s")
		b.ReportMetric(raw, name+"-lattigo-s")
		b.ReportMetric(cove/raw, name+"-ratio")
		b.Logf("%-9s cove %8.3f s  lattigo %8.3f s  ratio %.2f  (%.0f values/s for Cove)", name, cove, raw, cove/raw, heValues/cove)
	}
}

const heReps = 3

// heRound runs every phase once, Cove then lattigo.
func heRound(b *testing.B, p he.Params, keys *he.PublicKeys, provs []*he.Provider, op *he.Operator, priv ed25519.PrivateKey,
	lp ckks.Parameters, pk *rlwe.PublicKey, gks []*rlwe.GaloisKey, sks []*rlwe.SecretKey, opSk *rlwe.SecretKey, opPk *rlwe.PublicKey,
	vals []float64, weights [][]float64, keep func(int, time.Time)) {
	{
		// 1. Encrypt.
		_ = p
		start := time.Now()
		col, err := he.NewEncryptor(keys).EncryptFloats(vals, 0, 500)
		if err != nil {
			b.Fatal(err)
		}
		keep(0, start)

		start = time.Now()
		cts := rawEncrypt(b, lp, pk, vals)
		keep(1, start)

		// 2. Aggregate.
		ev := he.NewEvaluator(keys)
		start = time.Now()
		agg, err := ev.Aggregate(context.Background(), col, he.Spec{Kind: he.WeightedSum, Weights: weights})
		if err != nil {
			b.Fatal(err)
		}
		keep(2, start)

		start = time.Now()
		rawCt := rawAggregate(b, lp, gks, cts, weights)
		keep(3, start)

		// 3. Noise, key switch to the operator and decrypt.
		start = time.Now()
		noised, err := ev.AddNoise(agg, he.DP{Mechanism: he.Laplace, Epsilon: 1})
		if err != nil {
			b.Fatal(err)
		}
		req, err := he.NewShareRequest("bench", noised, op.Key(), nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Token = he.SignApproval(priv, "bench", req.CiphertextHash(), req.RecipientHash())
		var rs [][]byte
		for _, pr := range provs {
			sh, err := pr.ReleaseShare(context.Background(), req)
			if err != nil {
				b.Fatal(err)
			}
			rs = append(rs, sh)
		}
		rel, err := req.Combine(keys, rs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := op.Open(rel); err != nil {
			b.Fatal(err)
		}
		keep(4, start)

		start = time.Now()
		rawRelease(b, lp, sks, opSk, opPk, rawCt)
		keep(5, start)
	}
}

func rawEncrypt(b *testing.B, lp ckks.Parameters, pk *rlwe.PublicKey, vals []float64) []*rlwe.Ciphertext {
	ecd := ckks.NewEncoder(lp)
	enc := rlwe.NewEncryptor(lp, pk)
	pt := ckks.NewPlaintext(lp, lp.MaxLevel())
	slots := lp.MaxSlots()
	var cts []*rlwe.Ciphertext
	for off := 0; off < len(vals); off += slots {
		if err := ecd.Encode(vals[off:min(off+slots, len(vals))], pt); err != nil {
			b.Fatal(err)
		}
		ct, err := enc.EncryptNew(pt)
		if err != nil {
			b.Fatal(err)
		}
		cts = append(cts, ct)
	}
	return cts
}

func rawAggregate(b *testing.B, lp ckks.Parameters, gks []*rlwe.GaloisKey, cts []*rlwe.Ciphertext, weights [][]float64) *rlwe.Ciphertext {
	eval := ckks.NewEvaluator(lp, rlwe.NewMemEvaluationKeySet(nil, gks...))
	slots := lp.MaxSlots()
	top := lp.MaxLevel()
	ptW := ckks.NewPlaintext(lp, top)
	ptW.Scale = rlwe.NewScale(lp.Q()[top])
	ptM := ckks.NewPlaintext(lp, top-1)
	ptM.Scale = rlwe.NewScale(lp.Q()[top-1])
	acc := ckks.NewCiphertext(lp, 1, top)
	sum := ckks.NewCiphertext(lp, 1, top-1)
	tmp := ckks.NewCiphertext(lp, 1, top-2)
	out := ckks.NewCiphertext(lp, 1, top-2)
	mask := make([]float64, slots)
	for g, w := range weights {
		for c, ct := range cts {
			if err := eval.Encode(w[c*slots:(c+1)*slots], ptW); err != nil {
				b.Fatal(err)
			}
			var err error
			if c == 0 {
				err = eval.Mul(ct, ptW, acc)
			} else {
				err = eval.MulThenAdd(ct, ptW, acc)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := eval.Rescale(acc, sum); err != nil {
			b.Fatal(err)
		}
		if err := eval.InnerSum(sum, 1, slots, sum); err != nil {
			b.Fatal(err)
		}
		clear(mask)
		mask[g] = 1
		if err := eval.Encode(mask, ptM); err != nil {
			b.Fatal(err)
		}
		if err := eval.Mul(sum, ptM, sum); err != nil {
			b.Fatal(err)
		}
		dst := tmp
		if g == 0 {
			dst = out
		}
		if err := eval.Rescale(sum, dst); err != nil {
			b.Fatal(err)
		}
		if g > 0 {
			if err := eval.Add(out, tmp, out); err != nil {
				b.Fatal(err)
			}
		}
	}
	return out
}

func rawRelease(b *testing.B, lp ckks.Parameters, sks []*rlwe.SecretKey, opSk *rlwe.SecretKey, opPk *rlwe.PublicKey, ct *rlwe.Ciphertext) {
	sigma := float64(1 << 42)
	pcks, err := multiparty.NewPublicKeySwitchProtocol(lp, ring.DiscreteGaussian{Sigma: sigma, Bound: 6 * sigma})
	if err != nil {
		b.Fatal(err)
	}
	agg := pcks.AllocateShare(ct.Level())
	sh := pcks.AllocateShare(ct.Level())
	for _, sk := range sks {
		pcks.GenShare(sk, opPk, ct, &sh)
		if err := pcks.AggregateShares(agg, sh, &agg); err != nil {
			b.Fatal(err)
		}
	}
	out := ckks.NewCiphertext(lp, 1, ct.Level())
	pcks.KeySwitch(ct, agg, out)
	pt := rlwe.NewDecryptor(lp, opSk).DecryptNew(out)
	vals := make([]float64, lp.MaxSlots())
	if err := ckks.NewEncoder(lp).DecodePublic(pt, vals, 2); err != nil {
		b.Fatal(err)
	}
}
