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
// without set-up.
func (s *Server) bootstrapOwner(ctx context.Context) error {
	won, err := s.store.ClaimMeta(ctx, "owner-token-bootstrapped", time.Now().UTC().Format(time.RFC3339))
	if err != nil || !won {
		return err
	}
	id, secret := newToken()
	t := &store.Token{Token: api.Token{ID: id, Role: api.RoleOwner, Description: "created on first start"}, Hash: hashToken(secret)}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return err
	}
	path := filepath.Join(s.cfg.DataDir, AdminTokenFile)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	s.log.Info("created the first owner token", "id", id, "file", path)
	return nil
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
