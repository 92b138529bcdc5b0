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

// Mean income-like values per group whose keys come from the data: groups are
// selected privately, and those too small to release are only counted.
func ExampleAccumulator_AddKey() {
	acc, err := enclave.NewAccumulator(enclave.Spec{
		Output:            "mean_by_group",
		Aggregate:         enclave.Mean,
		Epsilon:           1e6, // huge only to make the output reproducible
		Delta:             1e-9,
		Lower:             0,
		Upper:             100,
		Granularity:       0.5,
		MaxPartitions:     1,
		MaxContributions:  1,
		PrivatePartitions: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for u := range uint64(1000) {
		acc.AddKey(u, "big", float64(u%50)+0.3) // snapped to the 0.5 grid
	}
	acc.AddKey(5000, "tiny", 42) // one person: never released
	rel, err := acc.Release()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, row := range rel.Rows {
		fmt.Printf("%s %.1f\n", row.Key, row.Value)
	}
	fmt.Println("suppressed:", rel.Suppressed)
	// Output:
	// big 25.0
	// suppressed: 1
}

// The cost of a job with three outputs: basic composition would say ε 1.5;
// zCDP accounting of the two Gaussian sums brings their part from 1 to 0.91.
func ExampleCompose() {
	count := enclave.Spec{Output: "n", Aggregate: enclave.Count, Epsilon: 0.5,
		MaxPartitions: 1, MaxContributions: 1, Partitions: []string{"all"}}
	sum := enclave.Spec{Output: "s", Aggregate: enclave.Sum, Mechanism: enclave.MechanismGaussian,
		Epsilon: 0.5, Delta: 1e-6, Lower: 0, Upper: 10,
		MaxPartitions: 1, MaxContributions: 1, Partitions: []string{"all"}}
	cost, err := enclave.Compose([]enclave.Spec{count, sum, sum})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("ε %.2f δ %.0e\n", cost.Epsilon, cost.Delta)
	// Output:
	// ε 1.41 δ 2e-06
}
