package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/secretbox"
	"github.com/berth-ml/berth/internal/store"
)

// AdminTokenFile is where the first owner token is written in the data dir.
const AdminTokenFile = "admin.token"

const tokenPrefix = "bth_"

var roleRank = map[string]int{api.RoleReader: 1, api.RoleContributor: 2, api.RoleOwner: 3}

// hashToken is how tokens are stored: only their SHA-256. Tokens are 256
// random bits, so a fast hash is enough (no password stretching needed).
func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// newToken makes a token id and secret.
func newToken() (id, secret string) {
	b := make([]byte, 32)
	rand.Read(b)
	secret = tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	idb := make([]byte, 6)
	rand.Read(idb)
	return "tok-" + hex.EncodeToString(idb), secret
}

// bootstrapOwner creates the first owner token once per database and writes
// it to DATA_DIR/admin.token (0600) so the CLI works against a local server
// without set-up. The file is written durably before the transaction that
// marks the bootstrap commits: a crash in between leaves no mark, and the
// next start makes the token again.
func (s *Server) bootstrapOwner(ctx context.Context) error {
	if secret := strings.TrimSpace(s.cfg.Getenv(EnvOwnerToken)); secret != "" {
		return s.adoptOwnerToken(ctx, secret)
	}
	errLost := errors.New("another server made the first owner token")
	path := filepath.Join(s.cfg.DataDir, AdminTokenFile)
	var id string
	err := s.store.InTx(ctx, func(tx *store.Store) error {
		won, err := tx.ClaimMeta(ctx, "owner-token-bootstrapped", time.Now().UTC().Format(time.RFC3339))
		if err != nil {
			return err
		}
		if !won {
			return errLost
		}
		id, err = createOwnerToken(ctx, tx, path, "created on first start")
		return err
	})
	if errors.Is(err, errLost) {
		return nil
	}
	if err == nil {
		s.log.Info("created the first owner token", "id", id, "file", path)
	}
	return err
}

// EnvOwnerToken may carry an owner token chosen outside Berth (the Helm
// chart generates one into a Secret): the server adopts it instead of
// writing DATA_DIR/admin.token, so the operator can read it where the
// servers have no shared disk.
const EnvOwnerToken = "BERTH_OWNER_TOKEN"

