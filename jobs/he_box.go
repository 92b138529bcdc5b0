package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he"
	"github.com/covedata/cove/store"
)

// ShareBox is the ShareSource of a sandbox whose key holders come to it
// (the API): the Runner parks each share request in the box, key holders
// list the requests waiting for them, fetch one, compute their share on
// their own side and deliver it. Deliver checks the approval in the ledger,
// records the share (he.share) and only then hands it to the waiting
// release; a share that cannot be recorded is not used (fail closed).
// Safe for concurrent use.
type ShareBox struct {
	st   *store.Store
	wait time.Duration

	mu      sync.Mutex
	pending map[boxKey]*boxEntry
}

type boxKey struct {
	provider string
	session  [32]byte
}

type boxEntry struct {
	info    he.ShareRequestInfo
	request []byte
	asked   time.Time
	share   chan []byte // buffered 1: the delivered share
}

// DefaultShareWait bounds how long a release waits for a key holder's share.
const DefaultShareWait = 10 * time.Minute

// NewShareBox returns an empty box over the sandbox's store; a release
// waits at most wait (≤ 0: DefaultShareWait) for each holder's share, then
// fails (refunded).
func NewShareBox(st *store.Store, wait time.Duration) *ShareBox {
	if wait <= 0 {
		wait = DefaultShareWait
	}
	return &ShareBox{st: st, wait: wait, pending: map[boxKey]*boxEntry{}}
}

// recordsShares tells releaseHE that the box records shares itself (as
// they are delivered) and that every holder may be asked at once.
func (b *ShareBox) recordsShares() {}

// Share implements ShareSource: it parks request for provider and waits
// for the provider's delivery, the box's wait, or ctx.
func (b *ShareBox) Share(ctx context.Context, provider string, request []byte) ([]byte, error) {
	info, err := he.PeekShareRequest(request)
	if err != nil {
		return nil, err
	}
	k := boxKey{provider, info.Session}
	e := &boxEntry{info: info, request: request, asked: time.Now(), share: make(chan []byte, 1)}
	b.mu.Lock()
	if _, dup := b.pending[k]; dup {
		b.mu.Unlock()
		return nil, fmt.Errorf("%w: a share request of session %x is already waiting for %s", cove.ErrPrivacy, info.Session[:8], provider)
	}
	b.pending[k] = e
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.pending, k)
		b.mu.Unlock()
	}()
	t := time.NewTimer(b.wait)
	defer t.Stop()
	select {
	case sh := <-e.share:
		return sh, nil
	case <-t.C:
		return nil, fmt.Errorf("%w: key holder %s gave no share within %v", cove.ErrPrivacy, provider, b.wait)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for key holder %s: %v", cove.ErrCancelled, provider, context.Cause(ctx))
	}
}

// PendingShare is a share request waiting for one key holder.
type PendingShare struct {
	Job        string    `json:"job"`
	Output     string    `json:"output"`
	Session    string    `json:"session"`
	Ciphertext string    `json:"ciphertext_sha256"`
	Recipient  string    `json:"recipient_sha256"`
	Keys       string    `json:"keys"`
	LedgerSeq  uint64    `json:"approval_seq"` // the he.approved entry
	Bytes      int       `json:"bytes"`        // size of the serialized request
	Since      time.Time `json:"since"`
}

