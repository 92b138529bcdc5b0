package guest_test

import (
	"fmt"
	"strconv"

	"github.com/covedata/cove/sdk/guest"
)

// A job's handler, run natively over a small batch with RunLocal.
func ExampleRunLocal() {
	process := func(b *guest.Batch) error {
		station, year, pm := b.String("station"), b.Int64("year"), b.Float64("PM2.5")
		out := guest.Output("pm25_mean")
		for i := 0; i < b.Len(); i++ {
			if pm.IsNull(i) {
				continue
			}
			out.Add(i, guest.Key(station.Value(i), strconv.FormatInt(year.Value(i), 10)), pm.Value(i))
		}
		return nil
	}
	got, err := guest.RunLocal(process, []string{"pm25_mean"},
		guest.LocalString("station", []string{"Aotizhongxin", "Changping", "Dingling"}, nil),
		guest.LocalInt64("year", []int64{2013, 2013, 2014}, nil),
		guest.LocalFloat64("PM2.5", []float64{4, 0, 7.5}, []bool{true, false, true}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range got {
		fmt.Printf("%s row=%d key=%q value=%g\n", c.Output, c.Row, c.Key, c.Value)
	}
	// Output:
	// pm25_mean row=0 key="Aotizhongxin\x1f2013" value=4
	// pm25_mean row=2 key="Dingling\x1f2014" value=7.5
}

func ExampleEmitter_Count() {
	process := func(b *guest.Batch) error {
		edu, income := b.String("education"), b.String("income")
		out := guest.Output("high_income_count")
		for i := 0; i < b.Len(); i++ {
			if income.Value(i) == ">50K" {
				out.Count(i, guest.Key(edu.Value(i)))
			}
		}
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

func ExampleKey() {
	fmt.Printf("%q\n", guest.Key("Beijing", "2013"))
	fmt.Printf("%+q\n", guest.Key("a\x1fb", "c"))
	// Output:
	// "Beijing\x1f2013"
	// "a\ufffdb\x1fc"
}
