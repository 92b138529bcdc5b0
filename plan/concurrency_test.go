package plan

import (
	"slices"
	"sync"
	"testing"
)

// TestConcurrentEvaluators hammers one Plan from several goroutines, each
// with its own Evaluator, over shared batches (run with -race).
func TestConcurrentEvaluators(t *testing.T) {
	mem := checked(t)
	rec := beijing(mem, 3*chunkRows+5)
	defer rec.Release()
	lit := planOf(t, "`PM2.5` IS NOT NULL", [][2]string{{"band", "bucket(`PM2.5`, 50)"}},
		out(t, "pm25_mean", "lower(station) <> 'dongsi'", "`PM2.5`", "station", "year"),
		out(t, "bands", "", "", "band", "station"),
	)
	p, err := Compile(lit, beijingSchema, []OutputSpec{
		{Name: "pm25_mean", UsesValue: true, GroupBy: []GroupSpec{{Values: beijingStations}, {Values: years}}},
		{Name: "bands", GroupBy: []GroupSpec{{Private: true}, {Private: true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.NewEvaluator().Batch(rec)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			ev := p.NewEvaluator()
			for range 5 {
				got, err := ev.Batch(rec)
				if err != nil {
					errs <- err.Error()
					return
				}
				for i := range got {
					if !slices.Equal(got[i].Part, want[i].Part) || !slices.Equal(got[i].Keys, want[i].Keys) {
						errs <- "results differ"
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
