package he

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
)

// fixture is a complete setup: providers, keys, an authority and an operator.
type fixture struct {
	params    Params
	setup     Setup
	providers []*Provider
	logs      []*MemoryShareLog
	keys      *PublicKeys
	authority ed25519.PrivateKey
	operator  *Operator
}

func newFixture(t testing.TB, lit ParamsLiteral, ids ...string) *fixture {
	t.Helper()
	p, err := NewParams(lit)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	seed := sha256.Sum256([]byte("ledger entry 42: HE setup for " + fmt.Sprint(ids)))
	f := &fixture{params: p, authority: priv, setup: Setup{Params: p, Providers: ids, Seed: seed[:]}}
	var shares [][]byte
	for _, id := range ids {
		log := NewMemoryShareLog()
		pr, err := NewProvider(p, id, ProviderOptions{Approver: SignedApprover{Authority: pub}, Shares: log})
		if err != nil {
			t.Fatal(err)
		}
		sh, err := pr.KeygenShare(f.setup)
		if err != nil {
			t.Fatal(err)
		}
		f.providers = append(f.providers, pr)
		f.logs = append(f.logs, log)
		shares = append(shares, sh)
	}
	if f.keys, err = CollectiveKeys(f.setup, shares); err != nil {
		t.Fatal(err)
	}
	if f.operator, err = NewOperator(p); err != nil {
		t.Fatal(err)
	}
	return f
}

// idealSecret sums the providers' shares: only tests can do this.
func (f *fixture) idealSecret() *rlwe.SecretKey {
	sk := rlwe.NewSecretKey(f.params.rlwe)
	for _, pr := range f.providers {
		f.params.rlwe.RingQP().Add(sk.Value, pr.sk.Value, sk.Value)
	}
	return sk
}

// release runs the whole release: request, approval, every share, combine.
func (f *fixture) release(t testing.TB, job string, n *Noised) *Release {
	t.Helper()
	req, err := NewShareRequest(job, n, f.operator.Key(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Token = SignApproval(f.authority, job, req.CiphertextHash(), req.RecipientHash())
	var shares [][]byte
	for _, pr := range f.providers {
		sh, err := pr.ReleaseShare(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, sh)
	}
	rel, err := req.Combine(f.keys, shares)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

var (
	sharedMu sync.Mutex
	shared   = map[Scheme]*fixture{}
)

// sharedFixture returns one three-provider fixture per scheme for the whole
// package: key generation is the slow part of a test.
func sharedFixture(t testing.TB, s Scheme) *fixture {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if f := shared[s]; f != nil {
		return f
	}
	lit := DefaultCKKS()
	if s == BGV {
		lit = DefaultBGV()
	}
	f := newFixture(t, lit, "stations-east", "stations-west", "health-dept")
	shared[s] = f
	return f
}

// noisedSum encrypts vals with the fixture's keys and returns the noised
// per-group sums for the given group of each row.
func noisedSum(t testing.TB, f *fixture, vals []float64, group []int, groups int, dp DP) (*Noised, []float64) {
	t.Helper()
	enc := NewEncryptor(f.keys)
	var col *Column
	var err error
	if f.params.Scheme() == CKKS {
		col, err = enc.EncryptFloats(vals, 0, 100)
	} else {
		iv := make([]int64, len(vals))
		for i, v := range vals {
			iv[i] = int64(v)
		}
		col, err = enc.EncryptInts(iv, 0, 100)
	}
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Kind: Sum, Weights: make([][]float64, groups)}
	exact := make([]float64, groups)
	for g := range spec.Weights {
		spec.Weights[g] = make([]float64, len(vals))
	}
	for i, g := range group {
		spec.Weights[g][i] = 1
		exact[g] += min(max(vals[i], 0), 100)
	}
	ev := NewEvaluator(f.keys)
	a, err := ev.Aggregate(context.Background(), col, spec)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ev.AddNoise(a, dp)
	if err != nil {
		t.Fatal(err)
	}
	return n, exact
}
