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

// Column is one column of a dataset's schema.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Dataset is a catalog entry.
type Dataset struct {
	Name     string   `json:"name"`
	Title    string   `json:"title"`
	Domain   string   `json:"domain"`
	Provider string   `json:"provider"`
	Source   string   `json:"source"`
	Citation string   `json:"citation,omitempty"`
	License  string   `json:"license,omitempty"`
	Location string   `json:"location"`
	SHA256   string   `json:"sha256"`
	Rows     int64    `json:"rows"`
	Columns  []Column `json:"columns"`
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidName reports whether s is usable as a dataset, grant, operator or
// purpose identifier: lower case letters, digits, '.', '_' and '-', at most 63.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// Validate checks a catalog entry before registration.
func (d Dataset) Validate() error {
	var errs []error
	if !ValidName(d.Name) {
		errs = append(errs, fmt.Errorf("%w: dataset name %q must match %s", cove.ErrInvalid, d.Name, namePattern))
	}
	if d.Location == "" {
		errs = append(errs, fmt.Errorf("%w: dataset %q has no location", cove.ErrInvalid, d.Name))
	}
	if len(d.Columns) == 0 {
		errs = append(errs, fmt.Errorf("%w: dataset %q has no columns", cove.ErrInvalid, d.Name))
	}
	seen := map[string]bool{}
	for _, c := range d.Columns {
		if c.Name == "" || seen[c.Name] {
			errs = append(errs, fmt.Errorf("%w: dataset %q has an empty or duplicate column name %q", cove.ErrInvalid, d.Name, c.Name))
		}
		seen[c.Name] = true
	}
	return errors.Join(errs...)
}

// HasColumn reports whether the dataset has a column of that name.
func (d Dataset) HasColumn(name string) bool {
	return slices.ContainsFunc(d.Columns, func(c Column) bool { return c.Name == name })
}

// Grant is an authorization of one operator to use datasets for purposes,
// within a period and a privacy budget per dataset.
type Grant struct {
	ID         string              `json:"id"`
	Operator   string              `json:"operator"`
	Purposes   []string            `json:"purposes"`
	Datasets   []string            `json:"datasets"`
	Columns    map[string][]string `json:"columns"`     // per dataset: the columns a job may read
	EpsilonCap map[string]float64  `json:"epsilon_cap"` // per dataset: total ε over the grant's life
	ValidFrom  time.Time           `json:"valid_from"`
	ValidUntil time.Time           `json:"valid_until"`
}

// Validate checks a grant against the catalog before it is created.
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
	if len(g.Datasets) == 0 {
		bad("names no dataset")
	}
	if !g.ValidUntil.After(g.ValidFrom) {
		bad("valid_until %s is not after valid_from %s", g.ValidUntil.Format(time.RFC3339), g.ValidFrom.Format(time.RFC3339))
	}
	for _, name := range g.Datasets {
		d, ok := lookup(name)
		if !ok {
			bad("dataset %q is not in the catalog", name)
			continue
		}
		if len(g.Columns[name]) == 0 {
			bad("grants no column of dataset %q", name)
		}
		for _, c := range g.Columns[name] {
			if !d.HasColumn(c) {
				bad("column %q is not in dataset %q", c, name)
			}
		}
		if eps, ok := g.EpsilonCap[name]; !ok || !(eps > 0) || math.IsInf(eps, 0) {
			bad("epsilon cap for dataset %q must be a positive finite number", name)
		}
	}
	for name := range g.Columns {
		if !slices.Contains(g.Datasets, name) {
			bad("lists columns of dataset %q it does not grant", name)
		}
	}
	return errors.Join(errs...)
}

// Budget is the privacy budget of one (grant, dataset) pair.
type Budget struct {
	Cap      float64 `json:"epsilon_cap"`
	Spent    float64 `json:"epsilon_spent"`
	Reserved float64 `json:"epsilon_reserved"`
}

// budgetSlack absorbs float rounding in sums of ε so that spending a cap
// exactly in several parts is allowed; it is far below any meaningful ε.
const budgetSlack = 1e-9

