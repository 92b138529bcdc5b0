package policy

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/covedata/cove"
)

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidName reports whether s is usable as a dataset, grant, operator, domain
// or purpose identifier: lower case letters, digits, '.', '_' and '-', at
// most 63.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// Mode is how a grant names its data (art. 3, 10).
type Mode string

// The authorization modes.
const (
	Whole    Mode = "whole"    // every dataset the authority lists in the grant
	ByDomain Mode = "domain"   // every dataset of one domain, present and future
	Scenario Mode = "scenario" // named datasets for named purposes
)

// Mechanisms a grant may allow.
const (
	MechanismDP = "dp"
	MechanismHE = "he"
)

// Pricing categories (art. 21, 22).
const (
	PublicWelfare = "public-welfare"
	Industry      = "industry"
)

// Budget refresh periods.
const (
	NoRefresh = ""
	Monthly   = "monthly"
	Daily     = "daily"
)

// AnyDataset keys the default column list and caps of whole and domain grants.
const AnyDataset = "*"

// AllColumns in a grant's column list opens every column but direct identifiers.
const AllColumns = "*"

// Grant is an authorization of one operator (art. 11, 13): period, data
// scope, purposes, mechanisms, privacy budget and accounting category.
type Grant struct {
	ID         string              `json:"id"`
	Operator   string              `json:"operator"`
	Mode       Mode                `json:"mode"`
	Domain     string              `json:"domain,omitempty"`   // ByDomain
	Datasets   []string            `json:"datasets,omitempty"` // Whole and Scenario
	Purposes   []string            `json:"purposes"`
	Columns    map[string][]string `json:"columns"`             // per dataset (or AnyDataset): readable columns, or [AllColumns]
	Mechanisms []string            `json:"mechanisms"`          // MechanismDP, MechanismHE
	EpsilonCap map[string]float64  `json:"epsilon_cap"`         // per dataset (or AnyDataset), per period
	DeltaCap   map[string]float64  `json:"delta_cap,omitempty"` // per dataset (or AnyDataset); absent means 0
	Period     string              `json:"period,omitempty"`    // budget refresh: "", monthly, daily
	Pricing    string              `json:"pricing"`             // PublicWelfare or Industry
	MaxJobs    int                 `json:"max_jobs,omitempty"`  // 0: no limit
	ValidFrom  time.Time           `json:"valid_from"`
	ValidUntil time.Time           `json:"valid_until"`
	Agreement  string              `json:"agreement,omitempty"` // reference of the filed agreement (art. 13)
}

