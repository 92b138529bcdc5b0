package client

import (
	"encoding/json"
	"time"
)

// The API's resources, as Go values. Their JSON is the server's.

// Health is the service's state.
type Health struct {
	Status  string `json:"status"`
	Queued  int    `json:"queued"`
	Running int    `json:"running"`
	Workers int    `json:"workers"`
}

// Principal is who a token is.
type Principal struct {
	Role      string `json:"role"`
	Subject   string `json:"subject,omitempty"`
	TokenID   string `json:"token_id,omitempty"`
	Anonymous bool   `json:"anonymous"`
}

// Column is one column of a dataset, with its privacy role and public domain.
type Column struct {
	Name   string   `json:"name"`
	Type   string   `json:"type,omitempty"`
	Role   string   `json:"role,omitempty"`
	Domain []string `json:"domain,omitempty"`
}

// Dataset is a catalog entry.
type Dataset struct {
	Name           string   `json:"name"`
	RegistrationID string   `json:"registration_id,omitempty"`
	Title          string   `json:"title"`
	Domain         string   `json:"domain"`
	Provider       string   `json:"provider"`
	Source         string   `json:"source"`
	Citation       string   `json:"citation,omitempty"`
	License        string   `json:"license,omitempty"`
	Sharing        string   `json:"sharing"`
	Level          int      `json:"level"`
	Personal       bool     `json:"personal"`
	Location       string   `json:"location"`
	SHA256         string   `json:"sha256"`
	Rows           int64    `json:"rows"`
	Columns        []Column `json:"columns"`
	// UnitPerRow: the privacy unit (the columns of role privacy-unit) is
	// unique per row, as Cove read from the data at registration (a value
	// sent by the registrant is ignored).
	UnitPerRow bool `json:"unit_per_row,omitempty"`
}

// Usage is a dataset's use, from the ledger.
type Usage struct {
	Dataset      string  `json:"dataset"`
	Jobs         int     `json:"jobs"`
	Releases     int     `json:"releases"`
	Queries      int     `json:"he_queries"` // encrypted operator queries answered
	Rejected     int     `json:"rejected"`
	Rows         int64   `json:"rows_read"`
	Bytes        int64   `json:"bytes_read"`
	GuestSeconds float64 `json:"guest_seconds"`
	Epsilon      float64 `json:"epsilon_spent"`
}

// Grant is an authorization (as created; as read it carries its revocation).
type Grant struct {
	ID           string              `json:"id"`
	Operator     string              `json:"operator"`
	Mode         string              `json:"mode"`
	Domain       string              `json:"domain,omitempty"`
	Datasets     []string            `json:"datasets,omitempty"`
	Purposes     []string            `json:"purposes"`
	Columns      map[string][]string `json:"columns"`
	Mechanisms   []string            `json:"mechanisms"`
	EpsilonCap   map[string]float64  `json:"epsilon_cap"`
	DeltaCap     map[string]float64  `json:"delta_cap,omitempty"`
	Period       string              `json:"period,omitempty"`
	Pricing      string              `json:"pricing"`
	MaxJobs      int                 `json:"max_jobs,omitempty"`
	ValidFrom    time.Time           `json:"valid_from"`
	ValidUntil   time.Time           `json:"valid_until"`
	Agreement    string              `json:"agreement,omitempty"`
	RevokedAt    *time.Time          `json:"revoked_at,omitempty"`
	RevokeReason string              `json:"revoke_reason,omitempty"`
}

// Revocation lists the jobs a grant's revocation cancelled.
type Revocation struct {
	Grant     string   `json:"grant"`
	Cancelled []string `json:"cancelled"`
}

