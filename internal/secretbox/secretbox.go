// Package secretbox encrypts secrets at rest (kubeconfigs, private keys,
// service keys) with AES-256-GCM, so the store never holds them in clear.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the name of the key file in the data directory.
const KeyFile = "secret.key"

// EnvKey is the environment variable that may carry the key (base64 of 32
// bytes); several servers sharing one database must share the key.
const EnvKey = "BERTH_SECRET_KEY"

// prefix marks sealed values so a reader can tell them from plain ones.
const prefix = "v1:"

// Box seals and opens values with one AES-256-GCM key.
type Box struct {
	aead cipher.AEAD
}

// New returns a box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Load returns the box for a server: the key from the environment variable
// when set, otherwise from DATA_DIR/secret.key, created (mode 0600) when absent.
func Load(dataDir string, getenv func(string) string) (*Box, error) {
	if v := getenv(EnvKey); strings.TrimSpace(v) != "" {
		return decode(EnvKey, v)
	}
	path := filepath.Join(dataDir, KeyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		enc := base64.StdEncoding.EncodeToString(key) + "\n"
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return Load(dataDir, func(string) string { return "" })
		}
		if err != nil {
			return nil, fmt.Errorf("create secret key: %w", err)
		}
		if _, err := f.WriteString(enc); err != nil {
			f.Close()
			return nil, fmt.Errorf("write secret key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return New(key)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	return decode(path, string(data))
}

// decode is the box of a base64 key (spaces around it do not count) read
// from where, which its errors name.
func decode(where, b64 string) (*Box, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, fmt.Errorf("%s: not valid base64: %w", where, err)
	}
	b, err := New(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return b, nil
}

// Seal encrypts plaintext; the result is printable text safe to store.
func (b *Box) Seal(plaintext []byte) string {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	out := b.aead.Seal(nonce, nonce, plaintext, nil)
	return prefix + base64.StdEncoding.EncodeToString(out)
}

// Open decrypts a value made by Seal.
func (b *Box) Open(sealed string) ([]byte, error) {
	if sealed == "" {
		return nil, nil
	}
	if !strings.HasPrefix(sealed, prefix) {
		return nil, errors.New("sealed value has an unknown format")
	}
	raw, err := base64.StdEncoding.DecodeString(sealed[len(prefix):])
	if err != nil {
		return nil, fmt.Errorf("sealed value: %w", err)
	}
	n := b.aead.NonceSize()
	if len(raw) < n {
		return nil, errors.New("sealed value is too short")
	}
	pt, err := b.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return nil, errors.New("cannot decrypt a stored secret: wrong secret key?")
	}
	return pt, nil
}
