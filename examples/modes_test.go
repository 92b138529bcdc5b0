package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"go.yaml.in/yaml/v3"

	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/examples"
)

// manifest is the part of the manifest schema (issue 11) the examples use,
// decoded strictly so that a misspelt field fails here.
type manifest struct {
	Version     int      `yaml:"version"`
	Name        string   `yaml:"name"`
	Grant       string   `yaml:"grant"`
	Purpose     string   `yaml:"purpose"`
	Dataset     string   `yaml:"dataset"`
	Mode        string   `yaml:"mode"`
	Columns     []string `yaml:"columns"`
	PrivacyUnit struct {
		Columns []string `yaml:"columns"`
		PerRow  bool     `yaml:"per_row"`
	} `yaml:"privacy_unit"`
	Guest struct {
		MemoryMiB int `yaml:"memory_mib"`
		CPUms     int `yaml:"cpu_ms"`
	} `yaml:"guest"`
	Blocks         int     `yaml:"blocks"`
	FailureEpsilon float64 `yaml:"failure_epsilon"`
	Outputs        []struct {
		Name             string      `yaml:"name"`
		Aggregate        string      `yaml:"aggregate"`
		Epsilon          float64     `yaml:"epsilon"`
		Bounds           []float64   `yaml:"bounds"`
		CoordinateBounds [][]float64 `yaml:"coordinate_bounds"`
		MaxPartitions    int         `yaml:"max_partitions"`
		MaxContributions int         `yaml:"max_contributions"`
		Dimension        int         `yaml:"dimension"`
		Labels           []string    `yaml:"labels"`
		Default          []float64   `yaml:"default"`
		GroupBy          []struct {
			Column string   `yaml:"column"`
			Name   string   `yaml:"name"`
			Values []string `yaml:"values"`
		} `yaml:"group_by"`
	} `yaml:"outputs"`
}

func parseManifest(t *testing.T, job examples.Job) manifest {
	t.Helper()
	var m manifest
	dec := yaml.NewDecoder(bytes.NewReader(job.Manifest))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s/manifest.yaml: %v", job.Name, err)
	}
	return m
}

func (m manifest) outputNames() []string {
	var names []string
	for _, o := range m.Outputs {
		names = append(names, o.Name)
	}
	return names
}