// Budget is a grant's privacy budget on one dataset in the current period.
type Budget struct {
	Dataset string `json:"dataset"`
	Budget  struct {
		Period        time.Time `json:"period"`
		Cap           float64   `json:"epsilon_cap"`
		Spent         float64   `json:"epsilon_spent"`
		Reserved      float64   `json:"epsilon_reserved"`
		DeltaCap      float64   `json:"delta_cap"`
		DeltaSpent    float64   `json:"delta_spent"`
		DeltaReserved float64   `json:"delta_reserved"`
	} `json:"budget"`
	Left float64 `json:"epsilon_left"`
}

// Submission is a job to submit.
type Submission struct {
	// ID is an idempotency key: submitting the same job under the same id
	// again returns the stored job. Empty: the server picks one.
	ID       string
	Manifest []byte // YAML or JSON
	// Module is the job's WebAssembly. The client uploads it once (see
	// UploadModule) and names it by hash in this and later submissions.
	Module []byte
	// ModuleSHA256 names a module uploaded before (lowercase hex), instead
	// of Module.
	ModuleSHA256 string
}

// ModuleInfo is an uploaded module.
type ModuleInfo struct {
	SHA256 string `json:"sha256"` // lowercase hex: what a submission names it by
	Size   int64  `json:"size"`
}

// Decision is admission's route for a job.
type Decision struct {
	Review bool     `json:"review"`
	Flags  []string `json:"flags,omitempty"`
}

// Job states.
const (
	StateSubmitted = "submitted"
	StateInReview  = "in_review"
	StateAdmitted  = "admitted" // queued for a worker
	StateRunning   = "running"
	StateReleased  = "released"
	StateFailed    = "failed"
	StateRejected  = "rejected"
	StateCancelled = "cancelled"
)

// Final reports whether a job state is an end.
func Final(state string) bool {
	switch state {
	case StateReleased, StateFailed, StateRejected, StateCancelled:
		return true
	}
	return false
}

