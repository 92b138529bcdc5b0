package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/covedata/cove"
	"github.com/covedata/cove/policy"
)

// Role is what a token may do.
type Role string

// The roles.
const (
	Authority Role = "authority"
	Provider  Role = "provider"
	Operator  Role = "operator"
	Public    Role = "public"
)

// Roles lists every role.
var Roles = []Role{Authority, Provider, Operator, Public}

// TokensFile is the token store's file name in the data directory.
const TokensFile = "tokens.db"

const tokenPrefix = "cove_"

// TokenInfo is a token's record: never the token itself.
type TokenInfo struct {
	ID      string     `json:"id"`
	Role    Role       `json:"role"`
	Subject string     `json:"subject"` // the operator or provider it acts for
	Note    string     `json:"note,omitempty"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
}

// Tokens keeps bearer tokens hashed. Safe for concurrent use.
type Tokens struct {
	db *sql.DB
}

// OpenTokens opens (creating if needed) the token store at path.
func OpenTokens(ctx context.Context, path string) (*Tokens, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("tokens: open %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS tokens (
		id TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, subject TEXT NOT NULL,
		note TEXT NOT NULL DEFAULT '', created TEXT NOT NULL, revoked TEXT)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("tokens: create schema in %s: %w", path, err)
	}
	return &Tokens{db: db}, nil
}

// Close closes the store.
func (t *Tokens) Close() error { return t.db.Close() }

// Create issues a token for role and subject. The token is returned once;
// only its SHA-256 is kept.
func (t *Tokens) Create(ctx context.Context, role Role, subject, note string) (token string, info TokenInfo, err error) {
	if !slices.Contains(Roles, role) {
		return "", info, fmt.Errorf("%w: role %q is not one of %v", cove.ErrInvalid, role, Roles)
	}
	if (role == Operator || role == Provider) && !policy.ValidName(subject) {
		return "", info, fmt.Errorf("%w: a %s token needs a subject that is a valid name", cove.ErrInvalid, role)
	}
	if len(subject) > 200 || len(note) > 1000 {
		return "", info, fmt.Errorf("%w: subject or note too long", cove.ErrLimit)
	}
	var idb [8]byte
	var secret [32]byte
	rand.Read(idb[:])
	rand.Read(secret[:])
	info = TokenInfo{ID: hex.EncodeToString(idb[:]), Role: role, Subject: subject, Note: note, Created: time.Now().UTC()}
	token = tokenPrefix + info.ID + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	_, err = t.db.ExecContext(ctx, `INSERT INTO tokens (id, hash, role, subject, note, created) VALUES (?, ?, ?, ?, ?, ?)`,
		info.ID, hashToken(token), string(role), subject, note, info.Created.Format(time.RFC3339Nano))
	if err != nil {
		return "", TokenInfo{}, fmt.Errorf("tokens: storing: %w", err)
	}
	return token, info, nil
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Check returns the record of a valid, unrevoked token, or an error
// wrapping errUnauthenticated.
func (t *Tokens) Check(ctx context.Context, token string) (TokenInfo, error) {
	id, ok := tokenID(token)
	if !ok {
		return TokenInfo{}, fmt.Errorf("%w: malformed token", errUnauthenticated)
	}
	info, hash, err := t.get(ctx, id)
	if errors.Is(err, cove.ErrNotFound) {
		// Compare anyway, so an unknown id costs what a known one does.
		subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(strings.Repeat("0", 64)))
		return TokenInfo{}, fmt.Errorf("%w: unknown token", errUnauthenticated)
	}
	if err != nil {
		return TokenInfo{}, err
	}
	if subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(hash)) != 1 {
		return TokenInfo{}, fmt.Errorf("%w: unknown token", errUnauthenticated)
	}
	if info.Revoked != nil {
		return TokenInfo{}, fmt.Errorf("%w: token %s was revoked", errUnauthenticated, info.ID)
	}
	return info, nil
}

func tokenID(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return "", false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(secret) != 43 {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return id, true
}

func (t *Tokens) get(ctx context.Context, id string) (TokenInfo, string, error) {
	var info TokenInfo
	var hash, role, created string
	var revoked sql.NullString
	err := t.db.QueryRowContext(ctx, `SELECT id, hash, role, subject, note, created, revoked FROM tokens WHERE id = ?`, id).
		Scan(&info.ID, &hash, &role, &info.Subject, &info.Note, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return info, "", fmt.Errorf("%w: token %s", cove.ErrNotFound, id)
	}
	if err != nil {
		return info, "", err
	}
	info.Role = Role(role)
	info.Created, _ = time.Parse(time.RFC3339Nano, created)
	if revoked.Valid {
		at, _ := time.Parse(time.RFC3339Nano, revoked.String)
		info.Revoked = &at
	}
	return info, hash, nil
}

// Revoke revokes a token by id.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	res, err := t.db.ExecContext(ctx, `UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL`,
		time.Now().UTC().Format(time.RFC3339Nano), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, _, err := t.get(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("%w: token %s is already revoked", cove.ErrExists, id)
	}
	return nil
}

// List lists every token's record.
func (t *Tokens) List(ctx context.Context) ([]TokenInfo, error) {
	rows, err := t.db.QueryContext(ctx, `SELECT id FROM tokens ORDER BY created, id`)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := make([]TokenInfo, 0, len(ids))
	for _, id := range ids {
		info, _, err := t.get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}