// adoptOwnerToken records secret as an owner token, once per database and
// secret (a meta row keyed by its hash, so replicas starting together make
// one, and a revoked token is not brought back by the next start). It also
// takes the place of the first-start token: no admin.token file is
// written. The secret is never logged.
func (s *Server) adoptOwnerToken(ctx context.Context, secret string) error {
	rest, ok := strings.CutPrefix(secret, tokenPrefix)
	if !ok || len(rest) < 43 || strings.Trim(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return fmt.Errorf("%s must be %s followed by at least 43 letters, digits, '-' or '_' (256 random bits), such as the Helm chart generates", EnvOwnerToken, tokenPrefix)
	}
	// No first-start token either, now or when a later start lacks the
	// variable (a failed statement would abort a PostgreSQL transaction,
	// so this is its own).
	if _, err := s.store.ClaimMeta(ctx, "owner-token-bootstrapped", time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	hash := hashToken(secret)
	errAdopted := errors.New("adopted before")
	var id string
	err := s.store.InTx(ctx, func(tx *store.Store) error {
		now := time.Now().UTC().Format(time.RFC3339)
		won, err := tx.ClaimMeta(ctx, "owner-token-adopted:"+hash, now)
		if err != nil {
			return err
		}
		if !won {
			return errAdopted
		}
		id, _ = newToken()
		t := &store.Token{Token: api.Token{ID: id, Role: api.RoleOwner, Description: "adopted from " + EnvOwnerToken}, Hash: hash}
		return tx.CreateToken(ctx, t)
	})
	if errors.Is(err, errAdopted) {
		return nil
	}
	if err == nil {
		s.log.Info("adopted the owner token from "+EnvOwnerToken, "id", id)
	}
	return err
}

// createOwnerToken records a new owner token and writes its secret to path
// (write, fsync, rename, fsync the directory).
func createOwnerToken(ctx context.Context, st *store.Store, path, description string) (string, error) {
	id, secret := newToken()
	t := &store.Token{Token: api.Token{ID: id, Role: api.RoleOwner, Description: description}, Hash: hashToken(secret)}
	if err := st.CreateToken(ctx, t); err != nil {
		return "", err
	}
	if err := writeFileDurably(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return id, nil
}

// writeFileDurably replaces path with data so that after a crash it holds
// either the old content or all of the new.
func writeFileDurably(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // not supported everywhere (Windows); the rename is what matters
		d.Close()
	}
	return nil
}

// ResetOwnerToken makes a new owner token and writes it to
// DATA_DIR/admin.token, for an owner locked out (the file lost, every owner
// token revoked). It needs what the server needs to open its store — the
// data directory with its secret key (or BERTH_SECRET_KEY) and the
// database — so only someone with local access to the server can use it.
// Other tokens are left as they are.
func ResetOwnerToken(ctx context.Context, cfg Config) (id, path string, err error) {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if st, err := os.Stat(cfg.DataDir); err != nil || !st.IsDir() {
		return "", "", fmt.Errorf("data directory %s: not found (give the server's --data-dir)", cfg.DataDir)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, secretbox.KeyFile)); err != nil && cfg.Getenv(secretbox.EnvKey) == "" {
		return "", "", fmt.Errorf("%s holds no secret key (%s) and %s is not set: is it the server's data directory?", cfg.DataDir, secretbox.KeyFile, secretbox.EnvKey)
	}
	box, err := secretbox.Load(cfg.DataDir, cfg.Getenv)
	if err != nil {
		return "", "", err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir, box)
	if err != nil {
		return "", "", err
	}
	defer st.Close()
	path = filepath.Join(cfg.DataDir, AdminTokenFile)
	id, err = createOwnerToken(ctx, st, path, "reset with berth server reset-owner-token")
	return id, path, err
}

// principal is the caller of a request.
type principal struct {
	token *store.Token
	// ws is the path's {workspace}, loaded once the token may act in it.
	ws *api.Workspace
}

func (p *principal) can(role string) bool { return roleRank[p.token.Role] >= roleRank[role] }

// inWorkspace reports whether the caller may act in workspace ws.
func (p *principal) inWorkspace(ws string) bool {
	return p.token.Workspace == "" || strings.EqualFold(p.token.Workspace, ws)
}

type principalKey struct{}

// tokenCache keeps recent lookups for a few seconds so a busy client does
// not cost a database query per call; revocation takes effect within ttl.
type tokenCache struct {
	mu  sync.Mutex
	m   map[string]cachedToken
	ttl time.Duration
}

type cachedToken struct {
	t   *store.Token
	exp time.Time
}

func (c *tokenCache) get(hash string) *store.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok || time.Now().After(e.exp) {
		return nil
	}
	return e.t
}

func (c *tokenCache) put(hash string, t *store.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 10000 {
		c.m = map[string]cachedToken{}
	}
	c.m[hash] = cachedToken{t: t, exp: time.Now().Add(c.ttl)}
}

func (c *tokenCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = map[string]cachedToken{}
}

// authenticate finds the caller from the bearer token.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, problem.New(http.StatusUnauthorized, api.CodeUnauthorized, "this call needs a bearer token (Authorization: Bearer <token>); a local server's owner token is in DATA_DIR/%s", AdminTokenFile)
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, problem.New(http.StatusUnauthorized, api.CodeUnauthorized, "the Authorization header must be \"Bearer <token>\"")
	}
	hash := hashToken(strings.TrimSpace(secret))
	if t := s.tokens.get(hash); t != nil {
		return &principal{token: t}, nil
	}
	t, err := s.store.TokenByHash(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem.New(http.StatusUnauthorized, api.CodeUnauthorized, "the token is not valid (unknown or revoked)")
	}
	if err != nil {
		return nil, err
	}
	s.tokens.put(hash, t)
	go s.store.TouchToken(context.Background(), t.ID, time.Now())
	return &principal{token: t}, nil
}
