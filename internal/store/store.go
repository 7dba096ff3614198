// Package store keeps Berth's durable state: workspaces, compute targets,
// operations with their events and leases, and API tokens. One schema and
// one implementation serve an embedded SQLite file (the default) and
// PostgreSQL (for several control-plane replicas sharing one database).
package store

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-ml/berth/internal/secretbox"
	"github.com/berth-ml/berth/internal/version"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	_ "modernc.org/sqlite"             // pure-Go SQLite driver "sqlite"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Errors callers branch on.
var (
	ErrNotFound  = errors.New("not found")
	ErrNameInUse = errors.New("name in use")
	// ErrLeaseLost means another server now owns the operation.
	ErrLeaseLost = errors.New("operation lease lost")
	// ErrNotEmpty means a workspace still has computes.
	ErrNotEmpty = errors.New("workspace not empty")
)

// ActiveOperationError is returned when a target already has an active operation.
type ActiveOperationError struct {
	Operation *Operation
}

func (e *ActiveOperationError) Error() string {
	if e.Operation == nil {
		return "another operation is in progress"
	}
	return fmt.Sprintf("operation %s (%s) is in progress on %s", e.Operation.ID, e.Operation.Kind, e.Operation.TargetName)
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store is a handle on the database; InTx gives one bound to a transaction.
type Store struct {
	db      *sql.DB
	q       querier
	dialect string
	box     *secretbox.Box
	rebind  *sync.Map // query text with ? → dialect's placeholders
	// Path is the SQLite file (empty for PostgreSQL).
	Path string
}

// Open connects to the database named by databaseURL — empty for the SQLite
// file DATA_DIR/berth.db, "sqlite:PATH", or "postgres://…" — and applies
// pending migrations. Secrets are sealed with box.
func Open(ctx context.Context, databaseURL, dataDir string, box *secretbox.Box) (*Store, error) {
	var driver, dsn, dialect, path string
	switch {
	case databaseURL == "":
		path = filepath.Join(dataDir, "berth.db")
		fallthrough
	case strings.HasPrefix(databaseURL, "sqlite:"):
		path = cmp.Or(path, strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//"))
		driver, dialect = "sqlite", SQLite
		// The database holds sealed secrets and token hashes: owner-only,
		// whatever the umask. SQLite gives its -wal and -shm files the
		// database file's mode.
		if err := privateFile(path); err != nil {
			return nil, err
		}
		v := url.Values{"_pragma": {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"},
			"_txlock": {"immediate"}}
		dsn = "file:" + path + "?" + v.Encode()
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		driver, dsn, dialect = "pgx", databaseURL, Postgres
	default:
		return nil, fmt.Errorf("--database %q: use postgres://… or sqlite:PATH (or nothing for DATA_DIR/berth.db)", redactURL(databaseURL))
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	if dialect == SQLite {
		db.SetMaxOpenConns(8)
	} else {
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	s := &Store{db: db, q: db, dialect: dialect, box: box, rebind: &sync.Map{}, Path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s database: %w", dialect, err)
	}
	if path != "" {
		for _, f := range []string{path + "-wal", path + "-shm"} {
			if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
				db.Close()
				return nil, err
			}
		}
	}
	return s, nil
}

// privateFile makes path (created if missing) readable by its owner only.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("database file: %w", err)
	}
	f.Close()
	return os.Chmod(path, 0o600)
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// Dialect returns SQLite or Postgres.
func (s *Store) Dialect() string { return s.dialect }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// InTx runs fn with a store bound to one transaction, committed if fn
// returns nil.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	if _, ok := s.q.(*sql.Tx); ok {
		return fn(s)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	t := *s
	t.q = tx
	if err := fn(&t); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (s *Store) sql(q string) string {
	if s.dialect != Postgres {
		return q
	}
	if v, ok := s.rebind.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	s.rebind.Store(q, out)
	return out
}

func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.q.ExecContext(ctx, s.sql(q), args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.q.QueryContext(ctx, s.sql(q), args...)
}

func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.q.QueryRowContext(ctx, s.sql(q), args...)
}

// scanner is a row to read: *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// found is a lookup's result, with no row as ErrNotFound.
func found[T any](v T, err error) (T, error) {
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, ErrNotFound
	}
	return v, err
}

// list runs a query and reads every row with scan, in order.
func list[T any](ctx context.Context, s *Store, scan func(scanner) (*T, error), q string, args ...any) ([]T, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, rows.Err()
}

// changedRow is the error of a statement meant to change a row: none when
// it changed no row.
func changedRow(res sql.Result, err, none error) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return none
	}
	return nil
}

func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	m := err.Error()
	return strings.Contains(m, "UNIQUE constraint failed") || strings.Contains(m, "SQLSTATE 23505") ||
		strings.Contains(m, "duplicate key value")
}

func (s *Store) migrate(ctx context.Context) error {
	if s.dialect == Postgres {
		// Serialise migrations of servers starting together.
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(7261001)"); err != nil {
			return err
		}
		defer conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(7261001)")
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	steps, err := migrationSteps()
	if err != nil {
		return err
	}
	// A database a newer Berth migrated is not this one's to use: its
	// servers already running keep going (a rolling upgrade), but an older
	// one does not start on it (a rollback past a migration).
	if at, err := s.SchemaVersion(ctx); err != nil {
		return err
	} else if known := steps[len(steps)-1].version; at > known {
		return fmt.Errorf("the database's schema is at version %d, newer than this berth (%s) knows (%d): a newer Berth upgraded it; run that version or a newer one", at, version.Get().Version, known)
	}
	for _, m := range steps {
		err = s.InTx(ctx, func(tx *Store) error {
			var n int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range splitStatements(m.sql) {
				if _, err := tx.q.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %s: %w", m.name, err)
				}
			}
			if m.run != nil {
				if err := m.run(ctx, tx); err != nil {
					return fmt.Errorf("migration %s: %w", m.name, err)
				}
			}
			_, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.version, m.name, ms(time.Now()))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// migration is one schema version: SQL (a file in migrations/), or Go
// code for what SQL cannot do the same way on both databases (rewriting
// JSON documents). Each runs once, in its own transaction with its record
// in schema_migrations.
type migration struct {
	version int
	name    string
	sql     string
	run     func(ctx context.Context, tx *Store) error
}

// goMigrations are the migrations written in Go, by version.
var goMigrations = []migration{
	{version: 4, name: "0004_typed_compute_settings", run: migrateTypedSettings},
}

// migrationSteps lists every migration, SQL and Go, by version.
func migrationSteps() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its version number", name)
		}
		body, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	out = append(out, goMigrations...)
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ { // sorted: a version twice is side by side
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version %d", out[i-1].name, out[i].name, out[i].version)
		}
	}
	return out, nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// splitStatements splits a migration file on semicolons at line ends,
// dropping comment-only pieces.
func splitStatements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// ClaimMeta records key=value once; it reports whether this call set it.
// Servers use it to do one-time work (like the first owner token) once
// even when several start together.
func (s *Store) ClaimMeta(ctx context.Context, key, value string) (bool, error) {
	_, err := s.exec(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)`, key, value)
	if isUniqueViolation(err) {
		return false, nil
	}
	return err == nil, err
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func fromMSPtr(v int64) *time.Time {
	if v == 0 {
		return nil
	}
	t := fromMS(v)
	return &t
}