// Validate checks a grant against the catalog before it is created: every
// problem at once.
func (g Grant) Validate(lookup func(name string) (Dataset, bool)) error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: grant %q: "+format, append([]any{cove.ErrInvalid, g.ID}, a...)...))
	}
	if !ValidName(g.ID) {
		bad("id must match %s", namePattern)
	}
	if !ValidName(g.Operator) {
		bad("operator %q must match %s", g.Operator, namePattern)
	}
	if len(g.Purposes) == 0 {
		bad("names no purpose")
	}
	for _, p := range g.Purposes {
		if !ValidName(p) {
			bad("purpose %q must match %s", p, namePattern)
		}
	}
	if len(g.Mechanisms) == 0 {
		bad("allows no mechanism (dp, he)")
	}
	for _, m := range g.Mechanisms {
		if m != MechanismDP && m != MechanismHE {
			bad("mechanism %q is not dp or he", m)
		}
	}
	if g.Pricing != PublicWelfare && g.Pricing != Industry {
		bad("pricing %q is not %s or %s", g.Pricing, PublicWelfare, Industry)
	}
	if g.Period != NoRefresh && g.Period != Monthly && g.Period != Daily {
		bad("period %q is not monthly, daily or empty", g.Period)
	}
	if g.MaxJobs < 0 {
		bad("max_jobs %d is negative", g.MaxJobs)
	}
	if !g.ValidUntil.After(g.ValidFrom) {
		bad("valid_until %s is not after valid_from %s", g.ValidUntil.Format(time.RFC3339), g.ValidFrom.Format(time.RFC3339))
	}
	switch g.Mode {
	case Whole, Scenario:
		if len(g.Datasets) == 0 {
			bad("a %s grant must list its datasets", g.Mode)
		}
		if g.Domain != "" {
			bad("a %s grant names no domain", g.Mode)
		}
	case ByDomain:
		if !ValidName(g.Domain) || len(g.Datasets) > 0 {
			bad("a domain grant names one domain and no datasets")
		}
	default:
		bad("mode %q is not whole, domain or scenario", g.Mode)
	}
	for _, name := range g.Datasets {
		d, ok := lookup(name)
		if !ok {
			bad("dataset %q is not in the catalog", name)
			continue
		}
		if d.Sharing == NotShared {
			bad("dataset %q is not-shared and cannot be granted", name)
		}
		if d.Sharing == Conditional && !slices.ContainsFunc(g.Mechanisms, func(m string) bool { return m == MechanismDP || m == MechanismHE }) {
			bad("dataset %q is conditional: only dp or he may be granted", name)
		}
		cols, _ := g.columnsFor(name)
		if len(cols) == 0 {
			bad("grants no column of dataset %q", name)
		}
		for _, c := range cols {
			if c == AllColumns {
				continue
			}
			col, ok := d.Column(c)
			switch {
			case !ok:
				bad("column %q is not in dataset %q", c, name)
			case col.Role == DirectIdentifier:
				bad("column %q of dataset %q is a direct identifier: no guest may read it", c, name)
			}
		}
		if _, ok := g.cap(g.EpsilonCap, name); !ok {
			bad("no epsilon cap for dataset %q", name)
		}
	}
	for k, eps := range g.EpsilonCap {
		if !(eps > 0) || math.IsInf(eps, 0) {
			bad("epsilon cap of %q must be a positive finite number", k)
		}
	}
	for k, d := range g.DeltaCap {
		if !(d >= 0 && d < 1) {
			bad("delta cap of %q must be in [0, 1)", k)
		}
	}
	if g.Mode == ByDomain {
		if _, ok := g.EpsilonCap[AnyDataset]; !ok {
			bad(`a domain grant needs a default epsilon cap under "*"`)
		}
		if len(g.Columns[AnyDataset]) == 0 {
			bad(`a domain grant needs a default column list under "*"`)
		}
	}
	for name := range g.Columns {
		if name != AnyDataset && !slices.Contains(g.Datasets, name) {
			bad("lists columns of dataset %q it does not grant", name)
		}
	}
	return errors.Join(errs...)
}

// Covers reports whether the grant's scope includes the dataset.
func (g Grant) Covers(d Dataset) bool {
	if g.Mode == ByDomain {
		return d.Domain == g.Domain
	}
	return slices.Contains(g.Datasets, d.Name)
}

func (g Grant) columnsFor(dataset string) ([]string, bool) {
	if cols, ok := g.Columns[dataset]; ok {
		return cols, true
	}
	cols, ok := g.Columns[AnyDataset]
	return cols, ok
}

func (g Grant) cap(m map[string]float64, dataset string) (float64, bool) {
	if v, ok := m[dataset]; ok {
		return v, true
	}
	v, ok := m[AnyDataset]
	return v, ok
}

// Caps returns the ε and δ caps of the dataset under this grant, per period.
func (g Grant) Caps(dataset string) (eps, delta float64) {
	eps, _ = g.cap(g.EpsilonCap, dataset)
	delta, _ = g.cap(g.DeltaCap, dataset)
	return eps, delta
}

