package he

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/schemes/bgv"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he/internal/wire"
)

// MaxRows bounds the rows of one encrypted column.
const MaxRows = 1 << 24

// Column is one encrypted column: its values packed Slots() to a ciphertext,
// under the collective key. Lo and Hi are the public bounds the provider
// clamped the values to before encrypting; they size the DP noise.
type Column struct {
	params Params
	keys   [32]byte
	rows   int
	lo, hi float64
	cts    []*rlwe.Ciphertext
}

// Rows returns the number of values in the column.
func (c *Column) Rows() int { return c.rows }

// Bounds returns the public clamping bounds.
func (c *Column) Bounds() (lo, hi float64) { return c.lo, c.hi }

// Encryptor encrypts columns under the collective public key. It is the
// provider's side of encryption; it needs no secret. Not safe for
// concurrent use; make one per goroutine.
type Encryptor struct {
	keys *PublicKeys
	enc  *rlwe.Encryptor
	ckks *ckks.Encoder
	bgv  *bgv.Encoder
	pt   *rlwe.Plaintext
}

// NewEncryptor returns an encryptor for the collective keys.
func NewEncryptor(keys *PublicKeys) *Encryptor {
	p := keys.params
	e := &Encryptor{keys: keys, enc: rlwe.NewEncryptor(p.rlwe, keys.pk)}
	if p.lit.Scheme == CKKS {
		e.ckks = ckks.NewEncoder(p.ckks)
		e.pt = ckks.NewPlaintext(p.ckks, p.topLevel())
	} else {
		e.bgv = bgv.NewEncoder(p.bgv)
		e.pt = bgv.NewPlaintext(p.bgv, p.topLevel())
	}
	return e
}

// EncryptFloats encrypts a CKKS column, clamping each value to [lo, hi].
// NaN and infinite values are refused: the caller decides how nulls enter.
func (e *Encryptor) EncryptFloats(values []float64, lo, hi float64) (*Column, error) {
	p := e.keys.params
	if p.lit.Scheme != CKKS {
		return nil, fmt.Errorf("%w: he: EncryptFloats needs CKKS keys", cove.ErrInvalid)
	}
	if err := checkColumn(len(values), lo, hi, math.Exp2(30)); err != nil {
		return nil, err
	}
	c := &Column{params: p, keys: e.keys.Fingerprint(), rows: len(values), lo: lo, hi: hi}
	slots := p.Slots()
	buf := make([]float64, slots)
	for off := 0; off < len(values); off += slots {
		clear(buf)
		for i, v := range values[off:min(off+slots, len(values))] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%w: he: value %d is not finite", cove.ErrInvalid, off+i)
			}
			buf[i] = min(max(v, lo), hi)
		}
		if err := e.ckks.Encode(buf, e.pt); err != nil {
			return nil, fmt.Errorf("%w: he: %v", cove.ErrPrivacy, err)
		}
		ct, err := e.enc.EncryptNew(e.pt)
		if err != nil {
			return nil, fmt.Errorf("%w: he: %v", cove.ErrPrivacy, err)
		}
		c.cts = append(c.cts, ct)
	}
	return c, nil
}

// EncryptInts encrypts a BGV column, clamping each value to [lo, hi].
func (e *Encryptor) EncryptInts(values []int64, lo, hi int64) (*Column, error) {
	p := e.keys.params
	if p.lit.Scheme != BGV {
		return nil, fmt.Errorf("%w: he: EncryptInts needs BGV keys", cove.ErrInvalid)
	}
	if err := checkColumn(len(values), float64(lo), float64(hi), float64(p.lit.PlaintextModulus/2)); err != nil {
		return nil, err
	}
	c := &Column{params: p, keys: e.keys.Fingerprint(), rows: len(values), lo: float64(lo), hi: float64(hi)}
	slots := p.Slots()
	buf := make([]int64, slots)
	for off := 0; off < len(values); off += slots {
		clear(buf)
		for i, v := range values[off:min(off+slots, len(values))] {
			buf[i] = min(max(v, lo), hi)
		}
		if err := e.bgv.Encode(buf, e.pt); err != nil {
			return nil, fmt.Errorf("%w: he: %v", cove.ErrPrivacy, err)
		}
		ct, err := e.enc.EncryptNew(e.pt)
		if err != nil {
			return nil, fmt.Errorf("%w: he: %v", cove.ErrPrivacy, err)
		}
		c.cts = append(c.cts, ct)
	}
	return c, nil
}

func checkColumn(rows int, lo, hi, limit float64) error {
	if rows < 1 || rows > MaxRows {
		return fmt.Errorf("%w: he: %d rows (1..%d)", cove.ErrLimit, rows, MaxRows)
	}
	if !(lo <= hi) || math.Abs(lo) > limit || math.Abs(hi) > limit {
		return fmt.Errorf("%w: he: bounds [%v, %v] empty or beyond ±%v", cove.ErrInvalid, lo, hi, limit)
	}
	return nil
}

type columnHeader struct {
	Rows int     `json:"rows"`
	Lo   float64 `json:"lo"`
	Hi   float64 `json:"hi"`
}

// MarshalBinary serializes the column to rest in the sandbox.
func (c *Column) MarshalBinary() ([]byte, error) {
	h, _ := json.Marshal(columnHeader{Rows: c.rows, Lo: c.lo, Hi: c.hi})
	fields := [][]byte{h, c.keys[:]}
	for _, ct := range c.cts {
		b, err := ct.MarshalBinary()
		if err != nil {
			return nil, err
		}
		fields = append(fields, b)
	}
	return wire.Encode(wire.KindColumn, fields...), nil
}

// UnmarshalColumn parses a column encrypted under keys; a column encrypted
// under other keys is refused.
func UnmarshalColumn(keys *PublicKeys, b []byte) (*Column, error) {
	p := keys.params
	f, err := wire.Parse(b, wire.KindColumn, -1)
	if err != nil || len(f) < 3 {
		return nil, fmt.Errorf("%w: he: column: malformed", cove.ErrInvalid)
	}
	var h columnHeader
	if err := json.Unmarshal(f[0], &h); err != nil {
		return nil, fmt.Errorf("%w: he: column: %v", cove.ErrInvalid, err)
	}
	if h.Rows < 1 || h.Rows > MaxRows || (h.Rows+p.Slots()-1)/p.Slots() != len(f)-2 || !(h.Lo <= h.Hi) {
		return nil, fmt.Errorf("%w: he: column: header does not match", cove.ErrInvalid)
	}
	c := &Column{params: p, rows: h.Rows, lo: h.Lo, hi: h.Hi}
	if copy(c.keys[:], f[1]); c.keys != keys.Fingerprint() {
		return nil, fmt.Errorf("%w: he: column encrypted under other keys", cove.ErrInvalid)
	}
	for _, cb := range f[2:] {
		ct := rlwe.NewCiphertext(p.rlwe, 1, p.topLevel())
		if err := ct.UnmarshalBinary(cb); err != nil || ct.Degree() != 1 || ct.Level() != p.topLevel() || !ct.IsBatched || ct.Scale.Cmp(p.rlwe.DefaultScale()) != 0 || ct.Value[0].N() != p.rlwe.N() {
			return nil, fmt.Errorf("%w: he: column: bad ciphertext", cove.ErrInvalid)
		}
		c.cts = append(c.cts, ct)
	}
	return c, nil
}
