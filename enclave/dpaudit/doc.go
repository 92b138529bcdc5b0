// Package dpaudit checks a differentially private output empirically: it
// releases the output many times on two neighbouring datasets and derives,
// from how well the outputs can be told apart, a lower bound on the ε the
// mechanism really spends (in the manner of DP-Auditorium and of the
// "auditing DP" literature).
//
// # Method
//
// Samples from dataset A and its neighbour B (one privacy unit removed) are
// split in halves. On the first half a threshold test is chosen: an event
// "output > t" or "output < t" and an order (A, B) or (B, A), among
// thresholds at the pooled sample quantiles, maximizing the estimated bound.
// On the second, held-out half, exact Clopper–Pearson bounds give
// p1 ≤ P_first(event) and p2 ≥ P_second(event), each at confidence
// 1 − alpha/2, and
//
//	ε_lb = ln((p1 − δ) / p2)
//
// is a lower bound on the true ε with confidence 1 − alpha: an
// (ε, δ)-DP mechanism has P_first(E) ≤ e^ε·P_second(E) + δ for every event E.
// A bound above the declared ε proves the declaration false; a bound below
// it is evidence, not proof, that the declaration holds (the bound is only as
// tight as the samples and the event allow).
//
// The package imports the enclave and the standard library only; callers
// bring the data (the cove dp audit command and the tests use the Adult
// table of the demodata package).
//
// # Concurrency
//
// Functions are safe for concurrent use; Audit draws releases on several
// goroutines.
package dpaudit