// PeriodStart is the start of the budget period holding t: the grant's start
// when the budget never refreshes, else the month or day (UTC).
func (g Grant) PeriodStart(t time.Time) time.Time {
	t = t.UTC()
	switch g.Period {
	case Monthly:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	case Daily:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	return g.ValidFrom.UTC()
}

// CanRead reports whether a guest under this grant may read the column.
func (g Grant) CanRead(d Dataset, column string) bool {
	col, ok := d.Column(column)
	if !ok || col.Role == DirectIdentifier {
		return false
	}
	cols, _ := g.columnsFor(d.Name)
	return slices.Contains(cols, column) || slices.Contains(cols, AllColumns)
}

// Budget is the privacy budget of one (grant, dataset) pair in one period.
type Budget struct {
	Period        time.Time `json:"period"`
	Cap           float64   `json:"epsilon_cap"`
	Spent         float64   `json:"epsilon_spent"`
	Reserved      float64   `json:"epsilon_reserved"`
	DeltaCap      float64   `json:"delta_cap"`
	DeltaSpent    float64   `json:"delta_spent"`
	DeltaReserved float64   `json:"delta_reserved"`
}

// budgetSlack absorbs float rounding in sums of ε so that spending a cap
// exactly in several parts is allowed; it is far below any meaningful ε.
const budgetSlack = 1e-9

// Left is the ε still available for new jobs.
func (b Budget) Left() float64 { return max(0, b.Cap-b.Spent-b.Reserved) }

// DeltaLeft is the δ still available for new jobs.
func (b Budget) DeltaLeft() float64 { return max(0, b.DeltaCap-b.DeltaSpent-b.DeltaReserved) }

// Fits reports whether (eps, delta) can be reserved.
func (b Budget) Fits(eps, delta float64) bool {
	return b.Spent+b.Reserved+eps <= b.Cap+budgetSlack &&
		(delta == 0 || b.DeltaSpent+b.DeltaReserved+delta <= b.DeltaCap+budgetSlack*1e-6)
}

// Request is what admission checks: a job's claims about itself.
type Request struct {
	Job         string   `json:"job"`
	Operator    string   `json:"operator"`
	Grant       string   `json:"grant"`
	Purpose     string   `json:"purpose"`
	Dataset     string   `json:"dataset"`
	Mechanism   string   `json:"mechanism"`
	Columns     []string `json:"columns"`                // read by the guest
	UnitColumns []string `json:"unit_columns"`           // read by the host to attribute contributions
	UnitPerRow  bool     `json:"unit_per_row,omitempty"` // the manifest claims every row is its own unit
	GroupBy     []string `json:"group_by"`               // columns the outputs group by
	Epsilon     float64  `json:"epsilon"`                // the job's total ε (composition of its outputs)
	Delta       float64  `json:"delta"`                  // the job's total δ
}

// Input is everything admission looks at.
type Input struct {
	Grant    Grant
	Revoked  bool
	Dataset  Dataset
	Budget   Budget
	JobsUsed int // jobs already admitted under the grant
	Request  Request
	Now      time.Time
}

// Decision is an admitted job's route.
type Decision struct {
	// Review: the job waits for the authority (conditional data, level ≥ 3).
	Review bool `json:"review"`
	// Flags are linkage risks the authority should look at; they do not
	// block the job.
	Flags []string `json:"flags,omitempty"`
}

// Violation codes: stable, written down in docs/errors.md.
const (
	CodeGrantInactive    = "grant_inactive"
	CodeGrantRevoked     = "grant_revoked"
	CodeOperator         = "operator_not_grantee"
	CodePurpose          = "purpose_not_granted"
	CodeDataset          = "dataset_not_granted"
	CodeNotShared        = "dataset_not_shared"
	CodeMechanism        = "mechanism_not_allowed"
	CodeColumn           = "column_not_granted"
	CodeDirectIdentifier = "column_direct_identifier"
	CodeUnknownColumn    = "column_unknown"
	CodeBudget           = "budget_exceeded"
	CodeDeltaBudget      = "delta_budget_exceeded"
	CodeMaxJobs          = "max_jobs_reached"
	CodeInvalidParameter = "invalid_parameter"
	CodePrivacyUnit      = "privacy_unit_mismatch"
)

// Violation is one reason a job is refused.
type Violation struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	err     error
}

