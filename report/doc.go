// Package report derives the public and billing views of Cove from the ledger
// alone: the disclosure report of regulation art. 32 (grants with scope and
// period, data products released, encrypted operator queries answered,
// resource usage per dataset) and operators' statements priced by a
// schedule (art. 21, 22: public-welfare use free within stated conditions,
// industry use at a guided price; encrypted queries are not priced yet).
//
// # Why the ledger alone
//
// Anyone holding a verified ledger can recompute these reports, so the
// authority cannot publish a report its own log contradicts. The ledger
// holds no raw row or cell, so neither do the reports: products are listed
// by name, aggregate and privacy cost, without their values.
package report
