package report

import (
	"fmt"
	"iter"
	"math"
	"sort"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
)

// Prices is the guided price schedule (art. 21, 22). Industry use pays every
// line; public-welfare use is free while an operator stays within
// FreeJobsPerMonth jobs a month, and pays CostRecovery × the industry price
// for jobs beyond it.
type Prices struct {
	Currency         string  `json:"currency"`
	PerJob           float64 `json:"per_job"`
	PerMillionRows   float64 `json:"per_million_rows"`
	PerGuestCPUHour  float64 `json:"per_guest_cpu_hour"`
	PerEpsilon       float64 `json:"per_epsilon"`
	FreeJobsPerMonth int     `json:"free_jobs_per_month"`
	CostRecovery     float64 `json:"cost_recovery"`
}

// DefaultPrices is a placeholder schedule; an authority configures its own.
var DefaultPrices = Prices{Currency: "CNY", PerJob: 20, PerMillionRows: 5, PerGuestCPUHour: 60, PerEpsilon: 100,
	FreeJobsPerMonth: 100, CostRecovery: 0.3}

// Validate checks a schedule.
func (p Prices) Validate() error {
	for name, v := range map[string]float64{"per_job": p.PerJob, "per_million_rows": p.PerMillionRows,
		"per_guest_cpu_hour": p.PerGuestCPUHour, "per_epsilon": p.PerEpsilon, "cost_recovery": p.CostRecovery} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: price %s must be a non-negative number", cove.ErrInvalid, name)
		}
	}
	if p.FreeJobsPerMonth < 0 || p.Currency == "" {
		return fmt.Errorf("%w: prices need a currency and a non-negative free_jobs_per_month", cove.ErrInvalid)
	}
	return nil
}

// Line is one job, or one encrypted operator query, on a statement.
type Line struct {
	Kind         string    `json:"kind"` // "job", or "he.query": Job is then the query's id
	Job          string    `json:"job"`
	Grant        string    `json:"grant"`
	Dataset      string    `json:"dataset"`
	At           time.Time `json:"at"`
	Released     bool      `json:"released"`
	Rows         int64     `json:"rows"`
	Bytes        int64     `json:"bytes"`
	GuestSeconds float64   `json:"guest_seconds"`
	WallSeconds  float64   `json:"wall_seconds"`
	Epsilon      float64   `json:"epsilon"`
	Pricing      string    `json:"pricing"`
	Free         bool      `json:"free"`
	Amount       float64   `json:"amount"`
}

// Statement is an operator's bill for one month.
type Statement struct {
	Operator     string    `json:"operator"`
	Month        string    `json:"month"` // 2006-01
	Currency     string    `json:"currency"`
	Lines        []Line    `json:"lines"`
	Jobs         int       `json:"jobs"`
	Releases     int       `json:"releases"`
	Queries      int       `json:"he_queries"` // encrypted operator queries answered
	Rows         int64     `json:"rows"`
	GuestSeconds float64   `json:"guest_seconds"`
	Epsilon      float64   `json:"epsilon"`
	Total        float64   `json:"total"`
	Generated    time.Time `json:"generated"`
}

// Statements prices every metered run and every answered encrypted query of
// the month (UTC, "2006-01") from the ledger, one statement per operator;
// operator "" means all. A query is priced as a job that read no rows and
// ran no guest: the per-job price and its ε; it counts towards the free
// jobs of public-welfare use like a job.
func Statements(entries iter.Seq2[ledger.Entry, error], prices Prices, month, operator string, now time.Time) ([]Statement, error) {
	if err := prices.Validate(); err != nil {
		return nil, err
	}
	if _, err := time.Parse("2006-01", month); err != nil {
		return nil, fmt.Errorf("%w: month %q is not YYYY-MM", cove.ErrInvalid, month)
	}
	st, err := fold(entries)
	if err != nil {
		return nil, err
	}
	type item struct {
		operator string
		line     Line
	}
	var items []item
	for _, r := range st.runs {
		items = append(items, item{r.Operator, Line{Kind: "job", Job: r.Job, Grant: r.Grant, Dataset: r.Dataset, At: r.At, Released: r.Released,
			Rows: r.Metering.Rows, Bytes: r.Metering.Bytes, GuestSeconds: r.Metering.GuestSeconds, WallSeconds: r.Metering.WallSeconds, Epsilon: r.Epsilon}})
	}
	for _, q := range st.queries {
		items = append(items, item{q.Operator, Line{Kind: "he.query", Job: q.Query, Grant: q.Grant, Dataset: q.Dataset, At: q.Answered, Released: true, Epsilon: q.Epsilon}})
	}
	// In time order: the free jobs of a month are its first ones.
	sort.SliceStable(items, func(i, j int) bool { return items[i].line.At.Before(items[j].line.At) })
	byOp := map[string]*Statement{}
	for _, it := range items {
		l := it.line
		if l.At.UTC().Format("2006-01") != month || (operator != "" && it.operator != operator) {
			continue
		}
		s := byOp[it.operator]
		if s == nil {
			s = &Statement{Operator: it.operator, Month: month, Currency: prices.Currency, Generated: now.UTC()}
			byOp[it.operator] = s
		}
		if g, ok := st.grants[l.Grant]; ok {
			l.Pricing = g.Pricing
		}
		pricing := l.Pricing
		full := prices.PerJob + prices.PerMillionRows*float64(l.Rows)/1e6 + prices.PerGuestCPUHour*l.GuestSeconds/3600 + prices.PerEpsilon*l.Epsilon
		switch {
		case pricing == "public-welfare" && s.Jobs+s.Queries < prices.FreeJobsPerMonth:
			l.Free = true
		case pricing == "public-welfare":
			l.Amount = full * prices.CostRecovery
		default:
			l.Amount = full
		}
		l.Amount = math.Round(l.Amount*100) / 100
		s.Lines = append(s.Lines, l)
		if l.Kind == "he.query" {
			s.Queries++
		} else {
			s.Jobs++
			if l.Released {
				s.Releases++
			}
		}
		s.Rows += l.Rows
		s.GuestSeconds += l.GuestSeconds
		s.Epsilon += l.Epsilon
		s.Total += l.Amount
	}
	out := make([]Statement, 0, len(byOp))
	for _, s := range byOp {
		s.Total = math.Round(s.Total*100) / 100
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Operator < out[j].Operator })
	return out, nil
}
