package service_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he"
	"github.com/covedata/cove/internal/guestbuild"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/sdk/client"
	"github.com/covedata/cove/service"
)

// The HE world through the API: three key holders with provider tokens,
// an operator, an authority, a public table of stations and years in the
// data directory; PM2.5 stays with env-east, which encrypts it.
var heHolders = []string{"env-east", "env-west", "health"}

const heRows = 600

type heAPI struct {
	e        *env
	auth, op *client.Client
	holders  map[string]*client.Client
	dirs     map[string]string
	keys     *he.PublicKeys
	operator *he.Operator
	recHash  string
	module   []byte
	exactSum []float64 // per year 2013..2017: clamped PM2.5 sum
	exactN   []float64 // rows with a value
	temp     []float64 // per station: public temperature and humidity columns (for queries)
	hum      []float64
}

var heStations = []string{"north", "south", "east"}

func pm25(i int) (float64, bool) {
	if i%13 == 0 {
		return 0, false // a null
	}
	return float64((i*37)%400) + 0.25, true
}

func writeHETables(t *testing.T, public, private string) (sum, n, temp, hum []float64) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: "station", Type: arrow.BinaryTypes.String}, {Name: "year", Type: arrow.PrimitiveTypes.Int64},
		{Name: "temp", Type: arrow.PrimitiveTypes.Float64}, {Name: "humidity", Type: arrow.PrimitiveTypes.Float64},
		{Name: "PM2.5", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	sum, n, temp, hum = make([]float64, 5), make([]float64, 5), make([]float64, 3), make([]float64, 3)
	for i := range heRows {
		st, yr := i%3, 2013+(i/7)%5
		tv, hv := float64(i%31)-5, float64((i*7)%90)
		b.Field(0).(*array.StringBuilder).Append(heStations[st])
		b.Field(1).(*array.Int64Builder).Append(int64(yr))
		b.Field(2).(*array.Float64Builder).Append(tv)
		b.Field(3).(*array.Float64Builder).Append(hv)
		temp[st] += min(max(tv, -10), 40)
		hum[st] += min(max(hv, 0), 100)
		if v, ok := pm25(i); ok {
			b.Field(4).(*array.Float64Builder).Append(v)
			sum[yr-2013] += min(max(v, 0), 500)
			n[yr-2013]++
		} else {
			b.Field(4).AppendNull()
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	writeParquet(t, private, rec)
	pub := array.NewRecordBatch(arrow.NewSchema(schema.Fields()[:4], nil), rec.Columns()[:4], rec.NumRows())
	defer pub.Release()
	writeParquet(t, public, pub)
	return sum, n, temp, hum
}

func writeParquet(t *testing.T, path string, rec arrow.RecordBatch) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func (w *heAPI) token(t *testing.T, name string, role service.Role, subject string) *client.Client {
	t.Helper()
	tok, _, err := w.e.srv.Tokens().Create(context.Background(), role, subject, "he test")
	if err != nil {
		t.Fatal(err)
	}
	w.e.tokens[name] = tok
	return w.e.client(t, name)
}

// newHEAPI does the whole set-up through the API: setup, three keygens,
// encryption by env-east on its side, attachment, grant, operator key.
func newHEAPI(t *testing.T) *heAPI {
	t.Helper()
	ctx := context.Background()
	opt := serviceOptions()
	opt.MaxHEColumnBytes = 4 << 20
	e := startServer(t, t.TempDir(), opt)
	w := &heAPI{e: e, holders: map[string]*client.Client{}, dirs: map[string]string{}}
	w.auth = w.token(t, "authority", service.Authority, "data-admin")
	w.op = w.token(t, "operator", service.Operator, "acme")
	for _, h := range heHolders {
		w.holders[h] = w.token(t, h, service.Provider, h)
		w.dirs[h] = filepath.Join(t.TempDir(), h) // outside the sandbox's data directory
	}
	private := filepath.Join(t.TempDir(), "east.parquet")
	if err := os.MkdirAll(filepath.Join(e.dir, "datasets"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.exactSum, w.exactN, w.temp, w.hum = writeHETables(t, filepath.Join(e.dir, "datasets", "air-he.parquet"), private)

	if _, err := w.auth.RegisterDataset(ctx, client.Dataset{Name: "air-he", Title: "air, PM2.5 encrypted", Domain: "environment", Provider: "env-east",
		Source: "test", Sharing: "conditional", Level: 2, Location: "datasets/air-he.parquet",
		Columns: []client.Column{{Name: "PM2.5", Type: "encrypted", Role: "sensitive"}, {Name: "PM2.5.present", Type: "encrypted", Role: "sensitive"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.auth.CreateHESetup(ctx, "air", he.DefaultCKKS(), heHolders); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i, h := range heHolders {
		res, err := w.holders[h].ProviderKeygen(ctx, w.dirs[h], h, "air")
		if err != nil {
			t.Fatalf("%s keygen: %v", h, err)
		}
		if last := i == len(heHolders)-1; last != (res.Keys != "") {
			t.Fatalf("%s keygen: keys %q after %d of %d shares", h, res.Keys, i+1, len(heHolders))
		}
	}
	t.Logf("three keygens through the API and the collective keys: %v", time.Since(t0).Round(time.Millisecond))
	// Asked again, a holder sends the same share, and the sandbox refuses it.
	if _, err := w.holders["env-west"].ProviderKeygen(ctx, w.dirs["env-west"], "", "air"); !errors.Is(err, cove.ErrExists) {
		t.Fatalf("second keygen share: %v, want exists", err)
	}

	// env-east downloads the public keys and encrypts on its side.
	east := w.holders["env-east"]
	var err error
	if w.keys, err = east.HEKeys(ctx, "air"); err != nil {
		t.Fatal(err)
	}
	vals, present := make([]float64, heRows), make([]float64, heRows)
	for i := range heRows {
		if v, ok := pm25(i); ok {
			vals[i], present[i] = v, 1
		}
	}
	enc := he.NewEncryptor(w.keys)
	col, err := enc.EncryptFloats(vals, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	pres, err := enc.EncryptFloats(present, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*he.Column{"PM2.5": col, "PM2.5.present": pres} {
		if _, err := east.AttachHEColumn(ctx, "air", "air-he", name, c, "zero"); err != nil {
			t.Fatalf("attach %s: %v", name, err)
		}
	}

	now := time.Now()
	if _, err := w.auth.CreateGrant(ctx, client.Grant{ID: "g-he", Operator: "acme", Mode: "scenario", Purposes: []string{"research"},
		Mechanisms: []string{"he"}, Pricing: "public-welfare", Agreement: "test", Datasets: []string{"air-he"},
		Columns:    map[string][]string{"air-he": {"station", "year", "temp", "humidity", "PM2.5", "PM2.5.present"}},
		EpsilonCap: map[string]float64{"air-he": 20}, ValidFrom: now.Add(-time.Minute), ValidUntil: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	su, err := w.op.HESetup(ctx, "air")
	if err != nil {
		t.Fatal(err)
	}
	params, err := he.NewParams(su.Params)
	if err != nil {
		t.Fatal(err)
	}
	if w.operator, err = he.NewOperator(params); err != nil {
		t.Fatal(err)
	}
	if w.recHash, err = w.op.RegisterHEKey(ctx, w.operator); err != nil {
		t.Fatal(err)
	}
	// The jobs package's HE guest: weights per row from public columns.
	if w.module, err = guestbuild.Cached(ctx, filepath.Join("..", "jobs", "testdata", "heweights")); err != nil {
		t.Fatal(err)
	}
	return w
}

const heAPIManifest = `version: 1
name: pm25-by-year
grant: g-he
purpose: research
dataset: air-he
mechanism: he
mode: unit
recipient: %s
columns: [station, year]
privacy_unit: {per_row: true}
outputs:
  - name: pm25_sum
    column: PM2.5
    aggregate: sum
    epsilon: 0.5
    group_by: [{column: year, values: ["2013", "2014", "2015", "2016", "2017"]}]
  - name: pm25_n
    column: PM2.5.present
    aggregate: count
    epsilon: 0.5
    group_by: [{column: year, values: ["2013", "2014", "2015", "2016", "2017"]}]
`

// submit submits the HE job and has the authority approve it (conditional data).
func (w *heAPI) submit(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	j, err := w.op.Submit(ctx, client.Submission{ID: id, Manifest: []byte(fmt.Sprintf(heAPIManifest, w.recHash)), Module: w.module})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != client.StateInReview {
		t.Fatalf("job %s is %s, want in review", id, j.State)
	}
	if _, err := w.auth.Review(ctx, id, true, "HE release of yearly PM2.5"); err != nil {
		t.Fatal(err)
	}
}

// serveShares runs a holder's side: it answers every request waiting for
// it until ctx ends, and counts the shares the sandbox recorded.
func (w *heAPI) serveShares(ctx context.Context, holder string, given *int, mu *sync.Mutex) {
	c := w.holders[holder]
	for ctx.Err() == nil {
		ds, _ := c.ShareAll(ctx, w.dirs[holder])
		mu.Lock()
		*given += len(ds)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *heAPI) spent(t *testing.T) float64 {
	t.Helper()
	bs, err := w.op.Budgets(context.Background(), "g-he")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Dataset == "air-he" {
			return b.Budget.Spent
		}
	}
	return 0
}

// TestHEThroughAPI: the HE path with every party on its own side of the
// HTTP API (three holders, an operator, the authority), then the refusals.
func TestHEThroughAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	w := newHEAPI(t)

	t.Run("release", func(t *testing.T) {
		w.submit(t, ctx, "he-api-1")
		sctx, stop := context.WithCancel(ctx)
		var mu sync.Mutex
		given := 0
		var wg sync.WaitGroup
		for _, h := range heHolders {
			wg.Add(1)
			go func() { defer wg.Done(); w.serveShares(sctx, h, &given, &mu) }()
		}
		j, err := w.op.Wait(ctx, "he-api-1", nil)
		stop()
		wg.Wait()
		if err != nil || j.State != client.StateReleased {
			t.Fatalf("job: %+v %v", j, err)
		}
		if given != 6 {
			t.Fatalf("%d shares recorded, want 6 (2 outputs × 3 holders)", given)
		}
		rel, err := w.op.Release(ctx, "he-api-1")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range rel.Outputs {
			if o.HE == nil || len(o.Rows) != 0 {
				t.Fatalf("output %s: served without its encrypted result, or with clear values", o.Name)
			}
		}
		opened, err := client.OpenHE(w.operator, rel)
		if err != nil {
			t.Fatal(err)
		}
		for i, exact := range [][]float64{w.exactSum, w.exactN} {
			o := opened.Outputs[i]
			tol := o.HE.Noise.Interval(1e-9)
			same := 0
			for g, row := range o.Rows {
				t.Logf("%s %v: released %.2f exact %.2f (95%% CI %.1f..%.1f; tolerance ±%.1f)", o.Name, row.Key, row.Value, exact[g], row.CILow, row.CIHigh, tol)
				if math.Abs(row.Value-exact[g]) > tol {
					t.Errorf("%s %v: released %v, exact %v, beyond ±%v", o.Name, row.Key, row.Value, exact[g], tol)
				}
				if row.Value == exact[g] {
					same++
				}
			}
			if same == len(o.Rows) {
				t.Errorf("%s: every released value is exact: no noise", o.Name)
			}
		}
		// Another key (a provider's view, the platform's) does not open it.
		other, _ := he.NewOperator(w.keys.Params())
		if bad, err := client.OpenHE(other, rel); err == nil && math.Abs(bad.Outputs[0].Rows[0].Value-opened.Outputs[0].Rows[0].Value) < 1 {
			t.Fatal("another key opened the release")
		}
		// The outputs' ε and the noisy count of failed units (mode unit).
		if s, want := w.spent(t), 1+jobs.DefaultFailureEpsilon; math.Abs(s-want) > 1e-9 {
			t.Fatalf("ε spent %v, want %v", s, want)
		}
		n := 0
		for _, kind := range []string{"he.keygen_share", "he.share", "he.approved"} {
			es, err := w.auth.LedgerEntries(ctx, 1, 10000)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				if e.Kind == kind {
					n++
				}
			}
		}
		if n != 3+6+2 {
			t.Fatalf("%d keygen-share, share and approval entries in the ledger, want 11", n)
		}
	})

	t.Run("withheld share blocks the release; a second share is refused", func(t *testing.T) {
		before := w.spent(t)
		w.submit(t, ctx, "he-api-2")
		// env-east and env-west give their shares of both outputs' requests
		// as they come; health computes its first share but holds it back.
		var mu sync.Mutex
		given := 0
		sctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, h := range heHolders[:2] {
			wg.Add(1)
			go func() { defer wg.Done(); w.serveShares(sctx, h, &given, &mu) }()
		}
		health := w.holders["health"]
		var ps []client.PendingShare
		for len(ps) == 0 && ctx.Err() == nil {
			var err error
			if ps, err = health.PendingShares(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		job, share, err := health.ComputeShare(ctx, w.dirs["health"], ps[0])
		if err != nil {
			t.Fatal(err)
		}
		// Asked again, health's own share log refuses to compute a second share.
		if _, _, err := health.ComputeShare(ctx, w.dirs["health"], ps[0]); !errors.Is(err, cove.ErrPrivacy) {
			t.Fatalf("second share computed: %v", err)
		}
		// Another holder cannot post health's share; a forged session is refused.
		if _, err := w.holders["env-west"].PostShare(ctx, job, share); !errors.Is(err, cove.ErrInvalid) {
			t.Fatalf("env-west posting health's share: %v", err)
		}
		// The job waits: no release while health withholds its share.
		for ctx.Err() == nil {
			mu.Lock()
			g := given
			mu.Unlock()
			if g == 2 {
				break // east and west gave theirs for the first output
			}
			time.Sleep(20 * time.Millisecond)
		}
		j, err := w.op.Job(ctx, "he-api-2")
		if err != nil || j.State != client.StateRunning {
			t.Fatalf("job while a share is withheld: %+v %v", j, err)
		}
		if _, err := w.op.Release(ctx, "he-api-2"); !errors.Is(err, cove.ErrNotFound) {
			t.Fatalf("release while a share is withheld: %v", err)
		}
		// Health gives it now, once: a second post of the same share is refused.
		if _, err := health.PostShare(ctx, job, share); err != nil {
			t.Fatal(err)
		}
		_, err = health.PostShare(ctx, job, share)
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Code != "privacy_refused" || ae.Status != http.StatusUnprocessableEntity {
			t.Fatalf("second share of the same ciphertext: %v, want privacy_refused", err)
		}
		// The second output's request waits for health, which withholds it:
		// the operator cancels; nothing is released, the budget is refunded.
		for ctx.Err() == nil {
			ps, _ := health.PendingShares(ctx)
			if len(ps) > 0 && ps[0].Output == "pm25_n" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := w.op.Cancel(ctx, "he-api-2", "a key holder withholds its share"); err != nil {
			t.Fatal(err)
		}
		j, err = w.op.Wait(ctx, "he-api-2", nil)
		stop()
		wg.Wait()
		if err != nil || j.State != client.StateCancelled {
			t.Fatalf("job after cancellation: %+v %v", j, err)
		}
		if _, err := w.op.Release(ctx, "he-api-2"); !errors.Is(err, cove.ErrNotFound) {
			t.Fatalf("release of the cancelled job: %v", err)
		}
		if s := w.spent(t); s != before {
			t.Fatalf("ε spent %v after a blocked release, want %v (refunded)", s, before)
		}
	})

	t.Run("callers and bodies refused", func(t *testing.T) {
		anon, _ := client.New(w.e.url)
		if _, err := anon.PendingShares(ctx); !errors.Is(err, client.ErrUnauthenticated) {
			t.Errorf("anonymous pending shares: %v", err)
		}
		if _, err := w.op.PendingShares(ctx); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("operator listing key-switch requests: %v", err)
		}
		if _, err := w.op.PostShare(ctx, "he-api-1", []byte("x")); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("operator posting a share: %v", err)
		}
		if _, err := w.holders["health"].RegisterHEKey(ctx, w.operator); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("provider registering an operator key: %v", err)
		}
		if _, err := w.auth.ProviderKeygen(ctx, t.TempDir(), "health", "air"); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("authority giving a keygen share: %v", err)
		}
		// An oversized column (limit 4 MiB here) is refused before it is read.
		big := bytes.Repeat([]byte{7}, 5<<20)
		req, _ := http.NewRequestWithContext(ctx, "POST", w.e.url+"/v1/he/columns/air-he/PM10?setup=air", bytes.NewReader(big))
		req.Header.Set("Authorization", "Bearer "+w.e.tokens["env-east"])
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized column: HTTP %d, want 413", resp.StatusCode)
		}
	})

	t.Run("encrypted operator query", func(t *testing.T) {
		// Weights the platform must never see, chosen so their encodings
		// are recognizable in the sandbox's files.
		vector := []float64{0.7315926535, -1.2718281828}
		q := client.HEQuery{ID: "q-1", Grant: "g-he", Dataset: "air-he", Purpose: "research", Columns: []string{"temp", "humidity"},
			Bounds: [][2]float64{{-10, 40}, {0, 100}}, GroupBy: "station", Groups: heStations, Epsilon: 1}
		before := w.spent(t)
		res, err := w.op.RunHEQuery(ctx, w.operator, q, vector)
		if err != nil {
			t.Fatal(err)
		}
		// The noise is on each element of X: l0 = 2 columns, lInf = the
		// spans 50 and 100, Laplace b_j = 2·span_j/ε.
		if nz := res.Noise; nz.Mechanism != he.Laplace || nz.L0 != 2 || len(nz.Scale) != 2 || nz.Scale[0] != 100 || nz.Scale[1] != 200 {
			t.Fatalf("noise %+v, want Laplace scales [100 200]", nz)
		}
		tol, err := res.Noise.Interval(vector, 1e-9)
		if err != nil {
			t.Fatal(err)
		}
		if sd := math.Hypot(vector[0]*res.Noise.Std[0], vector[1]*res.Noise.Std[1]); math.Abs(res.NoiseStd-sd) > 1e-9*sd || !(res.CI95Half > 0 && res.CI95Half < tol) {
			t.Errorf("result noise std %v (want %v), 95%% half-width %v", res.NoiseStd, sd, res.CI95Half)
		}
		same := 0
		for g, st := range heStations {
			exact := vector[0]*w.temp[g] + vector[1]*w.hum[g]
			t.Logf("station %s: reply %.3f exact %.3f (DP std %.1f, ±%.1f)", st, res.Values[g], exact, res.NoiseStd, tol)
			if math.Abs(res.Values[g]-exact) > tol {
				t.Errorf("station %s: %v, exact %v beyond ±%v", st, res.Values[g], exact, tol)
			}
			if math.Abs(res.Values[g]-exact) < 1e-3 {
				same++
			}
		}
		if same == len(heStations) {
			t.Error("every reply value is exact: no noise")
		}
		if s := w.spent(t); math.Abs(s-before-1) > 1e-9 {
			t.Fatalf("ε spent %v → %v, want +1", before, s)
		}
		// The stored reply is the same: no new noise, no new debit.
		again, err := w.op.OpenHEQuery(ctx, w.operator, "q-1", vector)
		if err != nil {
			t.Fatal(err)
		}
		for g := range again.Values {
			if again.Values[g] != res.Values[g] {
				t.Fatalf("stored reply differs: %v vs %v", again.Values, res.Values)
			}
		}
		if _, err := w.op.RunHEQuery(ctx, w.operator, q, vector); !errors.Is(err, cove.ErrExists) {
			t.Fatalf("another request under the same id: %v", err)
		}
		if s := w.spent(t); math.Abs(s-before-1) > 1e-9 {
			t.Fatalf("ε spent %v after a refused retry, want %v", s, before+1)
		}
		// Another operator's key cannot open the reply.
		other, _ := he.NewOperator(w.keys.Params())
		if bad, err := w.op.OpenHEQuery(ctx, other, "q-1", nil); err == nil && math.Abs(bad.Values[0]-res.Values[0]) < 1 {
			t.Fatal("another key opened the reply")
		}
		// A dishonest operator sends a huge vector: it pays the same ε and
		// gets the same per-element noise (the sandbox never sees the
		// vector), and y/10^6 still carries that noise: the operator cannot
		// read X more precisely than the DP release of X allows.
		huge := []float64{1e6, 1e6}
		sd := math.Hypot(res.Noise.Std[0], res.Noise.Std[1]) // the noise of y/10^6
		var sq float64
		n := 0
		for i := range 3 {
			bq := q
			bq.ID = fmt.Sprintf("q-huge-%d", i)
			big, err := w.op.RunHEQuery(ctx, w.operator, bq, huge)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(big.Noise, res.Noise) {
				t.Fatalf("noise of a huge vector %+v, of an honest one %+v", big.Noise, res.Noise)
			}
			half, _ := big.Noise.Interval(huge, 1e-9)
			for g := range heStations {
				d := big.Values[g]/1e6 - (w.temp[g] + w.hum[g])
				if math.Abs(d) > half/1e6 {
					t.Errorf("query %s, station %d: y/1e6 is %v from the exact sum, beyond ±%v", bq.ID, g, d, half/1e6)
				}
				sq += d * d
				n++
			}
		}
		rms := math.Sqrt(sq / float64(n))
		t.Logf("huge vector: y/1e6 is %.1f (rms over %d values) from the exact X sums; reported noise std %.1f", rms, n, sd)
		if rms < 0.15*sd || rms > 4*sd {
			t.Errorf("y/1e6 errs by %v rms, reported noise std %v", rms, sd)
		}
		if s := w.spent(t); math.Abs(s-before-4) > 1e-9 {
			t.Fatalf("ε spent %v → %v, want +4", before, s)
		}
		// vector_bound is no part of a query any more: refused as unknown.
		body := []byte(`{"id":"q-old","grant":"g-he","dataset":"air-he","purpose":"research","columns":["temp"],"bounds":[[0,1]],` +
			`"group_by":"station","groups":["north"],"vector_bound":2,"epsilon":1,"query":"AAAA"}`)
		req, _ := http.NewRequestWithContext(ctx, "POST", w.e.url+"/v1/he/queries", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+w.e.tokens["operator"])
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a query with vector_bound: HTTP %d, want 400", resp.StatusCode)
		}

		// Nothing the sandbox stored or ledgered holds the vector in the
		// clear: not as text, not as float64 in either byte order. (Not as
		// float32 either, in the sense that matters: a 4-byte pattern turns
		// up by chance in megabytes of key material, once in a few hundred
		// runs, so the float32 encodings are not searched.)
		var needles [][]byte
		for _, v := range vector {
			needles = append(needles, []byte(strconv.FormatFloat(v, 'g', -1, 64)), []byte(strconv.FormatFloat(v, 'f', 6, 64)),
				binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)), binary.BigEndian.AppendUint64(nil, math.Float64bits(v)))
		}
		var export bytes.Buffer
		if err := w.auth.LedgerExport(ctx, &export); err != nil {
			t.Fatal(err)
		}
		files := 0
		err = filepath.WalkDir(w.e.dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			for _, n := range needles {
				if bytes.Contains(b, n) {
					t.Errorf("%s holds the query vector's encoding %x", path, n)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(export.Bytes(), n) {
				t.Errorf("the ledger export holds the query vector's encoding %x", n)
			}
		}
		if !bytes.Contains(export.Bytes(), []byte(`"he.query"`)) {
			t.Error("no he.query entry in the ledger")
		}
		// The disclosure report lists the queries from the ledger.
		page, err := w.auth.DisclosureHTML(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"<code>q-1</code>", "<code>q-huge-2</code>", "temp, humidity by station (3 groups)"} {
			if !bytes.Contains(page, []byte(want)) {
				t.Errorf("disclosure report lacks %q", want)
			}
		}
		// And the SDK reads them from the JSON report.
		d, err := w.auth.Disclosure(ctx)
		if err != nil {
			t.Fatal(err)
		}
		asked := map[string]client.DisclosedQuery{}
		for _, q := range d.Queries {
			asked[q.Query] = q
		}
		if q, ok := asked["q-1"]; !ok || q.Operator == "" || q.Epsilon <= 0 || q.Groups != 3 || !strings.HasPrefix(q.ID, "Q-") {
			t.Errorf("the SDK's disclosure report lacks query q-1 or its fields: %+v", d.Queries)
		}
		answered := 0
		for _, u := range d.Usage {
			answered += u.Queries
		}
		if answered != len(d.Queries) {
			t.Errorf("usage counts %d queries, the report lists %d", answered, len(d.Queries))
		}
		// The operator's statement prices each answered query.
		sts, err := w.auth.Statements(ctx, time.Now().UTC().Format("2006-01"), "")
		if err != nil {
			t.Fatal(err)
		}
		billed := 0
		for _, st := range sts {
			var lines []struct {
				Kind    string  `json:"kind"`
				Job     string  `json:"job"`
				Epsilon float64 `json:"epsilon"`
			}
			if err := json.Unmarshal(st.Lines, &lines); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, l := range lines {
				if l.Kind == "he.query" {
					n++
					if asked[l.Job].Epsilon != l.Epsilon {
						t.Errorf("statement line for query %s: ε %v, the report says %v", l.Job, l.Epsilon, asked[l.Job].Epsilon)
					}
				}
			}
			if n != st.Queries {
				t.Errorf("statement of %s: %d query lines, he_queries %d", st.Operator, n, st.Queries)
			}
			billed += n
		}
		if billed != len(d.Queries) {
			t.Errorf("statements bill %d queries, the report lists %d", billed, len(d.Queries))
		}
		t.Logf("scanned %d files of the data directory and the ledger export (%d bytes): no encoding of the vector", files, export.Len())
	})
}
