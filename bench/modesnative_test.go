package bench

import (
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
)

// The native baselines of the mode benchmarks: what a careful Go programmer
// would write for the exact answer, reading the same Parquet file through
// the same connector, with the same columns and batch size as the job: one
// tight loop over the decoded Arrow buffers, the station dictionary mapped
// once per batch to a small code and year−2013 as the other, no string key
// and no map per row.

// nativeBatchRows is the job Runner's default batch size (jobs.NewConfig).
const nativeBatchRows = 64 << 10

// Group codes: station × year, year 2013..2017.
const (
	nStations = 12
	nYears    = 5
	firstYear = 2013
)

// stationCodes maps a batch's station dictionary to station codes (−1 for a
// name not among the stations).
func stationCodes(a arrow.Array, codes []int32) ([]int32, []int32) {
	d := a.(*array.Dictionary)
	names := d.Dictionary().(*array.String)
	codes = codes[:0]
	for k := range names.Len() {
		c := int32(-1)
		for s, name := range demodata.AirQualityStations() {
			if names.Value(k) == name {
				c = int32(s)
			}
		}
		codes = append(codes, c)
	}
	return codes, d.Indices().(*array.Int32).Int32Values()
}

// validBits returns a's validity bitmap and offset, nil when it has no nulls.
func validBits(a arrow.Array) ([]byte, int) {
	if a.NullN() == 0 {
		return nil, 0
	}
	return a.NullBitmapBytes(), a.Data().Offset()
}

// groupMoments are the exact per-group count, sum and sum of squares.
type groupMoments struct {
	n, sum, sumsq [nStations * nYears]float64
}

func (m *groupMoments) mean(g int) float64 { return m.sum[g] / m.n[g] }

// variance is the population variance of group g's values.
func (m *groupMoments) variance(g int) float64 {
	mu := m.mean(g)
	return math.Max(0, m.sumsq[g]/m.n[g]-mu*mu)
}

// nativeStationYear is BenchmarkPlanMode's baseline: the exact mean PM2.5
// per station and year (with the sums of squares for the sanity check of
// the bounded variant).
func nativeStationYear(b *testing.B, path string) *groupMoments {
	r, err := connectors.OpenFile(path, connectors.Options{Columns: []string{"station", "year", "PM2.5"}, BatchRows: nativeBatchRows})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Release()
	m := &groupMoments{}
	var codes []int32
	for r.Next() {
		rec := r.RecordBatch()
		var idx []int32
		codes, idx = stationCodes(rec.Column(0), codes)
		yr := rec.Column(1).(*array.Int64).Int64Values()
		pa := rec.Column(2).(*array.Float64)
		pm := pa.Float64Values()
		valid, off := validBits(pa)
		idx, yr = idx[:len(pm)], yr[:len(pm)]
		for i, v := range pm {
			if valid != nil && !bitutil.BitIsSet(valid, off+i) {
				continue
			}
			s, y := idx[i], yr[i]-firstYear
			if uint(s) >= uint(len(codes)) || uint64(y) >= nYears || codes[s] < 0 {
				continue
			}
			g := int(codes[s])*nYears + int(y)
			m.n[g]++
			m.sum[g] += v
			m.sumsq[g] += v * v
		}
	}
	if err := r.Err(); err != nil {
		b.Fatal(err)
	}
	return m
}

// Station-days: the dense index of (replica, station, year, month, day).
const daysPerReplica = nStations * nYears * 12 * 31

func dayIndex(rep int64, st int32, y, mo, d int64) (int, bool) {
	y -= firstYear
	mo--
	d--
	if st < 0 || uint64(y) >= nYears || uint64(mo) >= 12 || uint64(d) >= 31 || rep < 0 {
		return 0, false
	}
	return int((((rep*nStations+int64(st))*nYears+y)*12+mo)*31 + d), true
}

// minReadings and category mirror examples/c/pm25days/job.c.
const minReadings = 18

var categories = []string{"excellent", "good", "lightly-polluted", "moderately-polluted", "heavily-polluted", "severely-polluted"}

func category(mean float64) int {
	switch {
	case mean <= 35:
		return 0
	case mean <= 75:
		return 1
	case mean <= 115:
		return 2
	case mean <= 150:
		return 3
	case mean <= 250:
		return 4
	}
	return 5
}

