package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave"
	"github.com/covedata/cove/plan"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/store"
)

// A plan-mode job's plan is built without data, at submission: from the
// manifest (its plan section and its outputs' value, where and group_by),
// or from the module's planning call, which sees the schema only. It is
// compiled against the catalog's schema — every problem reported at once —
// and recorded in canonical form with the job; execution compiles the
// recorded plan again and runs that, never a new planning call.

// schemaFields are the catalog's columns as the plan compiler sees them.
func schemaFields(d policy.Dataset) []plan.Field {
	f := make([]plan.Field, 0, len(d.Columns))
	for _, c := range d.Columns {
		if c.Role == policy.DirectIdentifier {
			continue // never readable by a job; the plan cannot name it
		}
		f = append(f, plan.Field{Name: c.Name, Type: c.Type})
	}
	return f
}

// outputSpecs says what the manifest declares of each output, for the plan
// compiler.
func (m *Manifest) outputSpecs() []plan.OutputSpec {
	out := make([]plan.OutputSpec, len(m.lit.Outputs))
	for i, o := range m.lit.Outputs {
		uses := o.Aggregate != string(enclave.Count)
		if m.lit.Mechanism == policy.MechanismHE {
			// HE weights: 1 per row in its group, but for a weighted sum
			// the plan's value.
			uses = o.Aggregate == "weighted_sum"
		}
		s := plan.OutputSpec{Name: o.Name, Aggregate: o.Aggregate, UsesValue: uses}
		for _, g := range o.GroupBy {
			s.GroupBy = append(s.GroupBy, plan.GroupSpec{Values: g.Values, Private: o.Partitions == "private"})
		}
		out[i] = s
	}
	return out
}

// manifestPlan is the plan a manifest writes itself, and the expressions
// that do not parse. Each of those is replaced by a null of the type its
// place wants, so that compiling the rest reports its problems too.
func (m *Manifest) manifestPlan() (plan.Literal, error) {
	lit := plan.Literal{Version: 1}
	var errs []error
	parse := func(where, text, placeholder string) *plan.Expr {
		if text == "" {
			return nil
		}
		e, err := plan.ParseExpr(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: manifest: %s: %w", cove.ErrInvalid, where, err))
			return &plan.Expr{Null: &placeholder}
		}
		return &e
	}
	if p := m.lit.Plan; p != nil {
		lit.Where = parse("plan.where", p.Where, "bool")
		for i, d := range p.Derive {
			e := parse(fmt.Sprintf("plan.derive[%d] (%s)", i, d.Name), d.Expr, "")
			lit.Derive = append(lit.Derive, plan.Derived{Name: d.Name, Expr: *e})
		}
	}
	for i, o := range m.lit.Outputs {
		at := fmt.Sprintf("outputs[%d] (%s)", i, o.Name)
		po := plan.Output{Name: o.Name, Where: parse(at+".where", o.Where, "bool"), Value: parse(at+".value", o.Value, "float64"), GroupBy: []plan.Expr{}}
		for j, g := range o.GroupBy {
			if g.Column != "" {
				c := g.Column
				po.GroupBy = append(po.GroupBy, plan.Expr{Col: &c})
			} else {
				po.GroupBy = append(po.GroupBy, *parse(fmt.Sprintf("%s.group_by[%d]", at, j), g.Expr, "string"))
			}
		}
		lit.Outputs = append(lit.Outputs, po)
	}
	return lit, errors.Join(errs...)
}

