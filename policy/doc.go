// Package policy decides who may do what: the dataset catalog, the grants an
// authority gives operators, and admission of a job against both.
//
// # Admission
//
// Admit checks a job request against its grant, the catalog entry and the
// budget left, and returns every violation at once (a *Rejection), each with a
// stable code and a message naming the grant, dataset, column or number at
// fault. It is pure: the store calls it inside the transaction that reserves
// the budget, so the check and the reservation cannot be separated.
//
// # Budget
//
// A grant caps the ε a job may spend per dataset. Spent ε only grows;
// reservations made at admission are turned into spending with the release or
// refunded when the job fails.
package policy