// dayCounts are the station-days per (station, year, category).
type dayCounts [nStations * nYears * 6]int64

// nativeDays is BenchmarkUnitMode's baseline: the days of each AQI
// category per station and year, from each station-day's mean PM2.5 over
// its non-null hourly readings (at least minReadings of them). It reads the
// columns the job reads: the guest's, then the unit's replica when the
// unit has it.
func nativeDays(b *testing.B, path string, replicas int64, withReplica bool) *dayCounts {
	cols := []string{"station", "year", "month", "day", "hour", "PM2.5"}
	if withReplica {
		cols = append(cols, "replica")
	}
	r, err := connectors.OpenFile(path, connectors.Options{Columns: cols, BatchRows: nativeBatchRows})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Release()
	sum := make([]float64, replicas*daysPerReplica)
	cnt := make([]int32, replicas*daysPerReplica)
	var codes []int32
	for r.Next() {
		rec := r.RecordBatch()
		var idx []int32
		codes, idx = stationCodes(rec.Column(0), codes)
		yr := rec.Column(1).(*array.Int64).Int64Values()
		mo := rec.Column(2).(*array.Int64).Int64Values()
		dy := rec.Column(3).(*array.Int64).Int64Values()
		pa := rec.Column(5).(*array.Float64)
		pm := pa.Float64Values()
		var rep []int64
		if withReplica {
			rep = rec.Column(6).(*array.Int64).Int64Values()
		}
		valid, off := validBits(pa)
		for i, v := range pm {
			if valid != nil && !bitutil.BitIsSet(valid, off+i) {
				continue
			}
			st := int32(-1)
			if s := idx[i]; uint(s) < uint(len(codes)) {
				st = codes[s]
			}
			var rp int64
			if rep != nil {
				rp = rep[i]
			}
			u, ok := dayIndex(rp, st, yr[i], mo[i], dy[i])
			if !ok || u >= len(sum) {
				continue
			}
			sum[u] += v
			cnt[u]++
		}
	}
	if err := r.Err(); err != nil {
		b.Fatal(err)
	}
	var out dayCounts
	for u, n := range cnt {
		if n < minReadings {
			continue
		}
		sy := (u / (12 * 31)) % (nStations * nYears) // station*nYears + year
		out[sy*6+category(sum[u]/float64(n))]++
	}
	return &out
}

// Block mode: PM2.5 = b0 + b1·TEMP + b2·DEWP + b3·WSPM per block.
const regressors = 3

// blockMoments are one block's sums over its complete rows, of the
// variables shifted by the first complete row seen (which keeps the
// one-pass sums well conditioned).
type blockMoments struct {
	n  float64
	s  [regressors + 1]float64                 // Σ z_j
	ss [regressors + 1][regressors + 1]float64 // Σ z_i z_j (lower triangle)
}

// regressBounds and regressDefault mirror examples/c/pm25regress/manifest.yaml.
var (
	regressBounds  = [regressors + 1][2]float64{{0, 300}, {-15, 5}, {-5, 15}, {-25, 5}}
	regressDefault = [regressors + 1]float64{140, -4, 4, -5}
)

