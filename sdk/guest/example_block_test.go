package guest_test

import (
	"fmt"

	"github.com/covedata/cove/sdk/guest"
)

// Block mode: the handler gets one block's rows and hands one vector per
// block output. Under RunLocal a vector shows as one contribution per
// coordinate, row -1.
func ExampleResult() {
	process := func(b *guest.Batch) error {
		pm := b.Float64("PM2.5")
		sum, n := 0.0, 0
		for i := 0; i < b.Len(); i++ {
			if !pm.IsNull(i) {
				sum += pm.Value(i)
				n++
			}
		}
		mean := 0.0
		if n > 0 {
			mean = sum / float64(n)
		}
		guest.Result("pm25_block_mean", []float64{mean})
		return nil
	}
	got, err := guest.RunLocal(process, []string{"pm25_block_mean"},
		guest.LocalFloat64("PM2.5", []float64{10, 0, 30}, []bool{true, false, true}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got)
	// Output:
	// [{pm25_block_mean -1 0 20}]
}
