package report

import (
	"encoding/json"
	"fmt"
	"iter"
	"sort"
	"time"

	"github.com/covedata/cove/ledger"
)

// Grant is a grant as disclosed.
type Grant struct {
	ID         string     `json:"id"`
	Operator   string     `json:"operator"`
	Mode       string     `json:"mode"`
	Domain     string     `json:"domain,omitempty"`
	Datasets   []string   `json:"datasets,omitempty"`
	Purposes   []string   `json:"purposes"`
	Mechanisms []string   `json:"mechanisms"`
	Pricing    string     `json:"pricing"`
	ValidFrom  time.Time  `json:"valid_from"`
	ValidUntil time.Time  `json:"valid_until"`
	Created    time.Time  `json:"created"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Product is a release registered as a data product (art. 9, 27), with its
// lineage: the job, grant and dataset snapshot it came from.
type Product struct {
	ID            string    `json:"id"` // "P-" + the ledger sequence number of the release
	Job           string    `json:"job"`
	Operator      string    `json:"operator"`
	Grant         string    `json:"grant"`
	Dataset       string    `json:"dataset"`
	DatasetSHA256 string    `json:"dataset_sha256,omitempty"`
	Released      time.Time `json:"released"`
	Epsilon       float64   `json:"epsilon"`
	Delta         float64   `json:"delta"`
	Outputs       []Output  `json:"outputs"`
}

// Output describes one released aggregate without its values.
type Output struct {
	Name       string   `json:"name"`
	Aggregate  string   `json:"aggregate"`
	GroupBy    []string `json:"group_by"`
	Partitions int      `json:"partitions"`
	Mechanism  string   `json:"mechanism"`
	Epsilon    float64  `json:"epsilon"`
}

// Query is an operator's encrypted query (he.query) as disclosed: who
// asked what of which dataset and at what privacy cost, never the vector
// (the sandbox never holds it) nor the reply (only the operator opens it).
type Query struct {
	ID        string    `json:"id"` // "Q-" + the ledger sequence number
	Query     string    `json:"query"`
	Operator  string    `json:"operator"`
	Grant     string    `json:"grant"`
	Dataset   string    `json:"dataset"`
	Purpose   string    `json:"purpose"`
	Answered  time.Time `json:"answered"`
	Columns   []string  `json:"columns"`
	GroupBy   string    `json:"group_by"`
	Groups    int       `json:"groups"`
	Mechanism string    `json:"mechanism"`
	Epsilon   float64   `json:"epsilon"`
	Delta     float64   `json:"delta"`
}

// Usage is the resource use of one dataset.
type Usage struct {
	Dataset      string  `json:"dataset"`
	Jobs         int     `json:"jobs"` // jobs that ran (released or failed after starting)
	Releases     int     `json:"releases"`
	Queries      int     `json:"he_queries"` // encrypted operator queries answered
	Rejected     int     `json:"rejected"`
	Rows         int64   `json:"rows_read"`
	Bytes        int64   `json:"bytes_read"`
	GuestSeconds float64 `json:"guest_seconds"`
	Epsilon      float64 `json:"epsilon_spent"` // by releases and encrypted queries
}

// Disclosure is the art. 32 report.
type Disclosure struct {
	Generated time.Time   `json:"generated"`
	Ledger    ledger.Head `json:"ledger"`
	Datasets  []string    `json:"datasets"`
	Grants    []Grant     `json:"grants"`
	Products  []Product   `json:"products"`
	Queries   []Query     `json:"he_queries"`
	Usage     []Usage     `json:"usage"`
}

// jobInfo is what the ledger says of a job before it ends.
type jobInfo struct {
	Operator string  `json:"operator"`
	Grant    string  `json:"grant"`
	Dataset  string  `json:"dataset"`
	Epsilon  float64 `json:"epsilon"`
}

// metering mirrors jobs.Metering: the fields the reports read.
type metering struct {
	DatasetSHA256 string  `json:"dataset_sha256"`
	Rows          int64   `json:"rows"`
	Bytes         int64   `json:"bytes"`
	GuestSeconds  float64 `json:"guest_seconds"`
	WallSeconds   float64 `json:"wall_seconds"`
}

type releaseBody struct {
	Grant   string          `json:"grant"`
	Dataset string          `json:"dataset"`
	Epsilon float64         `json:"epsilon_debited"`
	Delta   float64         `json:"delta_debited"`
	Release json.RawMessage `json:"release"`
}

// heQueryBody mirrors store.HEQuery and the spec jobs records: the fields
// the reports read.
type heQueryBody struct {
	ID       string    `json:"id"`
	Operator string    `json:"operator"`
	Grant    string    `json:"grant"`
	Dataset  string    `json:"dataset"`
	Purpose  string    `json:"purpose"`
	Epsilon  float64   `json:"epsilon"`
	Delta    float64   `json:"delta"`
	Time     time.Time `json:"time"`
	Spec     struct {
		Columns   []string `json:"columns"`
		GroupBy   string   `json:"group_by"`
		Groups    []string `json:"groups"`
		Mechanism string   `json:"mechanism"`
	} `json:"spec"`
}

type releaseOutputs struct {
	Outputs []struct {
		Name      string            `json:"name"`
		Aggregate string            `json:"aggregate"`
		Mechanism string            `json:"mechanism"`
		Epsilon   float64           `json:"epsilon"`
		GroupBy   []string          `json:"group_by"`
		Rows      []json.RawMessage `json:"rows"`
		HE        *struct {
			Groups [][]string `json:"groups"`
		} `json:"he"`
	} `json:"outputs"`
}

// Run is one job's run as metered: the unit of statements.
type Run struct {
	Job      string
	Operator string
	Grant    string
	Dataset  string
	At       time.Time
	Released bool
	Metering metering
	Epsilon  float64
}

// state folds the ledger into what the reports need.
type state struct {
	head     ledger.Head
	datasets []string
	grants   map[string]*Grant
	order    []string
	jobs     map[string]jobInfo
	meters   map[string]metering
	products []Product
	queries  []Query
	runs     []Run
	rejected map[string]int
}

func fold(entries iter.Seq2[ledger.Entry, error]) (*state, error) {
	st := &state{grants: map[string]*Grant{}, jobs: map[string]jobInfo{}, meters: map[string]metering{}, rejected: map[string]int{}}
	for e, err := range entries {
		if err != nil {
			return nil, err
		}
		st.head = ledger.Head{Size: e.Seq}
		bad := func(err error) error { return fmt.Errorf("report: ledger entry %d (%s): %v", e.Seq, e.Kind, err) }
		switch e.Kind {
		case ledger.DatasetRegistered:
			st.datasets = append(st.datasets, e.Subject)
		case ledger.GrantCreated:
			var g Grant
			if err := json.Unmarshal(e.Body, &g); err != nil {
				return nil, bad(err)
			}
			g.Created = e.Time
			st.grants[g.ID] = &g
			st.order = append(st.order, g.ID)
		case ledger.GrantRevoked:
			if g, ok := st.grants[e.Subject]; ok {
				at := e.Time
				g.RevokedAt = &at
			}
		case ledger.JobSubmitted:
			var j jobInfo
			if err := json.Unmarshal(e.Body, &j); err != nil {
				return nil, bad(err)
			}
			st.jobs[e.Subject] = j
		case ledger.JobRejected:
			st.rejected[st.jobs[e.Subject].Dataset]++
		case ledger.JobRan:
			var m metering
			if err := json.Unmarshal(e.Body, &m); err != nil {
				return nil, bad(err)
			}
			st.meters[e.Subject] = m
		case ledger.JobFailed:
			var body struct {
				Metering *metering `json:"metering"`
			}
			if err := json.Unmarshal(e.Body, &body); err != nil {
				return nil, bad(err)
			}
			if body.Metering != nil && body.Metering.Rows > 0 {
				j := st.jobs[e.Subject]
				st.runs = append(st.runs, Run{Job: e.Subject, Operator: j.Operator, Grant: j.Grant, Dataset: j.Dataset, At: e.Time, Metering: *body.Metering})
			}
		case ledger.Released:
			var rb releaseBody
			if err := json.Unmarshal(e.Body, &rb); err != nil {
				return nil, bad(err)
			}
			var ro releaseOutputs
			if err := json.Unmarshal(rb.Release, &ro); err != nil {
				return nil, bad(err)
			}
			j := st.jobs[e.Subject]
			m := st.meters[e.Subject]
			p := Product{ID: fmt.Sprintf("P-%d", e.Seq), Job: e.Subject, Operator: j.Operator, Grant: rb.Grant, Dataset: rb.Dataset,
				DatasetSHA256: m.DatasetSHA256, Released: e.Time, Epsilon: rb.Epsilon, Delta: rb.Delta}
			for _, o := range ro.Outputs {
				n := len(o.Rows)
				if o.HE != nil {
					n = len(o.HE.Groups) // encrypted to the operator: groups, no rows
				}
				p.Outputs = append(p.Outputs, Output{Name: o.Name, Aggregate: o.Aggregate, GroupBy: o.GroupBy,
					Partitions: n, Mechanism: o.Mechanism, Epsilon: o.Epsilon})
			}
			st.products = append(st.products, p)
			st.runs = append(st.runs, Run{Job: e.Subject, Operator: j.Operator, Grant: rb.Grant, Dataset: rb.Dataset, At: e.Time,
				Released: true, Metering: m, Epsilon: rb.Epsilon})
		case ledger.HEQuery:
			var q heQueryBody
			if err := json.Unmarshal(e.Body, &q); err != nil {
				return nil, bad(err)
			}
			at := q.Time
			if at.IsZero() {
				at = e.Time
			}
			st.queries = append(st.queries, Query{ID: fmt.Sprintf("Q-%d", e.Seq), Query: e.Subject, Operator: q.Operator, Grant: q.Grant,
				Dataset: q.Dataset, Purpose: q.Purpose, Answered: at, Columns: q.Spec.Columns, GroupBy: q.Spec.GroupBy,
				Groups: len(q.Spec.Groups), Mechanism: q.Spec.Mechanism, Epsilon: q.Epsilon, Delta: q.Delta})
		}
	}
	return st, nil
}

// NewDisclosure builds the disclosure report from a ledger, read in order.
// head is the verified head of that ledger (it is shown on the report).
func NewDisclosure(entries iter.Seq2[ledger.Entry, error], head ledger.Head, now time.Time) (*Disclosure, error) {
	st, err := fold(entries)
	if err != nil {
		return nil, err
	}
	d := &Disclosure{Generated: now.UTC(), Ledger: head, Datasets: st.datasets, Products: st.products, Queries: st.queries}
	for _, id := range st.order {
		d.Grants = append(d.Grants, *st.grants[id])
	}
	usage := map[string]*Usage{}
	get := func(ds string) *Usage {
		if usage[ds] == nil {
			usage[ds] = &Usage{Dataset: ds}
		}
		return usage[ds]
	}
	for _, ds := range st.datasets {
		get(ds)
	}
	for _, r := range st.runs {
		u := get(r.Dataset)
		u.Jobs++
		u.Rows += r.Metering.Rows
		u.Bytes += r.Metering.Bytes
		u.GuestSeconds += r.Metering.GuestSeconds
		if r.Released {
			u.Releases++
			u.Epsilon += r.Epsilon
		}
	}
	for _, q := range st.queries {
		u := get(q.Dataset)
		u.Queries++
		u.Epsilon += q.Epsilon
	}
	for ds, n := range st.rejected {
		if ds != "" {
			get(ds).Rejected += n
		}
	}
	for _, u := range usage {
		d.Usage = append(d.Usage, *u)
	}
	sort.Slice(d.Usage, func(i, j int) bool { return d.Usage[i].Dataset < d.Usage[j].Dataset })
	return d, nil
}