// jobPlan builds and compiles a plan-mode job's plan: the manifest's, or
// the one the module's planning call returns when the submission carries a
// module.
func (r *Runner) jobPlan(ctx context.Context, m *Manifest, d policy.Dataset, hash string, module moduleBytes) (*plan.Plan, error) {
	var lit plan.Literal
	var parseErr error
	if hash == "" {
		lit, parseErr = m.manifestPlan()
	} else {
		if m.hasPlan() {
			return nil, fmt.Errorf("%w: manifest: mode plan takes the plan from the manifest or from the module's planning call, not both: drop the module or the manifest's plan, value, where and group_by expr", cove.ErrInvalid)
		}
		mod, done, err := r.modules.get(ctx, r.engine, hash, module)
		if err != nil {
			return nil, err
		}
		defer done()
		b, err := mod.Plan(ctx, arrowSchema(d), m.OutputNames())
		if err != nil {
			return nil, fmt.Errorf("planning call: %w", err)
		}
		if lit, err = plan.Decode(b); err != nil {
			return nil, fmt.Errorf("the module's plan: %w", err)
		}
	}
	p, err := plan.Compile(lit, schemaFields(d), m.outputSpecs())
	if err := errors.Join(parseErr, err); err != nil {
		return nil, err
	}
	if cols := m.lit.Columns; len(cols) > 0 {
		for _, c := range p.Columns() {
			if !slices.Contains(cols, c) {
				return nil, fmt.Errorf("%w: plan: reads column %q, which the manifest's columns (%s) do not list", cove.ErrInvalid, c, strings.Join(cols, ", "))
			}
		}
	}
	return p, nil
}

// storedPlan compiles the plan a job was admitted with.
func (r *Runner) storedPlan(ctx context.Context, job store.Job, m *Manifest, d policy.Dataset) (*plan.Plan, error) {
	b, err := r.store.JobPlan(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: job %s has no recorded plan", cove.ErrInvalid, job.ID)
	}
	lit, err := plan.Decode(b)
	if err != nil {
		return nil, err
	}
	p, err := plan.Compile(lit, schemaFields(d), m.outputSpecs())
	if err != nil {
		return nil, err
	}
	if p.SHA256() != job.PlanSHA256 {
		return nil, fmt.Errorf("%w: job %s: its plan compiles to another plan than it was admitted with", cove.ErrInvalid, job.ID)
	}
	return p, nil
}

// arrowSchema is the catalog's schema as Arrow types, for the planning
// call's schema region: the types the ABI carries; a column of another
// type is left out (the guest could not use it).
func arrowSchema(d policy.Dataset) *arrow.Schema {
	var fields []arrow.Field
	for _, c := range d.Columns {
		if c.Role == policy.DirectIdentifier {
			continue
		}
		if t := arrowType(c.Type); t != nil {
			fields = append(fields, arrow.Field{Name: c.Name, Type: t, Nullable: true})
		}
	}
	return arrow.NewSchema(fields, nil)
}

// arrowType parses the type strings the catalog stores (what
// arrow.DataType.String writes) for the types of ABI v1.
func arrowType(s string) arrow.DataType {
	switch s {
	case "int64":
		return arrow.PrimitiveTypes.Int64
	case "int32", "int16", "int8", "uint16", "uint8":
		return arrow.PrimitiveTypes.Int32
	case "float64", "double", "float32", "float":
		return arrow.PrimitiveTypes.Float64
	case "utf8", "string", "large_utf8":
		return arrow.BinaryTypes.String
	case "bool":
		return arrow.FixedWidthTypes.Boolean
	case "date32":
		return arrow.FixedWidthTypes.Date32
	case "date64":
		return arrow.FixedWidthTypes.Date64
	}
	switch {
	case strings.HasPrefix(s, "dictionary<values=utf8") || strings.HasPrefix(s, "dictionary<values=string"):
		return &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	case strings.HasPrefix(s, "timestamp[s"):
		return arrow.FixedWidthTypes.Timestamp_s
	case strings.HasPrefix(s, "timestamp[ms"):
		return arrow.FixedWidthTypes.Timestamp_ms
	case strings.HasPrefix(s, "timestamp[us"):
		return arrow.FixedWidthTypes.Timestamp_us
	case strings.HasPrefix(s, "timestamp[ns"):
		return arrow.FixedWidthTypes.Timestamp_ns
	}
	return nil
}