// Job is a job's status.
type Job struct {
	ID             string  `json:"id"`
	Operator       string  `json:"operator"`
	Grant          string  `json:"grant"`
	Dataset        string  `json:"dataset"`
	State          string  `json:"state"`
	Epsilon        float64 `json:"epsilon"`
	Delta          float64 `json:"delta"`
	ManifestSHA256 string  `json:"manifest_sha256"`
	ModuleSHA256   string  `json:"module_sha256"`
	// Mode is how the job runs on real data: plan, unit or block; for a
	// plan job, Plan is its canonical plan as the reviewer reads it and
	// PlanSHA256 the hash of its canonical JSON (both in the ledger).
	Mode          string    `json:"mode,omitempty"`
	PlanSHA256    string    `json:"plan_sha256,omitempty"`
	Plan          string    `json:"plan,omitempty"`
	Decision      Decision  `json:"decision"`
	Reason        string    `json:"reason,omitempty"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
	QueuePosition int       `json:"queue_position,omitempty"`
}

// JobFilter selects jobs; empty fields match all.
type JobFilter struct {
	State string
	Grant string
}

// Event is one step of a job's life.
type Event struct {
	Seq   uint64 `json:"seq"`
	Time  string `json:"time"`
	Kind  string `json:"kind"`
	State string `json:"state"`
}

// Release is a released job's result: per declared aggregate, the noised
// values and what is needed to read them.
type Release struct {
	Job     string   `json:"job"`
	Grant   string   `json:"grant"`
	Dataset string   `json:"dataset"`
	Epsilon float64  `json:"epsilon"`
	Outputs []Output `json:"outputs"`
}

// Output is one released aggregate.
type Output struct {
	Name             string   `json:"name"`
	Aggregate        string   `json:"aggregate"`
	Mechanism        string   `json:"mechanism"`
	Epsilon          float64  `json:"epsilon"`
	Delta            float64  `json:"delta"`
	Lower            float64  `json:"lower,omitempty"`
	Upper            float64  `json:"upper,omitempty"`
	MaxPartitions    int      `json:"max_partitions"`
	MaxContributions int      `json:"max_contributions"`
	GroupBy          []string `json:"group_by"`
	Rows             []Row    `json:"rows"`
	// HE is an HE output's encrypted result (mechanism he): Rows stay
	// empty until the operator opens it with OpenHE.
	HE *HEOutput `json:"he,omitempty"`
}

// Row is one partition's released value.
type Row struct {
	Key         []string `json:"key"`
	Value       float64  `json:"value"`
	NoiseStdDev float64  `json:"noise_stddev"`
	CILow       float64  `json:"ci95_low"`
	CIHigh      float64  `json:"ci95_high"`
}

// Output returns the named output.
func (r *Release) Output(name string) (Output, bool) {
	for _, o := range r.Outputs {
		if o.Name == name {
			return o, true
		}
	}
	return Output{}, false
}

// Get returns the row of a partition key.
func (o Output) Get(key ...string) (Row, bool) {
	for _, r := range o.Rows {
		if equal(r.Key, key) {
			return r, true
		}
	}
	return Row{}, false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Entry is a ledger entry. Body holds the exact bytes that were hashed.
type Entry struct {
	Seq     uint64          `json:"seq"`
	Time    time.Time       `json:"time"`
	Kind    string          `json:"kind"`
	Subject string          `json:"subject"`
	Body    json.RawMessage `json:"body"`
	Hash    string          `json:"hash"`
}

// Checkpoint is a signed tree head of the ledger.
type Checkpoint struct {
	Size uint64 `json:"size"`
	Hash string `json:"hash"`
	Note string `json:"note"` // the signed note; verify it with the ledger package
}

// InclusionProof proves an entry is in the tree of a checkpoint. Its JSON
// is that of ledger.InclusionProof (cove ledger verify-proof reads it).
type InclusionProof struct {
	Entry      Entry    `json:"entry"`
	Checkpoint string   `json:"checkpoint"`
	Proof      []string `json:"proof"`
}

// ConsistencyProof proves a checkpoint's tree extends an older one's. Its
// JSON is that of ledger.ConsistencyProof.
type ConsistencyProof struct {
	Old   string   `json:"old"`
	New   string   `json:"new"`
	Proof []string `json:"proof"`
}

// Statement is an operator's priced month.
type Statement struct {
	Operator     string          `json:"operator"`
	Month        string          `json:"month"`
	Currency     string          `json:"currency"`
	Lines        json.RawMessage `json:"lines"`
	Jobs         int             `json:"jobs"`
	Releases     int             `json:"releases"`
	Queries      int             `json:"he_queries"` // encrypted operator queries answered
	Rows         int64           `json:"rows"`
	GuestSeconds float64         `json:"guest_seconds"`
	Epsilon      float64         `json:"epsilon"`
	Total        float64         `json:"total"`
	Generated    time.Time       `json:"generated"`
}

// Disclosure is the public disclosure report.
type Disclosure struct {
	Generated time.Time `json:"generated"`
	Ledger    struct {
		Size uint64 `json:"size"`
		Hash string `json:"hash"`
	} `json:"ledger"`
	Datasets []string          `json:"datasets"`
	Grants   []json.RawMessage `json:"grants"`
	Products []json.RawMessage `json:"products"`
	// Queries are the encrypted operator queries answered: who asked,
	// under which grant, over which columns and groups, at what ε; never
	// the query or its reply.
	Queries []DisclosedQuery `json:"he_queries"`
	Usage   []Usage          `json:"usage"`
}

// DisclosedQuery is one answered encrypted query in the disclosure report.
type DisclosedQuery struct {
	ID        string    `json:"id"`    // "Q-" and the ledger sequence number
	Query     string    `json:"query"` // the operator's query id
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

// TokenInfo is an issued token's record.
type TokenInfo struct {
	ID      string     `json:"id"`
	Role    string     `json:"role"`
	Subject string     `json:"subject"`
	Note    string     `json:"note,omitempty"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
}

// NewToken is a token just issued: Token is shown this once.
type NewToken struct {
	Token string    `json:"token"`
	Info  TokenInfo `json:"info"`
}