// NewViolation builds a violation of a category (for checks made outside
// Admit, such as an unknown grant).
func NewViolation(code string, err error) Violation {
	return Violation{Code: code, Message: err.Error(), err: err}
}

// Rejection lists every violation of a request. errors.Is matches each
// violation's category sentinel.
type Rejection struct {
	Violations []Violation `json:"violations"`
}

func (r *Rejection) Error() string {
	msgs := make([]string, len(r.Violations))
	for i, v := range r.Violations {
		msgs[i] = v.Code + ": " + v.Message
	}
	return "job rejected: " + strings.Join(msgs, "; ")
}

// Unwrap exposes the category of each violation.
func (r *Rejection) Unwrap() []error {
	var errs []error
	for _, v := range r.Violations {
		if v.err != nil {
			errs = append(errs, v.err)
		}
	}
	return errs
}

// Codes lists the violation codes in order.
func (r *Rejection) Codes() []string {
	codes := make([]string, len(r.Violations))
	for i, v := range r.Violations {
		codes[i] = v.Code
	}
	return codes
}

// Admit checks a request against its grant, the dataset, the budget left and
// the grant's job count. It returns the route of an admissible job, or a
// *Rejection naming every violation.
func Admit(in Input) (Decision, error) {
	g, d, r := in.Grant, in.Dataset, in.Request
	var vs []Violation
	add := func(code string, sentinel error, format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		vs = append(vs, Violation{Code: code, Message: msg, err: fmt.Errorf("%w: %s", sentinel, msg)})
	}
	if in.Revoked {
		add(CodeGrantRevoked, cove.ErrGrantInactive, "grant %s was revoked", g.ID)
	}
	if in.Now.Before(g.ValidFrom) || !in.Now.Before(g.ValidUntil) {
		add(CodeGrantInactive, cove.ErrGrantInactive, "grant %s is valid from %s until %s", g.ID,
			g.ValidFrom.UTC().Format(time.RFC3339), g.ValidUntil.UTC().Format(time.RFC3339))
	}
	if r.Operator != g.Operator {
		add(CodeOperator, cove.ErrOutOfScope, "grant %s is not held by operator %s", g.ID, r.Operator)
	}
	if !slices.Contains(g.Purposes, r.Purpose) {
		add(CodePurpose, cove.ErrOutOfScope, "purpose %q is not among the purposes of grant %s (%s)", r.Purpose, g.ID, strings.Join(g.Purposes, ", "))
	}
	covered := g.Covers(d)
	if !covered {
		add(CodeDataset, cove.ErrOutOfScope, "dataset %s is not in the scope of grant %s", d.Name, g.ID)
	}
	if d.Sharing == NotShared {
		add(CodeNotShared, cove.ErrOutOfScope, "dataset %s is not-shared: no job may use it", d.Name)
	}
	if !slices.Contains(g.Mechanisms, r.Mechanism) {
		add(CodeMechanism, cove.ErrOutOfScope, "mechanism %q is not allowed by grant %s (%s)", r.Mechanism, g.ID, strings.Join(g.Mechanisms, ", "))
	}
	if d.Sharing == Conditional && r.Mechanism != MechanismDP && r.Mechanism != MechanismHE {
		add(CodeMechanism, cove.ErrOutOfScope, "dataset %s is conditional: only dp or he", d.Name)
	}
	for _, c := range r.Columns {
		col, ok := d.Column(c)
		switch {
		case !ok:
			add(CodeUnknownColumn, cove.ErrInvalid, "column %q is not in dataset %s", c, d.Name)
		case col.Role == DirectIdentifier:
			add(CodeDirectIdentifier, cove.ErrOutOfScope, "column %q of dataset %s is a direct identifier: no guest may read it", c, d.Name)
		case covered && !g.CanRead(d, c):
			add(CodeColumn, cove.ErrOutOfScope, "column %q of dataset %s is not in grant %s", c, d.Name, g.ID)
		}
	}
	for _, c := range r.UnitColumns {
		if !d.HasColumn(c) {
			add(CodeUnknownColumn, cove.ErrInvalid, "privacy unit column %q is not in dataset %s", c, d.Name)
		}
	}
	// The catalog's unit is the authority's, not the operator's: a job may
	// bound a coarser unit (a subset of the unit columns: each of its units
	// is a union of the catalog's), never a finer one.
	if len(r.UnitColumns) == 0 && !r.UnitPerRow && len(d.UnitColumns()) == 0 {
		add(CodePrivacyUnit, cove.ErrInvalid, "dataset %s's catalog names no privacy unit: the manifest must give privacy_unit columns or per_row", d.Name)
	}
	if unit := d.UnitColumns(); len(unit) > 0 {
		switch {
		case r.UnitPerRow && !d.UnitPerRow:
			add(CodePrivacyUnit, cove.ErrOutOfScope, "dataset %s's privacy unit (%s) is not one row: per_row would let one unit count many times; name the unit columns",
				d.Name, strings.Join(unit, ", "))
		case !r.UnitPerRow:
			for _, c := range r.UnitColumns {
				if !slices.Contains(unit, c) {
					add(CodePrivacyUnit, cove.ErrOutOfScope, "privacy unit column %q is not among dataset %s's unit columns (%s): a job may bound the catalog's unit or a coarser one",
						c, d.Name, strings.Join(unit, ", "))
				}
			}
		}
	}
	if g.MaxJobs > 0 && in.JobsUsed >= g.MaxJobs {
		add(CodeMaxJobs, cove.ErrBudgetExceeded, "grant %s allows %d jobs and all were used", g.ID, g.MaxJobs)
	}
	switch {
	case !(r.Epsilon > 0) || math.IsInf(r.Epsilon, 0):
		add(CodeInvalidParameter, cove.ErrInvalid, "job epsilon %g must be a positive finite number", r.Epsilon)
	case !(r.Delta >= 0 && r.Delta < 1):
		add(CodeInvalidParameter, cove.ErrInvalid, "job delta %g must be in [0, 1)", r.Delta)
	case covered:
		b := in.Budget
		if b.Spent+b.Reserved+r.Epsilon > b.Cap+budgetSlack {
			add(CodeBudget, cove.ErrBudgetExceeded, "job needs epsilon %g on dataset %s but grant %s has %g left of %g%s",
				r.Epsilon, d.Name, g.ID, b.Left(), b.Cap, periodNote(g, b))
		}
		if r.Delta > 0 && !b.Fits(0, r.Delta) {
			add(CodeDeltaBudget, cove.ErrBudgetExceeded, "job needs delta %g on dataset %s but grant %s has %g left of %g",
				r.Delta, d.Name, g.ID, b.DeltaLeft(), b.DeltaCap)
		}
	}
	if len(vs) > 0 {
		return Decision{}, &Rejection{Violations: vs}
	}
	return Decision{Review: d.NeedsReview(), Flags: linkageFlags(d, r)}, nil
}

func periodNote(g Grant, b Budget) string {
	if g.Period == NoRefresh {
		return ""
	}
	return fmt.Sprintf(" for the %s period from %s", g.Period, b.Period.Format("2006-01-02"))
}

// linkageFlags names what in a request could link released aggregates back
// to people (art. 30): grouping by several quasi-identifiers at once.
func linkageFlags(d Dataset, r Request) []string {
	var qi []string
	for _, c := range r.GroupBy {
		if col, ok := d.Column(c); ok && col.Role == QuasiIdentifier && !slices.Contains(qi, c) {
			qi = append(qi, c)
		}
	}
	if len(qi) >= 2 {
		return []string{fmt.Sprintf("groups by %d quasi-identifiers together (%s)", len(qi), strings.Join(qi, ", "))}
	}
	return nil
}
