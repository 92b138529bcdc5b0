// Package cove holds what every other package of Cove shares: the error
// categories and the stable codes clients see. It imports only the standard
// library, so any package may depend on it.
//
// # Errors
//
// Packages wrap one of the sentinels below with detail:
//
//	fmt.Errorf("%w: column %q is not in grant %s", cove.ErrOutOfScope, col, grant)
//
// Code maps any wrapped error to its stable client code. The detail is written
// for the operator and must never carry a data value: messages name grants,
// datasets, columns and numbers from manifests, never a cell.
package cove
