// Package artifact stores model artifacts for the control plane: written
// once under a key, read back to deliver models to replicas and users.
// The default store is a directory in the data dir; an S3-compatible bucket
// (S3) lets several control-plane servers share the artifacts.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Store keeps artifacts by key ("<workspace-id>/<model-id>").
type Store interface {
	// Put writes r under key and returns its size and SHA-256 (hex).
	Put(ctx context.Context, key string, r io.Reader) (int64, string, error)
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes the artifact named prefix and every artifact
	// under it: every key that starts with prefix + "/".
	DeletePrefix(ctx context.Context, prefix string) error
	// List returns the keys under prefix + "/", sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// ErrFull is a store that has no room left: a full disk, or an S3 server
// that refuses writes for lack of space (MinIO's 507 XMinioStorageFull).
var ErrFull = errors.New("the artifact store is out of space")

// Appender is a store whose artifacts can grow: Append adds data to the
// end of key's artifact, creating it. Dir is one; S3 objects cannot grow.
type Appender interface {
	Append(ctx context.Context, key string, data []byte) error
}

// ErrNotFound means no artifact has the key.
var ErrNotFound = errors.New("artifact not found")

// Dir stores artifacts as files under a directory.
type Dir struct{ Root string }

func (d Dir) String() string { return "directory " + d.Root }

func (d Dir) path(key string) (string, error) {
	clean := filepath.Clean("/" + key)
	if clean == "/" || strings.Contains(key, "..") {
		return "", fmt.Errorf("artifact key %q is not valid", key)
	}
	return filepath.Join(d.Root, clean), nil
}

// Put writes to a temporary file and renames it into place, so a reader
// never sees half an artifact.
func (d Dir) Put(ctx context.Context, key string, r io.Reader) (int64, string, error) {
	p, err := d.path(key)
	if err != nil {
		return 0, "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return 0, "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), uploadPrefix+"*")
	if err != nil {
		return 0, "", err
	}
	uploading.Store(tmp.Name(), true)
	defer uploading.Delete(tmp.Name())
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), &ctxReader{ctx: ctx, r: r})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.ENOSPC) {
		return 0, "", fmt.Errorf("%w: no space left on the server's disk", ErrFull)
	}
	if err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// uploadPrefix starts the names of Put's temporary files.
const uploadPrefix = ".upload-"

// uploading holds the temporary files of the uploads in progress in this
// process, which RemoveStaleUploads leaves alone.
var uploading sync.Map

// RemoveStaleUploads deletes the temporary files that uploads left behind
// when their server was killed: every ".upload-*" file under the store's
// folder but those of uploads in progress in this process. A server runs
// it when it opens its store; it returns how many files it removed.
func (d Dir) RemoveStaleUploads() (int, error) {
	removed := 0
	err := filepath.WalkDir(d.Root, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if e.IsDir() || !strings.HasPrefix(e.Name(), uploadPrefix) {
			return nil
		}
		if _, busy := uploading.Load(p); busy {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed++
		return nil
	})
	return removed, err
}

// Get opens an artifact.
func (d Dir) Get(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

// Delete removes an artifact (no error if it is gone).
func (d Dir) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// DeletePrefix removes a folder of artifacts.
func (d Dir) DeletePrefix(_ context.Context, prefix string) error {
	p, err := d.path(prefix)
	if err != nil {
		return err
	}
	return os.RemoveAll(p)
}

// List walks the folder of prefix (none: no keys), leaving out the
// temporary files of uploads.
func (d Dir) List(_ context.Context, prefix string) ([]string, error) {
	p, err := d.path(prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	err = filepath.WalkDir(p, func(q string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || e.IsDir() || strings.HasPrefix(e.Name(), uploadPrefix) {
			return err
		}
		rel, err := filepath.Rel(d.Root, q)
		keys = append(keys, filepath.ToSlash(rel))
		return err
	})
	slices.Sort(keys)
	return keys, err
}

// appendMu keeps appends to one file whole (one server uses a folder).
var appendMu sync.Mutex

// Append adds data to the end of the file of key.
func (d Dir) Append(_ context.Context, key string, data []byte) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	appendMu.Lock()
	defer appendMu.Unlock()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
