package service

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/report"
	"github.com/covedata/cove/store"
)

// Defaults of the verified ledger view.
const (
	// DefaultLedgerVerifyEvery is how often the whole ledger is verified
	// again in the background (besides at start).
	DefaultLedgerVerifyEvery = 10 * time.Minute
	// disclosureMaxAge bounds how often a disclosure report is folded
	// from the ledger: within it, a report of a slightly older head (stated
	// in the report) is served. The report is public: this bounds what
	// anyone can make the server do.
	disclosureMaxAge = time.Second
)

// ledgerView is the ledger as verified: the whole of it at start and every
// DefaultLedgerVerifyEvery, and each new entry, stored tree hash and
// checkpoint as it is read for a request (store.ExtendLedger). Reports read
// through it get entries checked against the verified tree and no further
// than its head. A verification failure sticks until a whole verification
// passes. Safe for concurrent use.
type ledgerView struct {
	st  *store.Store
	log func(msg string, args ...any)

	extend sync.Mutex // one extension at a time

	mu      sync.RWMutex // guards the fields below; log's hashes are read under it
	lg      *ledger.Log
	checked uint64 // largest checkpoint checked
	err     error  // the last verification's failure

	discMu   sync.Mutex // one disclosure fold at a time
	disc     *report.Disclosure
	discTime time.Time
}

func newLedgerView(st *store.Store, logf func(string, ...any)) *ledgerView {
	return &ledgerView{st: st, log: logf}
}

// verifyAll verifies the whole ledger and replaces the view with it.
func (v *ledgerView) verifyAll(ctx context.Context) error {
	v.extend.Lock()
	defer v.extend.Unlock()
	// Checkpoints up to the latest one stored now are all checked by
	// VerifyLedger (it reads them after this).
	var checked uint64
	if cp, err := v.st.LatestCheckpoint(ctx); err == nil {
		checked = cp.Size
	}
	lg, err := v.st.VerifyLedger(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			v.err = err
			v.log("ledger verification failed", "err", err)
		}
		return err
	}
	if v.lg != nil && v.err == nil && v.lg.Size() <= lg.Size() {
		// The view verified so far must be a prefix of the whole.
		if err := lg.Check(v.lg.Head()); err != nil {
			v.err = fmt.Errorf("%w: the ledger changed under its verified view: %v", cove.ErrLedger, err)
			v.log("ledger verification failed", "err", v.err)
			return v.err
		}
	}
	v.lg, v.checked, v.err = lg, checked, nil
	return nil
}

// head extends the view with what was appended since and returns its head.
func (v *ledgerView) head(ctx context.Context) (ledger.Head, error) {
	v.mu.RLock()
	lg, err := v.lg, v.err
	v.mu.RUnlock()
	if err != nil {
		return ledger.Head{}, err
	}
	if lg == nil {
		if err := v.verifyAll(ctx); err != nil {
			return ledger.Head{}, err
		}
	}
	v.extend.Lock()
	defer v.extend.Unlock()
	v.mu.RLock()
	lg, checked, err := v.lg, v.checked, v.err
	v.mu.RUnlock()
	if err != nil {
		return ledger.Head{}, err
	}
	// Extend a copy: readers keep the verified one meanwhile, and a
	// failure leaves it as it was.
	next := cloneLog(lg)
	checked, err = v.st.ExtendLedger(ctx, next, checked)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			v.err = err
			v.log("ledger verification failed", "err", err)
		}
		return ledger.Head{}, err
	}
	v.lg, v.checked = next, checked
	return next.Head(), nil
}

// cloneLog copies a log cheaply: a Log only appends, so the copy shares
// the hashes it has and the next Append on either copies if it must.
func cloneLog(l *ledger.Log) *ledger.Log {
	c := *l
	return &c
}

// entries iterates over the ledger's first h.Size entries, each checked
// against the verified tree.
func (v *ledgerView) entries(ctx context.Context, h ledger.Head) iter.Seq2[ledger.Entry, error] {
	v.mu.RLock()
	lg := v.lg
	v.mu.RUnlock()
	return func(yield func(ledger.Entry, error) bool) {
		if lg == nil || lg.Size() < h.Size {
			yield(ledger.Entry{}, fmt.Errorf("%w: head %d is not verified", cove.ErrLedger, h.Size))
			return
		}
		var want uint64 = 1
		for e, err := range v.st.EntriesFrom(ctx, 1, h.Size) {
			if err == nil {
				if err = checkLeaf(lg, e, want); err != nil {
					v.fail(err) // the store changed under the verified view
				}
			}
			if err != nil {
				yield(ledger.Entry{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
			want++
		}
		if want != h.Size+1 && ctx.Err() == nil {
			err := fmt.Errorf("%w: %d entries read, the verified head has %d", cove.ErrLedger, want-1, h.Size)
			v.fail(err)
			yield(ledger.Entry{}, err)
		}
	}
}

// fail records a verification failure: it sticks until a whole
// verification passes.
func (v *ledgerView) fail(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err == nil {
		v.err = err
		v.log("ledger verification failed", "err", err)
	}
}

// checkLeaf checks that e is entry want of the verified tree.
func checkLeaf(lg *ledger.Log, e ledger.Entry, want uint64) error {
	if e.Seq != want {
		return fmt.Errorf("%w: entry %d where %d was expected", cove.ErrLedger, e.Seq, want)
	}
	leaf, err := lg.ReadHashes([]int64{tlog.StoredHashIndex(0, int64(e.Seq)-1)})
	if err != nil {
		return err
	}
	if e.RecordHash() != leaf[0] {
		return fmt.Errorf("%w: entry %d changed since it was verified", cove.ErrLedger, e.Seq)
	}
	return nil
}

// disclosure returns the disclosure report of the verified ledger, folded
// at most once per disclosureMaxAge.
func (v *ledgerView) disclosure(ctx context.Context, now func() time.Time) (*report.Disclosure, error) {
	v.discMu.Lock()
	defer v.discMu.Unlock()
	if v.disc != nil && time.Since(v.discTime) < disclosureMaxAge {
		v.mu.RLock()
		err := v.err
		v.mu.RUnlock()
		return v.disc, err
	}
	h, err := v.head(ctx)
	if err != nil {
		return nil, err
	}
	if v.disc != nil && v.disc.Ledger == h {
		d := *v.disc // the same ledger: only the time changes
		d.Generated = now().UTC()
		v.disc, v.discTime = &d, time.Now()
		return v.disc, nil
	}
	d, err := report.NewDisclosure(v.entries(ctx, h), h, now())
	if err != nil {
		return nil, err
	}
	v.disc, v.discTime = d, time.Now()
	return d, nil
}

// run verifies the whole ledger every period until ctx ends.
func (v *ledgerView) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			v.verifyAll(ctx)
		}
	}
}