// Left is the ε still available for new jobs.
func (b Budget) Left() float64 { return max(0, b.Cap-b.Spent-b.Reserved) }

// Fits reports whether eps can be reserved.
func (b Budget) Fits(eps float64) bool { return b.Spent+b.Reserved+eps <= b.Cap+budgetSlack }

// Request is what admission checks: a job's claims about itself.
type Request struct {
	Job         string
	Operator    string
	Grant       string
	Purpose     string
	Dataset     string
	Columns     []string // read by the guest
	UnitColumns []string // read by the host to attribute contributions
	Epsilon     float64  // total ε of the job's outputs
}

// Violation codes: stable, written down in docs/errors.md.
const (
	CodeGrantInactive    = "grant_inactive"
	CodeOperator         = "operator_not_grantee"
	CodePurpose          = "purpose_not_granted"
	CodeDataset          = "dataset_not_granted"
	CodeColumn           = "column_not_granted"
	CodeUnknownColumn    = "column_unknown"
	CodeBudget           = "budget_exceeded"
	CodeInvalidParameter = "invalid_parameter"
)

// Violation is one reason a job is refused.
type Violation struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	err     error
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
	errs := make([]error, len(r.Violations))
	for i, v := range r.Violations {
		errs[i] = v.err
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

// Admit checks a request against its grant, the dataset and the budget left.
// It returns nil or a *Rejection naming every violation.
func Admit(g Grant, d Dataset, b Budget, r Request, now time.Time) error {
	var vs []Violation
	add := func(code string, sentinel error, format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		vs = append(vs, Violation{Code: code, Message: msg, err: fmt.Errorf("%w: %s", sentinel, msg)})
	}
	if now.Before(g.ValidFrom) || !now.Before(g.ValidUntil) {
		add(CodeGrantInactive, cove.ErrGrantInactive, "grant %s is valid from %s until %s", g.ID,
			g.ValidFrom.UTC().Format(time.RFC3339), g.ValidUntil.UTC().Format(time.RFC3339))
	}
	if r.Operator != g.Operator {
		add(CodeOperator, cove.ErrOutOfScope, "grant %s is not held by operator %s", g.ID, r.Operator)
	}
	if !slices.Contains(g.Purposes, r.Purpose) {
		add(CodePurpose, cove.ErrOutOfScope, "purpose %q is not among the purposes of grant %s (%s)", r.Purpose, g.ID, strings.Join(g.Purposes, ", "))
	}
	datasetGranted := slices.Contains(g.Datasets, d.Name)
	if !datasetGranted {
		add(CodeDataset, cove.ErrOutOfScope, "dataset %s is not in grant %s", d.Name, g.ID)
	}
	for _, c := range r.Columns {
		switch {
		case !d.HasColumn(c):
			add(CodeUnknownColumn, cove.ErrInvalid, "column %q is not in dataset %s", c, d.Name)
		case datasetGranted && !slices.Contains(g.Columns[d.Name], c):
			add(CodeColumn, cove.ErrOutOfScope, "column %q of dataset %s is not in grant %s", c, d.Name, g.ID)
		}
	}
	for _, c := range r.UnitColumns {
		if !d.HasColumn(c) {
			add(CodeUnknownColumn, cove.ErrInvalid, "privacy unit column %q is not in dataset %s", c, d.Name)
		}
	}
	switch {
	case !(r.Epsilon > 0) || math.IsInf(r.Epsilon, 0):
		add(CodeInvalidParameter, cove.ErrInvalid, "job epsilon %g must be a positive finite number", r.Epsilon)
	case datasetGranted && !b.Fits(r.Epsilon):
		add(CodeBudget, cove.ErrBudgetExceeded, "job needs epsilon %g on dataset %s but grant %s has %g left of %g",
			r.Epsilon, d.Name, g.ID, b.Left(), b.Cap)
	}
	if len(vs) == 0 {
		return nil
	}
	return &Rejection{Violations: vs}
}
