//go:build unix

package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/secretbox"
	"github.com/berth-ml/berth/internal/store"
)

// The database and its WAL files are the owner's only, even in a data
// directory that already exists and under a permissive umask.
func TestDatabaseFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	box, _ := secretbox.New(make([]byte, 32))
	for range 2 { // made, then opened again
		s, err := store.Open(context.Background(), "", dir, box)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateToken(context.Background(), &store.Token{Token: api.Token{ID: "tok-1" + fmt.Sprint(time.Now().UnixNano()), Role: "owner"}, Hash: fmt.Sprint(time.Now().UnixNano())}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"berth.db", "berth.db-wal", "berth.db-shm"} {
			st, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s is %v", f, st.Mode().Perm())
			}
		}
		s.Close()
	}
}