// readDataset reads the named columns of an embedded dataset (all of them
// when none is named).
func readDataset(t *testing.T, dataset string, names ...string) []column {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	b, err := demodata.Open(dataset)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, mem)
	if err != nil {
		t.Fatal(err)
	}
	sc := pf.MetaData().Schema
	if len(names) == 0 {
		for i := range sc.NumColumns() {
			names = append(names, sc.Column(i).Name())
		}
	}
	idx := make([]int, len(names))
	for i, n := range names {
		if idx[i] = sc.ColumnIndexByName(n); idx[i] < 0 {
			t.Fatalf("%s has no column %q", dataset, n)
		}
	}
	rr, err := fr.GetRecordReader(context.Background(), idx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	cols := make([]column, len(names))
	for i, n := range names {
		cols[i].name = n
	}
	for rr.Next() {
		rec := rr.RecordBatch()
		for i, n := range names {
			c := &cols[i]
			a := rec.Column(rec.Schema().FieldIndices(n)[0])
			switch a := a.(type) {
			case *array.Int64:
				c.typ, c.ints = 1, append(c.ints, a.Int64Values()...)
			case *array.Float64:
				c.typ, c.floats = 3, append(c.floats, a.Float64Values()...)
			case *array.String:
				c.typ = 4
				for r := range a.Len() {
					c.strs = append(c.strs, strings.Clone(a.Value(r)))
				}
			default:
				t.Fatalf("column %s is %s", n, a.DataType())
			}
			if a.NullN() > 0 || c.valid != nil {
				for len(c.valid) < c.len()-a.Len() {
					c.valid = append(c.valid, true)
				}
				for r := range a.Len() {
					c.valid = append(c.valid, a.IsValid(r))
				}
			}
		}
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	return cols
}

// readSchema is an embedded dataset's columns, names and types only.
func readSchema(t *testing.T, dataset string) []column {
	t.Helper()
	b, err := demodata.Open(dataset)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	sc, err := pqarrow.FromParquet(pf.MetaData().Schema, nil, pf.MetaData().KeyValueMetadata())
	if err != nil {
		t.Fatal(err)
	}
	var cols []column
	for _, f := range sc.Fields() {
		code := map[arrow.Type]uint32{arrow.INT64: 1, arrow.FLOAT64: 3, arrow.STRING: 4}[f.Type.ID()]
		if code == 0 {
			t.Fatalf("%s: column %s is %s", dataset, f.Name, f.Type)
		}
		cols = append(cols, column{name: f.Name, typ: code})
	}
	return cols
}

// TestGoPlans: the committed Go modules' planning calls give the plans in
// <job>/plan.golden.json (the same bytes PlanLocal gives in the jobs' own
// tests), and each plan fits its manifest.
func TestGoPlans(t *testing.T) {
	for _, job := range examples.All() {
		t.Run(job.Name, func(t *testing.T) {
			m := parseManifest(t, job)
			if m.Mode != "" && m.Mode != "plan" {
				t.Fatalf("mode %q, want plan (omitted)", m.Mode)
			}
			var schema []column
			for _, c := range readSchema(t, m.Dataset) {
				if slices.Contains(m.Columns, c.name) {
					schema = append(schema, c)
				}
			}
			reg, _ := region(schema, true)
			call := newTestHost(t, job.Module, m.outputNames()).run(t, "cove_plan", reg, 0)
			if call.failure != "" {
				t.Fatal(call.failure)
			}
			want, err := os.ReadFile(job.Name + "/plan.golden.json")
			if err != nil {
				t.Fatal(err)
			}
			if got := string(call.plan); got != strings.TrimSpace(string(want)) {
				t.Errorf("plan\n%s\nwant (%s/plan.golden.json)\n%s", got, job.Name, want)
			}
			var p struct {
				Version int
				Outputs []struct {
					Name    string
					GroupBy []json.RawMessage `json:"group_by"`
				}
			}
			if err := json.Unmarshal(call.plan, &p); err != nil || p.Version != 1 {
				t.Fatalf("plan %s: %v", call.plan, err)
			}
			for _, o := range p.Outputs {
				i := slices.Index(m.outputNames(), o.Name)
				if i < 0 {
					t.Errorf("plan output %q is not in the manifest", o.Name)
					continue
				}
				if len(o.GroupBy) != len(m.Outputs[i].GroupBy) {
					t.Errorf("output %s: %d group_by parts in the plan, %d in the manifest", o.Name, len(o.GroupBy), len(m.Outputs[i].GroupBy))
				}
			}
			for _, col := range planColumns(call.plan) {
				if !slices.Contains(m.Columns, col) {
					t.Errorf("the plan reads %q, which the manifest's columns do not list", col)
				}
			}
			if len(p.Outputs) != len(m.Outputs) {
				t.Errorf("%d outputs in the plan, %d in the manifest", len(p.Outputs), len(m.Outputs))
			}
		})
	}
}

// planColumns lists the columns a plan's JSON refers to.
func planColumns(js []byte) []string {
	var cols []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if c, ok := v["col"].(string); ok && !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var v any
	_ = json.Unmarshal(js, &v)
	walk(v)
	return cols
}

// units splits rows (ordered by unit, as the dataset is) into the runs of
// rows sharing the values of unitCols: [bounds[i], bounds[i+1]).
func units(t *testing.T, cols []column, unitCols []string) []int {
	t.Helper()
	var key func(r int) string
	parts := make([]column, len(unitCols))
	for i, n := range unitCols {
		j := slices.IndexFunc(cols, func(c column) bool { return c.name == n })
		if j < 0 {
			t.Fatalf("unit column %s not read", n)
		}
		parts[i] = cols[j]
	}
	key = func(r int) string {
		var b strings.Builder
		for _, c := range parts {
			if c.typ == 4 {
				b.WriteString(c.strs[r])
			} else {
				b.WriteString(strconv.FormatInt(c.ints[r], 10))
			}
			b.WriteByte(0x1f)
		}
		return b.String()
	}
	seen := map[string]bool{}
	bounds := []int{0}
	n := cols[0].len()
	for r := 1; r <= n; r++ {
		if r == n || key(r) != key(r-1) {
			k := key(r - 1)
			if seen[k] {
				t.Fatalf("unit %q is not contiguous", k)
			}
			seen[k] = true
			bounds = append(bounds, r)
		}
	}
	return bounds
}

func pick(cols []column, names ...string) []column {
	var out []column
	for _, n := range names {
		for _, c := range cols {
			if c.name == n {
				out = append(out, c)
			}
		}
	}
	return out
}

// TestPM25Days runs the per-unit C job over every station-day of the data,
// each on a fresh instance as unit mode does, and compares its counts with
// the same computation in Go.
func TestPM25Days(t *testing.T) {
	job := examples.PM25Days()
	m := parseManifest(t, job)
	if m.Mode != "unit" || len(m.Outputs) != 1 || m.Outputs[0].MaxContributions != 1 {
		t.Fatalf("manifest: mode %q, outputs %+v", m.Mode, m.Outputs)
	}
	cols := readDataset(t, m.Dataset, m.Columns...)
	bounds := units(t, cols, m.PrivacyUnit.Columns)
	if testing.Short() {
		bounds = bounds[:366]
	}
	station, year, pm := pick(cols, "station")[0], pick(cols, "year")[0], pick(cols, "PM2.5")[0]
	public := m.Outputs[0].GroupBy
	h := newTestHost(t, job.Module, m.outputNames())
	want, got := map[string]int{}, map[string]int{}
	for u := 0; u+1 < len(bounds); u++ {
		from, to := bounds[u], bounds[u+1]
		sum, n := 0.0, 0
		for r := from; r < to; r++ {
			if pm.valid == nil || pm.valid[r] {
				sum += pm.floats[r]
				n++
			}
		}
		if n >= 18 {
			want[station.strs[from]+"\x1f"+strconv.FormatInt(year.ints[from], 10)+"\x1f"+category(sum/float64(n))]++
		}
		var unit []column
		for _, c := range cols {
			unit = append(unit, c.slice(from, to))
		}
		reg, rows := region(unit, false)
		call := h.run(t, "cove_batch", reg, rows)
		if call.failure != "" {
			t.Fatalf("unit %d: %s", u, call.failure)
		}
		if len(call.emits) > 1 {
			t.Fatalf("unit %d made %d contributions", u, len(call.emits))
		}
		for _, e := range call.emits {
			parts := strings.Split(e.key, "\x1f")
			if e.value != 1 || len(parts) != len(public) {
				t.Fatalf("unit %d: contribution %+v", u, e)
			}
			for i, p := range parts {
				if !slices.Contains(public[i].Values, p) {
					t.Fatalf("unit %d: key part %q is not a public value of %s", u, p, public[i].Column)
				}
			}
			got[e.key]++
		}
	}
	if len(want) == 0 {
		t.Fatal("no day counted")
	}
	byCategory, days := map[string]int{}, 0
	for k, n := range got {
		byCategory[k[strings.LastIndexByte(k, 0x1f)+1:]] += n
		days += n
	}
	t.Logf("%d of %d station-days counted: %v", days, len(bounds)-1, byCategory)
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%q: guest counted %d days, want %d", k, got[k], n)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%q: guest counted %d days, want none", k, got[k])
		}
	}
}

