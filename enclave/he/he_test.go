package he

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
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
