package jobs

import (
	"fmt"
	"strings"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave"
)

// dpSink is the DP mechanism: one enclave accumulator per output (block
// accumulators in block mode), and the count of failed units or blocks.
type dpSink struct {
	m      *Manifest
	accs   []*enclave.Accumulator
	blocks []*enclave.BlockAccumulator
	index  []map[string]int // public partitions by key, per output
	fails  int64
}

func newDPSink(m *Manifest) (*dpSink, error) {
	n := len(m.lit.Outputs)
	s := &dpSink{m: m, accs: make([]*enclave.Accumulator, n), blocks: make([]*enclave.BlockAccumulator, n), index: make([]map[string]int, n)}
	if m.lit.Mode == ModeBlock {
		for i, b := range m.blocks {
			a, err := enclave.NewBlockAccumulator(b)
			if err != nil {
				return nil, err
			}
			s.blocks[i] = a
		}
		return s, nil
	}
	for i, sp := range m.specs {
		a, err := enclave.NewAccumulator(sp)
		if err != nil {
			return nil, err
		}
		s.accs[i] = a
		s.index[i] = make(map[string]int, len(sp.Partitions))
		for p, k := range sp.Partitions {
			s.index[i][k] = p
		}
	}
	return s, nil
}

func (s *dpSink) acc(o int) (*enclave.Accumulator, error) {
	if o < 0 || o >= len(s.accs) || s.accs[o] == nil {
		return nil, fmt.Errorf("%w: output %d takes no contributions", cove.ErrInvalid, o)
	}
	return s.accs[o], nil
}

func (s *dpSink) partition(o int, key string) (int, error) {
	a, err := s.acc(o)
	if err != nil {
		return 0, err
	}
	if s.m.specs[o].PrivatePartitions {
		// Keys come from the data; the enclave selects privately which
		// ones are released.
		return a.Partition(key)
	}
	if p, ok := s.index[o][key]; ok {
		return p, nil
	}
	return -1, nil
}

func (s *dpSink) rows(o int, _ int64, parts []int32, values []float64) error {
	a, err := s.acc(o)
	if err != nil {
		return err
	}
	return a.AddRows(parts, values)
}

func (s *dpSink) units(o int, ids []uint64, parts []int32, values []float64) error {
	a, err := s.acc(o)
	if err != nil {
		return err
	}
	return a.AddUnits(ids, parts, values)
}

func (s *dpSink) unit(o int, unit uint64, _ int64, part int, value float64) error {
	a, err := s.acc(o)
	if err != nil {
		return err
	}
	return a.Add(unit, part, value)
}

func (s *dpSink) seal(n uint64) {
	for _, a := range s.accs {
		if a != nil {
			a.Seal(n)
		}
	}
}

func (s *dpSink) vector(o, b int, v []float64) error {
	if o < 0 || o >= len(s.blocks) || s.blocks[o] == nil {
		return fmt.Errorf("%w: output %d takes no block vectors", cove.ErrInvalid, o)
	}
	return s.blocks[o].Add(b, v)
}

func (s *dpSink) failed() { s.fails++ }

// release draws the noise, once per output, and the noisy failure count.
func (s *dpSink) release(rel *Release) error {
	for i, o := range s.m.lit.Outputs {
		var er *enclave.Release
		var err error
		if s.blocks[i] != nil {
			er, err = s.blocks[i].Release()
		} else {
			er, err = s.accs[i].Release()
		}
		if err != nil {
			return err
		}
		rel.Outputs = append(rel.Outputs, outputOf(er, o))
	}
	if m := s.m.lit.Mode; m == ModeUnit || m == ModeBlock {
		eps := s.m.lit.FailureEpsilon
		n, sd, err := enclave.NoisyCount(s.fails, eps)
		if err != nil {
			return err
		}
		what := "units"
		if m == ModeBlock {
			what = "blocks"
		}
		rel.Failures = &Failures{Of: what, Count: n, NoiseStdDev: sd, Epsilon: eps}
	}
	return nil
}

func outputOf(er *enclave.Release, lit OutputLiteral) Output {
	o := Output{
		Name: er.Output, Aggregate: string(er.Aggregate), Mechanism: er.Mechanism, Epsilon: er.Epsilon, Delta: er.Delta,
		Lower: er.Lower, Upper: er.Upper, Granularity: er.Granularity, MaxPartitions: er.MaxPartitions, MaxContributions: er.MaxContributions,
		PrivatePartitions: er.PrivatePartitions, Suppressed: er.Suppressed, SuppressedNoiseStdDev: er.SuppressedNoiseStdDev,
	}
	for _, g := range lit.GroupBy {
		o.GroupBy = append(o.GroupBy, g.label())
	}
	if er.Aggregate == enclave.BlockMean {
		o.GroupBy = []string{"coordinate"}
	}
	for _, row := range er.Rows {
		o.Rows = append(o.Rows, Row{Key: strings.Split(row.Key, KeySeparator), Rank: row.Rank, Bucket: row.Bucket, Value: row.Value,
			NoiseStdDev: row.NoiseStdDev, CILow: row.CILow, CIHigh: row.CIHigh, NoCI: row.NoCI})
	}
	return o
}
