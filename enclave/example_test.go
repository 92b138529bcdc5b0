package enclave_test

import (
	"fmt"

	"github.com/covedata/cove/enclave"
)

// A count of visits per city, each person counted in at most one city and at
// most twice. Epsilon is huge here only so that the output is reproducible;
// real outputs use ε of order 1.
func Example() {
	acc, err := enclave.NewAccumulator(enclave.Spec{
		Output:           "visits_by_city",
		Aggregate:        enclave.Count,
		Epsilon:          1e6,
		MaxPartitions:    1,
		MaxContributions: 2,
		Partitions:       []string{"Lyon", "Oslo", "Quito"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	visits := []struct {
		person uint64
		city   int
	}{
		{1, 0}, {1, 0}, {1, 0}, {1, 0}, // person 1: four visits to Lyon, two kept
		{2, 1}, {3, 1}, {3, 1},
	}
	for _, v := range visits {
		if err := acc.Add(v.person, v.city, 0); err != nil {
			fmt.Println(err)
			return
		}
	}
	rel, err := acc.Release()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rel.Output, rel.Mechanism)
	for _, row := range rel.Rows {
		fmt.Printf("%s %.0f\n", row.Key, row.Value)
	}
	// Output:
	// visits_by_city laplace
	// Lyon 2
	// Oslo 3
	// Quito 0
}
