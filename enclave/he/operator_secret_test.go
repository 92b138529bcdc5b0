package he

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/covedata/cove"
)

// TestOperatorSecretRoundTrip: a key pair written with MarshalSecret and
// read back opens what the original opens, has the same public key, and a
// damaged or foreign file is refused.
func TestOperatorSecretRoundTrip(t *testing.T) {
	f := sharedFixture(t, CKKS)
	b, err := f.operator.MarshalSecret()
	if err != nil {
		t.Fatal(err)
	}
	op, err := LoadOperator(b)
	if err != nil {
		t.Fatal(err)
	}
	if op.Key().Hash() != f.operator.Key().Hash() {
		t.Fatal("reloaded operator has another public key")
	}
	q, err := f.operator.EncryptQuery([]float64{1.5, -2})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := EvaluateQuery(context.Background(), q, [][]float64{{2, 1}}, QueryNoise{DP: DP{Mechanism: Laplace, Epsilon: 1}, Span: []float64{1e-6, 1e-6}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.operator.OpenReply(rep)
	if err != nil {
		t.Fatal(err)
	}
	c, err := op.OpenReply(rep)
	if err != nil || a[0] != c[0] {
		t.Fatalf("reloaded key opens %v, original %v (%v)", c, a, err)
	}
	for name, bad := range map[string][]byte{
		"truncated":  b[:len(b)/2],
		"public key": mustMarshal(t, f.operator.Key()),
		"other kind": bytes.Replace(b, []byte("COVEHE\x01"), []byte("COVEHE\x02"), 1),
	} {
		if _, err := LoadOperator(bad); !errors.Is(err, cove.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

func mustMarshal(t *testing.T, k *OperatorKey) []byte {
	t.Helper()
	b, err := k.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPeek: the headers the sandbox reads without parsing lattices match
// the full messages.
func TestPeek(t *testing.T) {
	f := sharedFixture(t, CKKS)
	if f.setup.ID() != f.setup.id() {
		t.Fatal("Setup.ID")
	}
	if _, _, err := PeekReleaseShare([]byte("garbage")); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("garbage share: %v", err)
	}
	if _, err := PeekShareRequest([]byte("garbage")); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("garbage request: %v", err)
	}
	if err := CheckKeygenShare(f.setup, "nobody", []byte("garbage")); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("garbage keygen share: %v", err)
	}
}