// nativeRegress is BenchmarkBlockMode's baseline: the station-days split
// into k blocks by a hash, OLS on each block, the coefficients clamped to
// the manifest's bounds (a failed block: its default) and their mean over
// the blocks. It reads the columns the job reads: the guest's, then the
// unit's.
func nativeRegress(b *testing.B, path string, k int, withReplica bool) [regressors + 1]float64 {
	cols := []string{"PM2.5", "TEMP", "DEWP", "WSPM", "station", "year", "month", "day"}
	if withReplica {
		cols = append(cols, "replica")
	}
	r, err := connectors.OpenFile(path, connectors.Options{Columns: cols, BatchRows: nativeBatchRows})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Release()
	blocks := make([]blockMoments, k)
	var shift [regressors + 1]float64
	shifted := false
	var codes []int32
	for r.Next() {
		rec := r.RecordBatch()
		var vals [regressors + 1][]float64
		var valid [regressors + 1][]byte
		var off [regressors + 1]int
		anyNull := false
		for j := range vals {
			a := rec.Column(j).(*array.Float64)
			vals[j] = a.Float64Values()
			valid[j], off[j] = validBits(a)
			anyNull = anyNull || valid[j] != nil
		}
		var idx []int32
		codes, idx = stationCodes(rec.Column(4), codes)
		yr := rec.Column(5).(*array.Int64).Int64Values()
		mo := rec.Column(6).(*array.Int64).Int64Values()
		dy := rec.Column(7).(*array.Int64).Int64Values()
		var rep []int64
		if withReplica {
			rep = rec.Column(8).(*array.Int64).Int64Values()
		}
		for i := range int(rec.NumRows()) {
			if anyNull {
				ok := true
				for j := range valid {
					if valid[j] != nil && !bitutil.BitIsSet(valid[j], off[j]+i) {
						ok = false
					}
				}
				if !ok {
					continue
				}
			}
			st := int32(-1)
			if s := idx[i]; uint(s) < uint(len(codes)) {
				st = codes[s]
			}
			var rp int64
			if rep != nil {
				rp = rep[i]
			}
			u, ok := dayIndex(rp, st, yr[i], mo[i], dy[i])
			if !ok {
				continue
			}
			var z [regressors + 1]float64
			if !shifted {
				for j := range z {
					shift[j] = vals[j][i]
				}
				shifted = true
			}
			for j := range z {
				z[j] = vals[j][i] - shift[j]
			}
			m := &blocks[blockOf(uint64(u), k)]
			m.n++
			for a := range z {
				m.s[a] += z[a]
				for c := 0; c <= a; c++ {
					m.ss[a][c] += z[a] * z[c]
				}
			}
		}
	}
	if err := r.Err(); err != nil {
		b.Fatal(err)
	}
	var mean [regressors + 1]float64
	for i := range blocks {
		coef, ok := blocks[i].fit(shift)
		if !ok {
			coef = regressDefault
		}
		for j := range coef {
			mean[j] += min(max(coef[j], regressBounds[j][0]), regressBounds[j][1]) / float64(k)
		}
	}
	return mean
}

// blockOf assigns a station-day to a block (SplitMix64's finalizer).
func blockOf(u uint64, k int) int {
	u += 0x9e3779b97f4a7c15
	u = (u ^ u>>30) * 0xbf58476d1ce4e5b9
	u = (u ^ u>>27) * 0x94d049bb133111eb
	u ^= u >> 31
	return int(u % uint64(k))
}

// fit solves the block's normal equations (centred, as the C guest does)
// and returns (b0, b1, b2, b3); false when the block has too few rows or
// its regressors are collinear.
func (m *blockMoments) fit(shift [regressors + 1]float64) ([regressors + 1]float64, bool) {
	var coef [regressors + 1]float64
	if m.n <= regressors+1 {
		return coef, false
	}
	// Centred cross-products: Σ (z_a − z̄_a)(z_c − z̄_c) = Σ z_a z_c − n z̄_a z̄_c.
	cov := func(a, c int) float64 {
		if a < c {
			a, c = c, a
		}
		return m.ss[a][c] - m.s[a]*m.s[c]/m.n
	}
	var xx [regressors][regressors]float64
	var xy [regressors]float64
	for i := range regressors {
		xy[i] = cov(i+1, 0)
		for j := range regressors {
			xx[i][j] = cov(i+1, j+1)
		}
	}
	var l [regressors][regressors]float64
	for i := range regressors {
		for j := 0; j <= i; j++ {
			s := xx[i][j]
			for c := range j {
				s -= l[i][c] * l[j][c]
			}
			if i == j {
				if !(s > 1e-9*math.Max(xx[i][i], 1)) {
					return coef, false
				}
				l[i][i] = math.Sqrt(s)
			} else {
				l[i][j] = s / l[j][j]
			}
		}
	}
	var y [regressors]float64
	for i := range regressors {
		s := xy[i]
		for c := range i {
			s -= l[i][c] * y[c]
		}
		y[i] = s / l[i][i]
	}
	slope := coef[1:]
	for i := regressors - 1; i >= 0; i-- {
		s := y[i]
		for c := i + 1; c < regressors; c++ {
			s -= l[c][i] * slope[c]
		}
		slope[i] = s / l[i][i]
	}
	// The intercept in the original variables: ȳ − Σ b_j x̄_j.
	coef[0] = m.s[0]/m.n + shift[0]
	for j := range regressors {
		coef[0] -= slope[j] * (m.s[j+1]/m.n + shift[j+1])
	}
	return coef, true
}
