package he

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/covedata/cove"
)

func smallData(n, groups int) ([]float64, []int) {
	r := rand.New(rand.NewPCG(7, 8))
	vals := make([]float64, n)
	group := make([]int, n)
	for i := range vals {
		vals[i] = float64(r.IntN(120)) // some above the bound 100: clamped
		group[i] = r.IntN(groups)
	}
	return vals, group
}

// approvedRequest returns a share request with a valid approval token.
func approvedRequest(t *testing.T, f *fixture, job string, n *Noised) *ShareRequest {
	t.Helper()
	req, err := NewShareRequest(job, n, f.operator.Key(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Token = SignApproval(f.authority, job, req.CiphertextHash(), req.RecipientHash())
	return req
}

func TestWithheldShareBlocksRelease(t *testing.T) {
	f := sharedFixture(t, CKKS)
	vals, group := smallData(1000, 3)
	n, _ := noisedSum(t, f, vals, group, 3, DP{Mechanism: Laplace, Epsilon: 1})
	req := approvedRequest(t, f, "job-withheld", n)
	var shares [][]byte
	for _, pr := range f.providers[:2] { // the third provider withholds its share
		sh, err := pr.ReleaseShare(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, sh)
	}
	if _, err := req.Combine(f.keys, shares); !errors.Is(err, cove.ErrPrivacy) {
		t.Fatalf("combine without every share: %v, want %v", err, cove.ErrPrivacy)
	}
	// A share counted twice does not stand in for the missing one.
	if _, err := req.Combine(f.keys, append(shares, shares[0])); err == nil {
		t.Fatal("a repeated share was accepted")
	}
}

func TestSecondShareRefused(t *testing.T) {
	f := sharedFixture(t, CKKS)
	vals, group := smallData(1000, 3)
	n, _ := noisedSum(t, f, vals, group, 3, DP{Mechanism: Laplace, Epsilon: 1})
	f.release(t, "job-once", n)
	// The same ciphertext again, in a fresh session with a valid approval,
	// and the very same request replayed: every provider refuses both.
	again := approvedRequest(t, f, "job-once", n)
	second := 0
	for _, pr := range f.providers {
		if _, err := pr.ReleaseShare(context.Background(), again); err == nil {
			second++
		} else if !errors.Is(err, cove.ErrPrivacy) {
			t.Errorf("%s: %v, want %v", pr.ID(), err, cove.ErrPrivacy)
		}
	}
	t.Logf("second shares for the same ciphertext: %d", second)
	if second != 0 {
		t.Fatalf("%d providers gave a second share for the same ciphertext", second)
	}
	// Serialization keeps the request's identity: a decoded copy is refused too.
	b, err := again.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	copyReq, err := UnmarshalShareRequest(f.params, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.providers[0].ReleaseShare(context.Background(), copyReq); err == nil {
		t.Fatal("decoded copy of a shared ciphertext got a share")
	}
}

func TestUnapprovedReleaseRefused(t *testing.T) {
	f := sharedFixture(t, CKKS)
	vals, group := smallData(500, 2)
	n, _ := noisedSum(t, f, vals, group, 2, DP{Mechanism: Laplace, Epsilon: 1})
	other, err := NewOperator(f.params)
	if err != nil {
		t.Fatal(err)
	}
	req, err := NewShareRequest("job-x", n, f.operator.Key(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		token []byte
	}{
		{"no token", nil},
		{"other job", SignApproval(f.authority, "job-y", req.CiphertextHash(), req.RecipientHash())},
		{"other recipient", SignApproval(f.authority, "job-x", req.CiphertextHash(), other.Key().Hash())},
		{"other ciphertext", SignApproval(f.authority, "job-x", [32]byte{1}, req.RecipientHash())},
	} {
		req.Token = c.token
		if _, err := f.providers[0].ReleaseShare(context.Background(), req); !errors.Is(err, cove.ErrPrivacy) {
			t.Errorf("%s: %v, want %v", c.name, err, cove.ErrPrivacy)
		}
	}
	// Refusals record nothing: the approved request still gets its shares.
	req.Token = SignApproval(f.authority, "job-x", req.CiphertextHash(), req.RecipientHash())
	for _, pr := range f.providers {
		if _, err := pr.ReleaseShare(context.Background(), req); err != nil {
			t.Fatalf("%s: approved request refused: %v", pr.ID(), err)
		}
	}
}

// TestBGVRelease releases exact integer sums through the same protocol.
func TestBGVRelease(t *testing.T) {
	f := sharedFixture(t, BGV)
	vals, group := smallData(20000, 4)
	n, exact := noisedSum(t, f, vals, group, 4, DP{Mechanism: Laplace, Epsilon: 0.5})
	rel := f.release(t, "job-bgv", n)
	got, err := f.operator.Open(rel)
	if err != nil {
		t.Fatal(err)
	}
	tol := rel.Noise().Interval(1e-9)
	for g := range exact {
		t.Logf("group %d: released %v exact %v (tolerance %.1f)", g, got[g], exact[g], tol)
		if math.Abs(got[g]-exact[g]) > tol || got[g] != math.Trunc(got[g]) {
			t.Errorf("group %d: released %v, exact %v", g, got[g], exact[g])
		}
	}
}

func TestKeygenOncePerSetup(t *testing.T) {
	f := sharedFixture(t, CKKS)
	if _, err := f.providers[0].KeygenShare(f.setup); !errors.Is(err, cove.ErrPrivacy) {
		t.Fatalf("second keygen share for a setup: %v, want %v", err, cove.ErrPrivacy)
	}
}

func TestCollectiveKeysNeedEveryProvider(t *testing.T) {
	p, err := NewParams(DefaultBGV())
	if err != nil {
		t.Fatal(err)
	}
	s := Setup{Params: p, Providers: []string{"a", "b"}, Seed: make([]byte, 32)}
	a, _ := NewProvider(p, "a", ProviderOptions{})
	sh, err := a.KeygenShare(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CollectiveKeys(s, [][]byte{sh}); err == nil {
		t.Fatal("keys built without provider b")
	}
	if _, err := CollectiveKeys(s, [][]byte{sh, sh}); err == nil {
		t.Fatal("keys built from a repeated share")
	}
	// The secret share survives serialization, but a restored provider with
	// the same setup is still one key holder: the lead persists the keygen
	// record with the secret.
	b, err := a.MarshalSecret()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadProvider(p, b, ProviderOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestSerializationRoundTrip(t *testing.T) {
	f := sharedFixture(t, CKKS)
	b, err := f.keys.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	k, err := UnmarshalPublicKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	if k.Fingerprint() != f.keys.Fingerprint() {
		t.Fatal("fingerprint changed")
	}
	ok, err := f.operator.Key().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	op, err := UnmarshalOperatorKey(ok)
	if err != nil || op.Hash() != f.operator.Key().Hash() {
		t.Fatalf("operator key: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("COVEHE"), b[:len(b)/2]} {
		if _, err := UnmarshalPublicKeys(bad); !errors.Is(err, cove.ErrInvalid) {
			t.Errorf("%d bytes: %v", len(bad), err)
		}
	}
	// A column under other keys is refused.
	other := sharedFixture(t, BGV)
	col, err := NewEncryptor(other.keys).EncryptInts([]int64{1, 2, 3}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := col.MarshalBinary()
	if _, err := UnmarshalColumn(f.keys, cb); err == nil {
		t.Fatal("column under other keys accepted")
	}
}
