package dpaudit_test

import (
	"context"
	"fmt"

	"github.com/covedata/cove/enclave"
	"github.com/covedata/cove/enclave/dpaudit"
)

// Audit a count of 50 units against its neighbour without unit 0. The
// declared ε is 1; the bound is printed as a comparison because its exact
// value is random.
func ExampleAudit() {
	var a []dpaudit.Contribution
	for u := range uint64(50) {
		a = append(a, dpaudit.Contribution{Unit: u, Key: "all"})
	}
	b, _ := dpaudit.WorstNeighbour(a)
	spec := enclave.Spec{Output: "n", Aggregate: enclave.Count, Epsilon: 1,
		MaxPartitions: 1, MaxContributions: 1, Partitions: []string{"all"}}
	r, err := dpaudit.Audit(context.Background(), spec, a, b, dpaudit.Options{Samples: 4000})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("samples per dataset:", r.Samples)
	fmt.Println("empirical ε ≤ declared ε:", r.LowerBound <= r.Declared)
	// Output:
	// samples per dataset: 4000
	// empirical ε ≤ declared ε: true
}