func category(mean float64) string {
	switch {
	case mean <= 35:
		return "excellent"
	case mean <= 75:
		return "good"
	case mean <= 115:
		return "lightly-polluted"
	case mean <= 150:
		return "moderately-polluted"
	case mean <= 250:
		return "heavily-polluted"
	}
	return "severely-polluted"
}

// TestPM25Regress runs the block C job over k blocks of station-days, each
// on a fresh instance as block mode does, and compares every block's
// coefficients with a least-squares fit in Go; the manifest's bounds must
// hold every block's coefficients.
func TestPM25Regress(t *testing.T) {
	job := examples.PM25Regress()
	m := parseManifest(t, job)
	if m.Mode != "block" || m.Blocks < 2 || len(m.Outputs) != 1 || m.Outputs[0].Dimension != 4 {
		t.Fatalf("manifest: mode %q, blocks %d, outputs %+v", m.Mode, m.Blocks, m.Outputs)
	}
	out := m.Outputs[0]
	if len(out.Labels) != 4 || len(out.Default) != 4 || len(out.CoordinateBounds) != 4 {
		t.Fatalf("output %+v: labels, default and coordinate bounds", out)
	}
	cols := readDataset(t, m.Dataset, append(slices.Clone(m.PrivacyUnit.Columns), m.Columns...)...)
	bounds := units(t, cols, m.PrivacyUnit.Columns)
	// The host assigns units to blocks by a keyed hash; any hash will do here.
	blockOf := make([][]int, m.Blocks) // rows of each block
	for u := 0; u+1 < len(bounds); u++ {
		h := fnv.New32a()
		for _, c := range pick(cols, m.PrivacyUnit.Columns...) {
			if c.typ == 4 {
				h.Write([]byte(c.strs[bounds[u]]))
			} else {
				h.Write(strconv.AppendInt(nil, c.ints[bounds[u]], 10))
			}
			h.Write([]byte{0x1f})
		}
		b := int(h.Sum32() % uint32(m.Blocks))
		for r := bounds[u]; r < bounds[u+1]; r++ {
			blockOf[b] = append(blockOf[b], r)
		}
	}
	if testing.Short() {
		blockOf = blockOf[:10]
	}
	data := pick(cols, m.Columns...)
	h := newTestHost(t, job.Module, m.outputNames())
	var mean, lo, hi [4]float64
	outside := 0
	lo, hi = [4]float64{math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)}, [4]float64{math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	for b, rows := range blockOf {
		block := make([]column, len(data))
		for i, c := range data {
			block[i] = column{name: c.name, typ: c.typ, valid: []bool{}}
			for _, r := range rows {
				block[i].floats = append(block[i].floats, c.floats[r])
				block[i].valid = append(block[i].valid, c.valid == nil || c.valid[r])
			}
		}
		reg, n := region(block, false)
		call := h.run(t, "cove_batch", reg, n)
		if call.failure != "" {
			t.Fatalf("block %d: %s", b, call.failure)
		}
		got, want := call.results[out.Name], ols(block)
		if len(got) != 4 {
			t.Fatalf("block %d: result %v", b, got)
		}
		for j := range got {
			if math.Abs(got[j]-want[j]) > 1e-6*math.Max(1, math.Abs(want[j])) {
				t.Errorf("block %d, %s: guest %g, Go %g", b, out.Labels[j], got[j], want[j])
			}
			if b := out.CoordinateBounds[j]; got[j] < b[0] || got[j] > b[1] {
				outside++ // clamped by the host: fine now and then, not often
			}
			mean[j] += got[j] / float64(len(blockOf))
			lo[j], hi[j] = min(lo[j], got[j]), max(hi[j], got[j])
		}
	}
	t.Logf("mean over %d blocks: %v = %.3f; min %.3f, max %.3f; %d coefficients outside their bounds", len(blockOf), out.Labels, mean, lo, hi, outside)
	if outside*20 > 4*len(blockOf) {
		t.Errorf("%d of %d coefficients outside the manifest's coordinate bounds: the bounds are too tight", outside, 4*len(blockOf))
	}
}

