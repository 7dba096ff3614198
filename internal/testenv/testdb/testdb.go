// Package testdb gives tests a fresh database of each kind Berth supports:
// an SQLite file in a temp dir and a new PostgreSQL database on the server
// named by BERTH_TEST_POSTGRES_URL (hack/postgres.sh prints one).
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"github.com/berth-ml/berth/internal/testenv"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// EnvURL names the PostgreSQL server tests use (a role with CREATEDB).
const EnvURL = "BERTH_TEST_POSTGRES_URL"

// EnvRequire, when "1", makes a missing PostgreSQL fail tests instead of
// skipping them; the test script sets it so CI never skips silently.
const EnvRequire = "BERTH_REQUIRE_POSTGRES"

// Kind is a database kind to run a test against.
type Kind struct {
	Name string
	// URL returns a database URL for a new, empty database ("" for the
	// default SQLite file in dataDir).
	URL func(t testing.TB, dataDir string) string
}

// Kinds are SQLite and PostgreSQL.
var Kinds = []Kind{
	{Name: "sqlite", URL: func(t testing.TB, dataDir string) string { return "sqlite:" + filepath.Join(dataDir, "berth.db") }},
	{Name: "postgres", URL: Postgres},
}

// Postgres creates a fresh database and returns its URL; it is dropped when
// the test ends. Without a server the test is skipped, or fails when
// BERTH_REQUIRE_POSTGRES=1.
func Postgres(t testing.TB, _ string) string {
	testenv.SkipShort(t, "PostgreSQL")
	t.Helper()
	admin := os.Getenv(EnvURL)
	if admin == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s is not set but %s=1: run hack/postgres.sh", EnvURL, EnvRequire)
		}
		t.Skipf("no PostgreSQL: set %s (hack/postgres.sh prints one)", EnvURL)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := make([]byte, 6)
	rand.Read(b)
	name := "berth_test_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
