package he

import (
	"errors"
	"testing"

	"github.com/covedata/cove"
)

func TestParamsSecurityTable(t *testing.T) {
	ck := func(logN int, q []int, p []int, scale int) ParamsLiteral {
		return ParamsLiteral{Scheme: CKKS, LogN: logN, LogQ: q, LogP: p, LogScale: scale, FloodBits: 30}
	}
	bg := func(logN int, q []int, p []int) ParamsLiteral {
		return ParamsLiteral{Scheme: BGV, LogN: logN, LogQ: q, LogP: p, PlaintextModulus: 68720066561, FloodBits: 30}
	}
	rep := func(n, b int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = b
		}
		return out
	}
	for _, c := range []struct {
		name string
		lit  ParamsLiteral
		ok   bool
	}{
		{"default CKKS", DefaultCKKS(), true},
		{"default BGV", DefaultBGV(), true},
		{"CKKS logN 14 at 438", ck(14, append([]int{60}, rep(6, 50)...), []int{61}, 50), true},          // 60+300+61 = 421
		{"CKKS logN 14 above 438", ck(14, append([]int{60}, rep(7, 50)...), []int{61}, 50), false},      // 471
		{"CKKS logN 14 just above 438", ck(14, append([]int{60}, rep(6, 53)...), []int{61}, 50), false}, // 439
		{"CKKS logN 15 below 881", ck(15, append([]int{60}, rep(13, 50)...), []int{61, 61}, 50), true},  // 832
		{"CKKS logN 15 at 882", ck(15, append([]int{60}, rep(14, 50)...), []int{61, 61}, 50), false},    // 882
		{"CKKS logN 15 above 881", ck(15, append([]int{61}, rep(15, 50)...), []int{61, 61}, 50), false}, // 933
		{"BGV logN 14 above 438", bg(14, rep(7, 60), []int{61}), false},                                 // 481
		{"BGV logN 13 above 218", bg(13, rep(3, 60), []int{61}), false},                                 // 241
		{"logN 16 outside the table", ck(16, rep(4, 50), []int{61}, 40), false},
		{"logN 9 outside the table", ck(9, rep(3, 20), []int{20}, 10), false},
		{"unknown scheme", ParamsLiteral{Scheme: "tfhe", LogN: 14, LogQ: rep(3, 50), LogP: []int{61}, FloodBits: 30}, false},
		{"too few levels", ck(14, []int{60, 50}, []int{61}, 50), false},
		{"no flooding", func() ParamsLiteral { l := DefaultCKKS(); l.FloodBits = 0; return l }(), false},
		{"BGV t not 1 mod 2N", func() ParamsLiteral { l := DefaultBGV(); l.PlaintextModulus = 68720066563; return l }(), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := NewParams(c.lit)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				max, _ := MaxLogQP(c.lit.LogN)
				if p.LogQP() > max {
					t.Fatalf("accepted log QP %.1f > %v", p.LogQP(), max)
				}
				return
			}
			if !errors.Is(err, cove.ErrInvalid) {
				t.Fatalf("accepted (err %v), want %v", err, cove.ErrInvalid)
			}
		})
	}
	for logN, want := range map[int]float64{10: 27, 11: 54, 12: 109, 13: 218, 14: 438, 15: 881} {
		if got, ok := MaxLogQP(logN); !ok || got != want {
			t.Errorf("MaxLogQP(%d) = %v, want %v", logN, got, want)
		}
	}
}
