package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/covedata/cove/ledger"
)

var t0 = time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)

// ledgerOf builds a log: two grants (one public-welfare, one industry, the
// second revoked), three released jobs, one failed after running, one rejected.
func ledgerOf(t *testing.T) []ledger.Entry {
	t.Helper()
	var es []ledger.Entry
	add := func(at time.Time, kind ledger.Kind, subject string, body any) {
		e, err := ledger.New(uint64(len(es)+1), at, kind, subject, body)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	add(t0, ledger.DatasetRegistered, "air", map[string]any{"name": "air"})
	add(t0, ledger.GrantCreated, "g-pw", map[string]any{"id": "g-pw", "operator": "city-lab", "mode": "scenario", "datasets": []string{"air"},
		"purposes": []string{"public-research"}, "mechanisms": []string{"dp"}, "pricing": "public-welfare",
		"valid_from": t0, "valid_until": t0.AddDate(0, 3, 0)})
	add(t0, ledger.GrantCreated, "g-ind", map[string]any{"id": "g-ind", "operator": "acme", "mode": "domain", "domain": "environment",
		"purposes": []string{"product"}, "mechanisms": []string{"dp"}, "pricing": "industry",
		"valid_from": t0, "valid_until": t0.AddDate(1, 0, 0)})
	job := func(id, op, grant string, at time.Time, rows int64, released bool) {
		add(at, ledger.JobSubmitted, id, map[string]any{"id": id, "operator": op, "grant": grant, "dataset": "air", "epsilon": 0.5})
		m := map[string]any{"dataset_sha256": "abc", "rows": rows, "bytes": rows * 10, "guest_seconds": 36.0, "wall_seconds": 40.0}
		if !released {
			add(at, ledger.JobFailed, id, map[string]any{"reason": "guest trapped", "metering": m})
			return
		}
		add(at, ledger.JobRan, id, m)
		rel, _ := json.Marshal(map[string]any{"outputs": []map[string]any{{"name": "pm25_mean", "aggregate": "mean", "mechanism": "laplace",
			"epsilon": 0.5, "group_by": []string{"station"}, "rows": []map[string]any{{"key": []string{"A"}, "value": 81.2}, {"key": []string{"B"}, "value": 70.1}}}}})
		add(at, ledger.Released, id, map[string]any{"grant": grant, "dataset": "air", "epsilon_debited": 0.5, "release": json.RawMessage(rel)})
	}
	job("j1", "city-lab", "g-pw", t0.Add(time.Hour), 1_000_000, true)
	job("j2", "city-lab", "g-pw", t0.Add(2*time.Hour), 2_000_000, true)
	job("j3", "acme", "g-ind", t0.Add(3*time.Hour), 4_000_000, true)
	job("j4", "acme", "g-ind", t0.Add(4*time.Hour), 1_000_000, false)
	add(t0.Add(5*time.Hour), ledger.JobSubmitted, "j5", map[string]any{"id": "j5", "operator": "acme", "grant": "g-ind", "dataset": "air"})
	add(t0.Add(5*time.Hour), ledger.JobRejected, "j5", map[string]any{"violations": []any{}})
	add(t0.Add(6*time.Hour), ledger.GrantRevoked, "g-ind", map[string]any{"reason": "breach"})
	add(t0.AddDate(0, 1, 0), ledger.JobSubmitted, "j6", map[string]any{"id": "j6", "operator": "acme", "grant": "g-pw", "dataset": "air"})
	return es
}

func TestDisclosure(t *testing.T) {
	es := ledgerOf(t)
	d, err := NewDisclosure(ledger.Slice(es), ledger.Head{Size: uint64(len(es))}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Grants) != 2 || d.Grants[1].RevokedAt == nil || d.Grants[0].RevokedAt != nil {
		t.Fatalf("grants %+v", d.Grants)
	}
	if len(d.Products) != 3 || d.Products[2].Operator != "acme" || d.Products[0].Outputs[0].Partitions != 2 {
		t.Fatalf("products %+v", d.Products)
	}
	u := d.Usage[0]
	if u.Dataset != "air" || u.Jobs != 4 || u.Releases != 3 || u.Rejected != 1 || u.Rows != 8_000_000 || u.Epsilon != 1.5 {
		t.Fatalf("usage %+v", u)
	}
	var html bytes.Buffer
	if err := d.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"g-pw", "g-ind", "revoked", "P-", "pm25_mean", "public-welfare"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// Products are disclosed without their values.
	if strings.Contains(html.String(), "81.2") {
		t.Error("HTML shows a released value")
	}
}

func TestStatements(t *testing.T) {
	es := ledgerOf(t)
	p := DefaultPrices
	p.FreeJobsPerMonth = 1
	sts, err := Statements(ledger.Slice(es), p, "2026-11", "", t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 2 {
		t.Fatalf("%d statements", len(sts))
	}
	acme, lab := sts[0], sts[1]
	// acme (industry): j3 released, j4 failed but ran: both charged in full.
	full := func(rows float64, eps float64) float64 {
		return p.PerJob + p.PerMillionRows*rows + p.PerGuestCPUHour*0.01 + p.PerEpsilon*eps
	}
	if want := full(4, 0.5) + full(1, 0); acme.Operator != "acme" || acme.Jobs != 2 || abs(acme.Total-want) > 0.011 {
		t.Errorf("acme %+v, want total %.2f", acme, want)
	}
	// city-lab (public welfare, one free job a month): j1 free, j2 at cost recovery.
	if want := full(2, 0.5) * p.CostRecovery; !lab.Lines[0].Free || lab.Lines[1].Free || abs(lab.Total-want) > 0.011 {
		t.Errorf("city-lab %+v, want total %.2f", lab, want)
	}
	if sts, _ := Statements(ledger.Slice(es), p, "2026-12", "", t0); len(sts) != 0 {
		t.Errorf("december: %+v", sts)
	}
	if _, err := Statements(ledger.Slice(es), p, "Nov", "", t0); err == nil {
		t.Error("bad month accepted")
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestDisclosureHEQueries: an answered encrypted query (he.query, as the
// store logs it) is disclosed with its dataset, operator, privacy cost,
// mechanism and group count, and counted in the dataset's use, without the
// hashes of the query or reply.
func TestDisclosureHEQueries(t *testing.T) {
	es := ledgerOf(t)
	at := t0.Add(7 * time.Hour)
	e, err := ledger.New(uint64(len(es)+1), at, ledger.HEQuery, "q-7", map[string]any{
		"id": "q-7", "operator": "city-lab", "grant": "g-pw", "dataset": "air", "purpose": "public-research",
		"spec": map[string]any{"columns": []string{"temp", "humidity"}, "bounds": [][2]float64{{-10, 40}, {0, 100}},
			"group_by": "station", "groups": []string{"A", "B", "C"}, "mechanism": "gaussian", "l0": 2, "linf": []float64{50, 100}},
		"request_sha256": "aa11", "query_sha256": "bb22", "reply_sha256": "cc33",
		"epsilon": 0.25, "delta": 1e-6, "period": t0.Format(time.RFC3339), "time": at})
	if err != nil {
		t.Fatal(err)
	}
	es = append(es, e)
	d, err := NewDisclosure(ledger.Slice(es), ledger.Head{Size: uint64(len(es))}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Queries) != 1 {
		t.Fatalf("queries %+v", d.Queries)
	}
	q := d.Queries[0]
	if q.Query != "q-7" || q.Operator != "city-lab" || q.Dataset != "air" || q.Groups != 3 || q.Mechanism != "gaussian" ||
		q.Epsilon != 0.25 || q.Delta != 1e-6 || !q.Answered.Equal(at) || q.GroupBy != "station" || len(q.Columns) != 2 {
		t.Fatalf("query %+v", q)
	}
	if u := d.Usage[0]; u.Queries != 1 || u.Releases != 3 || u.Epsilon != 1.75 {
		t.Fatalf("usage %+v", u)
	}
	var html bytes.Buffer
	if err := d.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"q-7", "city-lab", "temp, humidity by station (3 groups)", "gaussian", "0.25"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, no := range []string{"aa11", "bb22", "cc33"} {
		if strings.Contains(html.String(), no) {
			t.Errorf("HTML shows %q", no)
		}
	}
	// Statements do not price queries yet: the same as without the entry.
	with, err := Statements(ledger.Slice(es), DefaultPrices, "2026-11", "", t0)
	if err != nil {
		t.Fatal(err)
	}
	without, _ := Statements(ledger.Slice(es[:len(es)-1]), DefaultPrices, "2026-11", "", t0)
	if len(with) != len(without) || with[1].Total != without[1].Total {
		t.Errorf("statements changed by a query: %+v vs %+v", with, without)
	}
}
