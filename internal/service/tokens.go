package service

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/store"
	"github.com/golang-jwt/jwt/v5"
)

const signingKeyMeta = "service-token-signing-key"

// signingKey returns the control plane's token signing key, made once per
// database (sealed in the meta table) so every server signs alike.
func signingKey(ctx context.Context, st *store.Store) (*ecdsa.PrivateKey, error) {
	for attempt := 0; attempt < 3; attempt++ {
		if v, err := st.GetMeta(ctx, signingKeyMeta); err == nil {
			der, err := st.Open(v)
			if err != nil {
				return nil, err
			}
			return x509.ParseECPrivateKey(der)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		if won, err := st.ClaimMeta(ctx, signingKeyMeta, st.Seal(der)); err != nil {
			return nil, err
		} else if won {
			return k, nil
		}
	}
	return nil, errors.New("could not settle the token signing key")
}

// PublicKeyPEM is the verification key front ends get in routes.
func PublicKeyPEM(k *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// TokenLifetime is how long a service token is valid.
const TokenLifetime = time.Hour

// TokenAudience is the audience of a service's tokens: its workspace and
// unique id, so one signing key serves every workspace without a token
// for service S in workspace A opening S in workspace B.
func TokenAudience(sv *store.Service) string { return "berth:" + sv.WorkspaceID + "/" + sv.ID }

// SignToken makes a short-lived JWT for an audience (a service's or an
// endpoint's) and its subject, valid from now.
func SignToken(ctx context.Context, st *store.Store, audience, subject string, now time.Time) (*api.ServiceToken, error) {
	k, err := signingKey(ctx, st)
	if err != nil {
		return nil, err
	}
	exp := now.Add(TokenLifetime)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"aud": audience, "sub": subject, "iat": now.Unix(), "exp": exp.Unix(), "iss": "berth"}).SignedString(k)
	return &api.ServiceToken{AccessToken: tok, TokenType: "Bearer", ExpiryOn: exp.UTC()}, err
}

// Access is the part of a front-end route that says who may call it: the
// hashes of key-auth keys (secrets primaryKey and secondaryKey), or the
// token verification key and audience.
func Access(ctx context.Context, st *store.Store, auth string, secrets map[string]string, audience string) (keyHashes []string, publicKey, aud string, err error) {
	switch auth {
	case api.AuthKey:
		return []string{frontend.HashKey(secrets["primaryKey"]), frontend.HashKey(secrets["secondaryKey"])}, "", "", nil
	case api.AuthToken:
		k, err := signingKey(ctx, st)
		if err != nil {
			return nil, "", "", err
		}
		publicKey, err = PublicKeyPEM(k)
		return nil, publicKey, audience, err
	}
	return nil, "", "", nil
}

// NewKey is a random service key.
func NewKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
