package policy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/covedata/cove"
)

// Sharing is a dataset's sharing attribute (regulation art. 16).
type Sharing string

// The sharing attributes.
const (
	Open          Sharing = "open"          // open data: any granted mechanism
	Unconditional Sharing = "unconditional" // unconditional sharing: the agency approves by granting
	Conditional   Sharing = "conditional"   // conditional sharing: privacy computing only, after review
	NotShared     Sharing = "not-shared"    // never granted
)

var sharings = []Sharing{Open, Unconditional, Conditional, NotShared}

// Role is what a column is, for privacy (art. 5, 31).
type Role string

// The column roles.
const (
	DirectIdentifier Role = "direct-identifier" // never readable by a guest; may be the privacy unit, kept on the host
	QuasiIdentifier  Role = "quasi-identifier"  // linkable with other data: grouping by several is flagged
	Sensitive        Role = "sensitive"
	Attribute        Role = "attribute"
	PrivacyUnitRole  Role = "privacy-unit" // identifies the unit whose contributions are bounded
)

var roles = []Role{DirectIdentifier, QuasiIdentifier, Sensitive, Attribute, PrivacyUnitRole}

// Column is one column of a dataset's schema, with its role and, where the
// values are public knowledge (station names, education levels), its domain.
type Column struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Role   Role     `json:"role,omitempty"` // empty means attribute
	Domain []string `json:"domain,omitempty"`
}

// Dataset is a catalog entry (art. 9: a registered data resource).
type Dataset struct {
	Name           string   `json:"name"`
	RegistrationID string   `json:"registration_id,omitempty"`
	Title          string   `json:"title"`
	Domain         string   `json:"domain"`
	Provider       string   `json:"provider"`
	Source         string   `json:"source"`
	Citation       string   `json:"citation,omitempty"`
	License        string   `json:"license,omitempty"`
	Sharing        Sharing  `json:"sharing"`
	Level          int      `json:"level"` // 1 (lowest) to 4
	Personal       bool     `json:"personal"`
	Location       string   `json:"location"`
	SHA256         string   `json:"sha256"`
	Rows           int64    `json:"rows"`
	Columns        []Column `json:"columns"`
	// UnitPerRow records that the catalog's privacy unit (its columns of
	// role privacy-unit, UnitColumns) is unique per row: no two rows share
	// a unit. It is computed from the data at registration (jobs), never
	// taken from the registrant; where it holds, each row is its own unit
	// and contribution bounding is clamping alone.
	UnitPerRow bool `json:"unit_per_row,omitempty"`
}

// UnitColumns are the columns that identify the dataset's privacy unit
// (role privacy-unit), in schema order; none when the catalog names no unit.
func (d Dataset) UnitColumns() []string {
	var cols []string
	for _, c := range d.Columns {
		if c.Role == PrivacyUnitRole {
			cols = append(cols, c.Name)
		}
	}
	return cols
}

// Validate checks a catalog entry before registration.
func (d Dataset) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: dataset %q: "+format, append([]any{cove.ErrInvalid, d.Name}, a...)...))
	}
	if !ValidName(d.Name) {
		bad("name must match %s", namePattern)
	}
	if d.Location == "" {
		bad("has no location")
	}
	if !slices.Contains(sharings, d.Sharing) {
		bad("sharing %q must be one of %v", d.Sharing, sharings)
	}
	if d.Level < 1 || d.Level > 4 {
		bad("level %d must be 1 to 4", d.Level)
	}
	if d.Domain != "" && !ValidName(d.Domain) {
		bad("domain %q must match %s", d.Domain, namePattern)
	}
	if len(d.Columns) == 0 {
		bad("has no columns")
	}
	seen := map[string]bool{}
	for _, c := range d.Columns {
		if c.Name == "" || seen[c.Name] {
			bad("empty or duplicate column name %q", c.Name)
		}
		seen[c.Name] = true
		if c.Role != "" && !slices.Contains(roles, c.Role) {
			bad("column %q has role %q, not one of %v", c.Name, c.Role, roles)
		}
		if firstDup(c.Domain) != "" {
			bad("column %q lists a domain value twice", c.Name)
		}
	}
	return errors.Join(errs...)
}

// HasColumn reports whether the dataset has a column of that name.
func (d Dataset) HasColumn(name string) bool {
	_, ok := d.Column(name)
	return ok
}

// Column returns the named column.
func (d Dataset) Column(name string) (Column, bool) {
	i := slices.IndexFunc(d.Columns, func(c Column) bool { return c.Name == name })
	if i < 0 {
		return Column{}, false
	}
	return d.Columns[i], true
}

// NeedsReview reports whether jobs on the dataset wait for the authority:
// conditional-sharing data and levels 3 and 4.
func (d Dataset) NeedsReview() bool { return d.Sharing == Conditional || d.Level >= 3 }

func firstDup(xs []string) string {
	seen := map[string]bool{}
	for _, x := range xs {
		if seen[x] {
			return x
		}
		seen[x] = true
	}
	return ""
}
