package he

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/covedata/cove"
)

// Files of a provider's directory (ProviderDir).
const (
	ProviderInfoFile = "provider.json" // id and parameters
	SecretFile       = "secret.key"    // MarshalSecret, mode 0600
	ShareLogFile     = "shares.log"    // one line per key-switch share given
	keygenPattern    = "keygen-%s.share"
)

// ProviderDir is a key holder's directory: its secret share, its id and
// parameters, the keygen share it gave per setup and the log of the
// key-switch shares it gave. Nothing in it ever enters the sandbox; the
// CLI (`cove provider`) and the SDK both keep a provider's side here.
type ProviderDir string

type providerInfo struct {
	ID     string        `json:"id"`
	Params ParamsLiteral `json:"params"`
}

// validName is the store's name rule (policy.ValidName), repeated here
// because file names are built from it.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func validName(s string) bool { return namePattern.MatchString(s) }

// Keygen creates (first time: id needed) or loads the provider's secret
// share and returns its keygen share for the setup named name, kept in the
// directory. A provider gives one keygen share per setup: asking again
// returns the stored share, never a new one (two shares on the same
// reference string would leak the secret). A marker, durable before the
// share is drawn, makes an interrupted keygen fail closed.
func (d ProviderDir) Keygen(id, name string, s Setup) ([]byte, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: HE setup name %q", cove.ErrInvalid, name)
	}
	sharePath := filepath.Join(string(d), fmt.Sprintf(keygenPattern, name))
	if b, err := os.ReadFile(sharePath); err == nil {
		return b, nil
	}
	pr, err := d.Open(id, s.Params, ProviderOptions{})
	if err != nil {
		return nil, err
	}
	marker := sharePath + ".started"
	if _, err := os.Stat(marker); err == nil {
		return nil, fmt.Errorf("%w: provider's keygen for setup %s was interrupted; register a new setup", cove.ErrPrivacy, name)
	}
	if err := WriteFileDurable(marker, nil, 0o600); err != nil {
		return nil, err
	}
	b, err := pr.KeygenShare(s)
	if err != nil {
		return nil, err
	}
	if err := WriteFileDurable(sharePath, b, 0o644); err != nil {
		return nil, err
	}
	return b, nil
}

// Open loads the provider of the directory, creating it (with id, a fresh
// secret share from crypto/rand) if the directory has none yet. A secret
// file readable by others is refused.
func (d ProviderDir) Open(id string, p Params, opts ProviderOptions) (*Provider, error) {
	dir := string(d)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	info, err := os.ReadFile(filepath.Join(dir, ProviderInfoFile))
	if errors.Is(err, fs.ErrNotExist) {
		if !validName(id) {
			return nil, fmt.Errorf("%w: a new provider needs an id (a valid name), not %q", cove.ErrInvalid, id)
		}
		pr, err := NewProvider(p, id, opts)
		if err != nil {
			return nil, err
		}
		sec, err := pr.MarshalSecret()
		if err != nil {
			return nil, err
		}
		if err := WriteFileDurable(filepath.Join(dir, SecretFile), sec, 0o600); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(providerInfo{ID: id, Params: p.Literal()})
		if err := WriteFileDurable(filepath.Join(dir, ProviderInfoFile), b, 0o644); err != nil {
			return nil, err
		}
		return pr, nil
	}
	if err != nil {
		return nil, err
	}
	var pi providerInfo
	if err := json.Unmarshal(info, &pi); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", cove.ErrInvalid, ProviderInfoFile, err)
	}
	if id != "" && id != pi.ID {
		return nil, fmt.Errorf("%w: %s holds provider %q, not %q", cove.ErrInvalid, dir, pi.ID, id)
	}
	mine, err := NewParams(pi.Params)
	if err != nil {
		return nil, err
	}
	if a, b := mine.Literal(), p.Literal(); a.Scheme != b.Scheme || a.LogN != b.LogN || !slices.Equal(a.LogQ, b.LogQ) || !slices.Equal(a.LogP, b.LogP) {
		return nil, fmt.Errorf("%w: provider %s's secret is for other parameters", cove.ErrInvalid, pi.ID)
	}
	secPath := filepath.Join(dir, SecretFile)
	if fi, err := os.Stat(secPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is readable by others (mode %v); chmod 600 it", cove.ErrInvalid, secPath, fi.Mode().Perm())
	}
	sec, err := os.ReadFile(secPath)
	if err != nil {
		return nil, err
	}
	return LoadProvider(p, sec, opts)
}

// Info returns the id and parameters of the provider of the directory.
func (d ProviderDir) Info() (string, Params, error) {
	b, err := os.ReadFile(filepath.Join(string(d), ProviderInfoFile))
	if err != nil {
		return "", Params{}, fmt.Errorf("%w: no provider in %s: %v", cove.ErrNotFound, string(d), err)
	}
	var pi providerInfo
	if err := json.Unmarshal(b, &pi); err != nil {
		return "", Params{}, fmt.Errorf("%w: %s: %v", cove.ErrInvalid, ProviderInfoFile, err)
	}
	p, err := NewParams(pi.Params)
	return pi.ID, p, err
}

// ShareLog returns the directory's durable share log.
func (d ProviderDir) ShareLog() *FileShareLog {
	return &FileShareLog{Path: filepath.Join(string(d), ShareLogFile)}
}

// FileShareLog is a provider's durable ShareLog: an append-only file of
// (provider, ciphertext, session) lines, locked while it is read and
// appended, synced before Record returns. Safe for concurrent use, across
// processes too.
type FileShareLog struct {
	Path string
	mu   sync.Mutex
}

// Record implements ShareLog.
func (l *FileShareLog) Record(_ context.Context, provider string, ct, session [32]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%w: share log: %v", cove.ErrLedger, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("%w: share log: %v", cove.ErrLedger, err)
	}
	b, err := os.ReadFile(l.Path)
	if err != nil {
		return fmt.Errorf("%w: share log: %v", cove.ErrLedger, err)
	}
	cts, ses := hex.EncodeToString(ct[:]), hex.EncodeToString(session[:])
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != provider {
			continue
		}
		if f[1] == cts {
			return fmt.Errorf("%w: he: provider %q already gave a share for ciphertext %s", cove.ErrPrivacy, provider, cts[:16])
		}
		if f[2] == ses {
			return fmt.Errorf("%w: he: session %s reused", cove.ErrPrivacy, ses[:16])
		}
	}
	if _, err := fmt.Fprintf(f, "%s %s %s\n", provider, cts, ses); err != nil {
		return fmt.Errorf("%w: share log: %v", cove.ErrLedger, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%w: share log: %v", cove.ErrLedger, err)
	}
	return nil
}

// Count returns how many shares the log records.
func (l *FileShareLog) Count() int {
	b, _ := os.ReadFile(l.Path)
	return strings.Count(string(b), "\n")
}

// WriteFileDurable writes a file through a temporary one in the same
// directory, synced, then renamed: a crash leaves the old file or the new,
// never part of one. Key shares, keys, encrypted columns and key-switch
// shares are written with it, here and by the sandbox (jobs).
func WriteFileDurable(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
