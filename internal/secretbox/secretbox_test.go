package secretbox

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpenAndKeyFile(t *testing.T) {
	dir := t.TempDir()
	b, err := Load(dir, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	secret := []byte("apiVersion: v1\nusers:\n- token: s3cr3t-token")
	sealed := b.Seal(secret)
	if strings.Contains(sealed, "s3cr3t") {
		t.Fatal("sealed value contains the plaintext")
	}
	if b.Seal(secret) == sealed {
		t.Fatal("two seals of one value are equal: nonce not random")
	}
	// A second load reads the same key.
	b2, err := Load(dir, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	got, err := b2.Open(sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q, %v", got, err)
	}
	// Another key cannot open it.
	other, _ := Load(t.TempDir(), func(string) string { return "" })
	if _, err := other.Open(sealed); err == nil {
		t.Fatal("another key opened the value")
	}
}

func TestKeyFromEnvironment(t *testing.T) {
	env := func(k string) string {
		if k == EnvKey {
			return "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		}
		return ""
	}
	dir := t.TempDir()
	if _, err := Load(dir, env); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err == nil {
		t.Fatal("key file written although the key came from the environment")
	}
	bad := func(string) string { return "c2hvcnQ=" }
	if _, err := Load(dir, bad); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Fatalf("short key: %v", err)
	}
}
