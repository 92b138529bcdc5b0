package guest_test

import (
	"fmt"

	"github.com/covedata/cove/sdk/guest"
)

// A plan job: the fluent calls build the plan in the planning call, where
// the handler sees the schema only. PlanLocal shows the plan a Cove host
// would receive.
func ExamplePlanLocal() {
	process := func(b *guest.Batch) error {
		readings := b.All().NotNull("PM2.5").GroupBy("station", "year")
		guest.Output("pm25_mean").AddColumn(readings, "PM2.5")
		return nil
	}
	plan, err := guest.PlanLocal(process, []string{"pm25_mean"},
		guest.LocalString("station", nil, nil),
		guest.LocalInt64("year", nil, nil),
		guest.LocalFloat64("PM2.5", nil, nil),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(plan))
	// Output:
	// {"version":1,"outputs":[{"name":"pm25_mean","where":{"op":"is_not_null","args":[{"col":"PM2.5"}]},"group_by":[{"col":"station"},{"col":"year"}],"value":{"col":"PM2.5"}}]}
}

// Expressions say what the fluent filters cannot: a derived column, an
// expression filter and an expression key. The host evaluates them.
func ExampleBatch_Derive() {
	process := func(b *guest.Batch) error {
		pm := guest.Col("PM2.5")
		band := b.Derive("pm_band", pm.Bucket(guest.Int(50)))
		winter := guest.Col("month").In(guest.Int(12), guest.Int(1), guest.Int(2))
		days := b.All().Where(pm.IsNotNull().And(winter)).GroupByExpr(guest.Col("station"), band)
		guest.Output("winter_hours").CountRows(days)
		return nil
	}
	plan, err := guest.PlanLocal(process, []string{"winter_hours"},
		guest.LocalString("station", nil, nil),
		guest.LocalInt64("month", nil, nil),
		guest.LocalFloat64("PM2.5", nil, nil),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(plan))
	// Output:
	// {"version":1,"derive":[{"name":"pm_band","expr":{"op":"bucket","args":[{"col":"PM2.5"},{"int":50}]}}],"outputs":[{"name":"winter_hours","where":{"op":"and","args":[{"op":"is_not_null","args":[{"col":"PM2.5"}]},{"op":"in","args":[{"col":"month"},{"int":12},{"int":1},{"int":2}]}]},"group_by":[{"col":"station"},{"col":"pm_band"}]}]}
}

// A handler that reads data cannot plan: the planning call fails, saying
// why. Such a job runs in mode unit or block instead.
func ExamplePlanLocal_readsData() {
	process := func(b *guest.Batch) error {
		pm := b.Float64("PM2.5")
		out := guest.Output("pm25_mean")
		for i := 0; i < b.Len(); i++ {
			out.Add(i, "all", pm.Value(i))
		}
		return nil
	}
	_, err := guest.PlanLocal(process, []string{"pm25_mean"}, guest.LocalFloat64("PM2.5", nil, nil))
	fmt.Println(err)
	// Output:
	// panic: guest: plan mode: the handler read column values; a plan is built from the schema only — use mode: unit or block for per-row logic (column "PM2.5")
}