// ols fits cols[0] on cols[1:] with an intercept over the rows with no
// null, by Gaussian elimination with partial pivoting on the (uncentred)
// normal equations.
func ols(cols []column) []float64 {
	const p = 4
	var a [p][p + 1]float64
	for r := range cols[0].floats {
		x := [p]float64{1}
		ok := true
		for j, c := range cols {
			ok = ok && c.valid[r]
			if j > 0 {
				x[j] = c.floats[r]
			}
		}
		if !ok {
			continue
		}
		for i := range p {
			for j := range p {
				a[i][j] += x[i] * x[j]
			}
			a[i][p] += x[i] * cols[0].floats[r]
		}
	}
	for k := range p {
		piv := k
		for i := k + 1; i < p; i++ {
			if math.Abs(a[i][k]) > math.Abs(a[piv][k]) {
				piv = i
			}
		}
		a[k], a[piv] = a[piv], a[k]
		for i := k + 1; i < p; i++ {
			f := a[i][k] / a[k][k]
			for j := k; j <= p; j++ {
				a[i][j] -= f * a[k][j]
			}
		}
	}
	x := make([]float64, p)
	for i := p - 1; i >= 0; i-- {
		s := a[i][p]
		for j := i + 1; j < p; j++ {
			s -= a[i][j] * x[j]
		}
		x[i] = s / a[i][i]
	}
	return x
}