// Pending lists the requests waiting for provider, oldest first.
func (b *ShareBox) Pending(ctx context.Context, provider string) ([]PendingShare, error) {
	b.mu.Lock()
	var es []*boxEntry
	for k, e := range b.pending {
		if k.provider == provider {
			es = append(es, e)
		}
	}
	b.mu.Unlock()
	slices.SortFunc(es, func(a, b *boxEntry) int { return a.asked.Compare(b.asked) })
	out := make([]PendingShare, 0, len(es))
	for _, e := range es {
		p, err := b.describe(ctx, e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (b *ShareBox) describe(ctx context.Context, e *boxEntry) (PendingShare, error) {
	a, err := b.st.HEApprovalBySession(ctx, hex.EncodeToString(e.info.Session[:]))
	if err != nil {
		return PendingShare{}, err
	}
	return PendingShare{Job: a.Job, Output: a.Output, Session: a.Session, Ciphertext: a.Ciphertext, Recipient: a.Recipient, Keys: a.Keys,
		LedgerSeq: a.Seq, Bytes: len(e.request), Since: e.asked.UTC()}, nil
}

// Request returns the serialized request of session (hex) waiting for
// provider, and its description.
func (b *ShareBox) Request(ctx context.Context, provider, session string) ([]byte, PendingShare, error) {
	e, err := b.entry(provider, session)
	if err != nil {
		return nil, PendingShare{}, err
	}
	p, err := b.describe(ctx, e)
	return e.request, p, err
}

func (b *ShareBox) entry(provider, session string) (*boxEntry, error) {
	raw, err := hex.DecodeString(session)
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("%w: session must be 64 hex digits", cove.ErrInvalid)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.pending[boxKey{provider, [32]byte(raw)}]
	if !ok {
		return nil, fmt.Errorf("%w: no share request of session %.16s waits for %s", cove.ErrNotFound, session, provider)
	}
	return e, nil
}

// DeliveredShare is what the sandbox recorded of a delivered share.
type DeliveredShare struct {
	Job         string `json:"job"`
	Output      string `json:"output"`
	Provider    string `json:"provider"`
	Session     string `json:"session"`
	Ciphertext  string `json:"ciphertext_sha256"`
	ShareSHA256 string `json:"share_sha256"`
}

// Deliver takes provider's key-switch share for job. In order: the share
// names provider and a session of job; the session's approval is in the
// ledger, which verifies (store.CheckHEApproval); a second share of the
// ciphertext from provider is refused (ErrPrivacy); the share is recorded
// with its ledger entry (store.RecordHEShare) and only then handed to the
// waiting release. The share's own validity (shape, session) is checked
// again when the release combines the shares.
func (b *ShareBox) Deliver(ctx context.Context, provider, job string, share []byte) (DeliveredShare, error) {
	var d DeliveredShare
	who, session, err := he.PeekReleaseShare(share)
	if err != nil {
		return d, err
	}
	if who != provider {
		return d, fmt.Errorf("%w: the share is %s's, not the caller's (%s)", cove.ErrInvalid, who, provider)
	}
	ses := hex.EncodeToString(session[:])
	a, err := b.st.HEApprovalBySession(ctx, ses)
	if err != nil {
		return d, fmt.Errorf("%w: no release approval in the ledger for this share's session", cove.ErrPrivacy)
	}
	if a.Job != job {
		return d, fmt.Errorf("%w: the share's session belongs to another job than %s", cove.ErrInvalid, job)
	}
	if err := b.st.CheckHEApproval(ctx, a.Job, a.Ciphertext, a.Recipient, a.Seq); err != nil {
		return d, err
	}
	if given, err := b.st.HEShareGiven(ctx, provider, a.Ciphertext); err != nil {
		return d, err
	} else if given {
		return d, fmt.Errorf("%w: provider %s already gave a share of this ciphertext (job %s, output %s)", cove.ErrPrivacy, provider, a.Job, a.Output)
	}
	e, err := b.entry(provider, ses)
	if err != nil {
		return d, err
	}
	sum := sha256.Sum256(share)
	d = DeliveredShare{Job: a.Job, Output: a.Output, Provider: provider, Session: ses, Ciphertext: a.Ciphertext, ShareSHA256: hex.EncodeToString(sum[:])}
	if err := b.st.RecordHEShare(ctx, store.HEShare{Job: a.Job, Output: a.Output, Provider: provider, Ciphertext: a.Ciphertext,
		Session: ses, ShareSHA256: d.ShareSHA256}); err != nil {
		return DeliveredShare{}, err
	}
	select {
	case e.share <- share:
	default: // a share was handed over already: RecordHEShare refused a second one, so this cannot happen
	}
	return d, nil
}
