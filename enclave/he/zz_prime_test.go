package he
import ("testing";"fmt";"github.com/tuneinsight/lattigo/v6/ring")
func TestP(t *testing.T){
 for _, b := range []int{33,36,40} {
 g := ring.NewNTTFriendlyPrimesGenerator(uint64(b), 1<<15)
 p, err := g.NextUpstreamPrimes(2); fmt.Println(b, p, err)
 g = ring.NewNTTFriendlyPrimesGenerator(uint64(b), 1<<16)
 p, err = g.NextUpstreamPrimes(1); fmt.Println(b, "2^16", p, err)
 }
}
