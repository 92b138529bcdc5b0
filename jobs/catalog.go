package jobs

import (
	"context"
	"fmt"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/policy"
)

// maxUnitCheckRows bounds the rows RegisterDataset reads to tell whether
// the privacy unit is unique per row (a set of 8-byte hashes per row).
const maxUnitCheckRows = 1 << 28

// RegisterDataset enters d in the catalog after checking what the catalog
// records about its data: when d names a privacy unit (columns of role
// privacy-unit), whether that unit is unique per row (UnitPerRow), read
// from the data itself, never taken from the registrant. Where it is, each
// row is its own unit and jobs bound contributions by clamping alone.
func (r *Runner) RegisterDataset(ctx context.Context, d policy.Dataset) error {
	d.UnitPerRow = false
	if unit := d.UnitColumns(); len(unit) > 0 && d.Location != "" {
		if err := d.Validate(); err != nil {
			return err
		}
		unique, rows, err := r.unitUnique(ctx, d, unit)
		if err != nil {
			return err
		}
		d.UnitPerRow = unique
		if d.Rows <= 0 {
			d.Rows = rows
		}
	}
	return r.store.RegisterDataset(ctx, d)
}

// unitUnique reads the unit columns and reports whether no two rows share a
// unit. It compares keyed 64-bit hashes: equal units always collide, so a
// "unique" answer is never wrong; a rare hash collision of two different
// units only makes the answer "not unique", which costs utility, not
// privacy.
func (r *Runner) unitUnique(ctx context.Context, d policy.Dataset, unit []string) (bool, int64, error) {
	rd, err := connectors.Open(ctx, r.location(d), connectors.Options{Columns: unit, BatchRows: r.cfg.batchRows, Allocator: r.cfg.alloc, S3: r.cfg.s3})
	if err != nil {
		return false, 0, err
	}
	defer rd.Release()
	h := newUnitHasher()
	seen := map[uint64]struct{}{}
	unique := true
	var rows int64
	for rd.Next() {
		rec := rd.RecordBatch()
		ids, err := h.ids(rec, unit)
		if err != nil {
			return false, 0, err
		}
		rows += rec.NumRows()
		if rows > maxUnitCheckRows {
			return false, 0, fmt.Errorf("%w: dataset %s: more than %d rows to check its privacy unit", cove.ErrLimit, d.Name, maxUnitCheckRows)
		}
		if !unique {
			continue // keep counting rows
		}
		for _, id := range ids {
			if _, dup := seen[id]; dup {
				unique = false
				seen = nil
				break
			}
			seen[id] = struct{}{}
		}
	}
	if err := rd.Err(); err != nil {
		return false, 0, err
	}
	return unique, rows, nil
}
