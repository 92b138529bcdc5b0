package guest_test

import (
	"fmt"

	"github.com/covedata/cove/sdk/guest"
)

// Host kernels: the host filters, groups and emits over the batch's Arrow
// buffers natively; the guest only says what to do.
func ExampleRows_GroupBy() {
	process := func(b *guest.Batch) error {
		g := b.All().NotNull("PM2.5").WhereInt("year", guest.Ge, 2014).GroupBy("station", "year")
		guest.Output("pm25_mean").AddColumn(g, "PM2.5")
		return nil
	}
	got, err := guest.RunLocal(process, []string{"pm25_mean"},
		guest.LocalDictString("station", []string{"Aotizhongxin", "Dingling"}, []int32{0, 0, 1, 1}, nil),
		guest.LocalInt64("year", []int64{2013, 2014, 2014, 2014}, nil),
		guest.LocalFloat64("PM2.5", []float64{4, 5, 7.5, 0}, []bool{true, true, true, false}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range got {
		fmt.Printf("row=%d key=%q value=%g\n", c.Row, c.Key, c.Value)
	}
	// Output:
	// row=1 key="Aotizhongxin\x1f2014" value=5
	// row=2 key="Dingling\x1f2014" value=7.5
}

// Per-row logic and kernels mix: a handler picks rows itself, then lets the
// host group and count them.
func ExampleBatch_Select() {
	process := func(b *guest.Batch) error {
		income := b.String("income")
		var rich []uint32
		for i := 0; i < b.Len(); i++ {
			if len(income.Value(i)) > 0 && income.Value(i)[0] == '>' {
				rich = append(rich, uint32(i))
			}
		}
		guest.Output("high_income_count").CountRows(b.Select(rich).GroupBy("education"))
		return nil
	}
	got, _ := guest.RunLocal(process, []string{"high_income_count"},
		guest.LocalString("education", []string{"Bachelors", "HS-grad", "Masters"}, nil),
		guest.LocalString("income", []string{">50K", "<=50K", ">50K"}, nil),
	)
	fmt.Println(got)
	// Output:
	// [{high_income_count 0 Bachelors 1} {high_income_count 2 Masters 1}]
}
