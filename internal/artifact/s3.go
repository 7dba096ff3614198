package artifact

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables with the S3 credentials (the AWS CLI's names).
const (
	EnvAccessKeyID     = "AWS_ACCESS_KEY_ID"
	EnvSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken    = "AWS_SESSION_TOKEN"
)

// DefaultS3Endpoint is used when an s3:// URL names no endpoint.
const DefaultS3Endpoint = "s3.amazonaws.com"

// DefaultPartSize is the multipart upload part size: Put holds one part in
// memory at a time, and an artifact can have up to 10,000 parts (160 GiB).
const DefaultPartSize = 16 << 20

// S3Config says where an S3 store keeps artifacts. The credentials never
// come from the URL, only from the environment (see ParseS3URL).
type S3Config struct {
	// Endpoint is HOST[:PORT] of the S3 API.
	Endpoint string
	Bucket   string
	// Prefix is put before every key ("" or ending in "/").
	Prefix string
	// Region is the bucket's region; "" lets the client find out.
	Region string
	// Insecure uses plain HTTP instead of HTTPS.
	Insecure     bool
	AccessKey    string
	SecretKey    string
	SessionToken string
	// PartSize is the multipart part size (0: DefaultPartSize).
	PartSize uint64
}

// String names the store for logs and errors, without credentials.
func (c S3Config) String() string {
	scheme := "https"
	if c.Insecure {
		scheme = "http"
	}
	return fmt.Sprintf("s3://%s/%s at %s://%s", c.Bucket, c.Prefix, scheme, c.Endpoint)
}

// ParseS3URL reads s3://BUCKET[/PREFIX][?endpoint=HOST:PORT&region=R&insecure=true]
// and takes the credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// and (optionally) AWS_SESSION_TOKEN through getenv. Credentials in the URL
// itself are refused, so that they never show in process lists or logs.
func ParseS3URL(raw string, getenv func(string) string) (S3Config, error) {
	const form = "s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=REGION&insecure=true"
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes its input; say what is wrong without echoing it.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return S3Config{}, fmt.Errorf("artifact store URL is not valid (%v): use %s", err, form)
	}
	if u.Scheme != "s3" {
		return S3Config{}, fmt.Errorf("artifact store URL must start with s3://: use %s", form)
	}
	if u.User != nil {
		return S3Config{}, fmt.Errorf("artifact store URL must not contain credentials: set %s and %s instead", EnvAccessKeyID, EnvSecretAccessKey)
	}
	c := S3Config{Bucket: u.Host, Endpoint: DefaultS3Endpoint}
	if c.Bucket == "" {
		return S3Config{}, fmt.Errorf("artifact store URL names no bucket: use %s", form)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if strings.Contains(p, "//") || strings.Contains(p, "..") {
			return S3Config{}, fmt.Errorf("artifact store prefix %q is not valid", p)
		}
		c.Prefix = p + "/"
	}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "endpoint":
			if v == "" || strings.Contains(v, "/") {
				return S3Config{}, fmt.Errorf("artifact store endpoint %q must be HOST or HOST:PORT (use insecure=true for http)", v)
			}
			c.Endpoint = v
		case "region":
			c.Region = v
		case "insecure":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return S3Config{}, fmt.Errorf("artifact store option insecure=%q: use true or false", v)
			}
			c.Insecure = b
		default:
			return S3Config{}, fmt.Errorf("artifact store option %q is not known: use endpoint, region or insecure", k)
		}
	}
	c.AccessKey, c.SecretKey, c.SessionToken = getenv(EnvAccessKeyID), getenv(EnvSecretAccessKey), getenv(EnvSessionToken)
	if c.AccessKey == "" || c.SecretKey == "" {
		return S3Config{}, fmt.Errorf("the S3 artifact store needs credentials: set %s and %s", EnvAccessKeyID, EnvSecretAccessKey)
	}
	return c, nil
}

// S3 stores artifacts as objects in an S3-compatible bucket, so that
// several control-plane servers can share them.
type S3 struct {
	cfg    S3Config
	client *minio.Client
}

func newS3Client(c S3Config, retries int) (*minio.Client, error) {
	return minio.New(c.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(c.AccessKey, c.SecretKey, c.SessionToken),
		Secure:     !c.Insecure,
		Region:     c.Region,
		MaxRetries: retries,
	})
}

// OpenS3 connects to the bucket and checks, before anything is stored,
// that the endpoint answers, the credentials are accepted and the bucket
// exists.
func OpenS3(ctx context.Context, c S3Config) (*S3, error) {
	c.PartSize = cmp.Or(c.PartSize, DefaultPartSize)
	client, err := newS3Client(c, 0)
	if err != nil {
		return nil, fmt.Errorf("artifact store %s: %w", c, err)
	}
	// The check retries little, so that a wrong endpoint fails fast.
	probe, err := newS3Client(c, 2)
	if err != nil {
		return nil, fmt.Errorf("artifact store %s: %w", c, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ok, err := probe.BucketExists(pctx, c.Bucket)
	if err != nil {
		return nil, describeS3Error(c, err)
	}
	if !ok {
		return nil, fmt.Errorf("artifact store %s: bucket %q does not exist: create it first", c, c.Bucket)
	}
	return &S3{cfg: c, client: client}, nil
}

// describeS3Error turns a failed bucket check into an error that says what
// to fix.
func describeS3Error(c S3Config, err error) error {
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	switch r := minio.ToErrorResponse(err); {
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("artifact store %s: the endpoint speaks plain HTTP, not HTTPS: add insecure=true to the URL if that is intended", c)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("artifact store %s: cannot reach the endpoint: no answer within 30s", c)
	case errors.As(err, &de), errors.As(err, &oe), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("artifact store %s: cannot reach the endpoint: %w", c, err)
	case r.Code == minio.InvalidAccessKeyID || r.Code == "SignatureDoesNotMatch" || r.Code == "InvalidToken" ||
		r.Code == "ExpiredToken" || r.Code == "AccessDenied" || r.StatusCode == 401 || r.StatusCode == 403:
		return fmt.Errorf("artifact store %s: the credentials are not accepted (%s): check %s and %s, and that they may use bucket %q",
			c, errCode(r), EnvAccessKeyID, EnvSecretAccessKey, c.Bucket)
	case r.Code == "PermanentRedirect" || r.Code == "AuthorizationHeaderMalformed" || r.StatusCode == 301:
		return fmt.Errorf("artifact store %s: wrong region for bucket %q (%s): set region= in the URL", c, c.Bucket, errCode(r))
	case r.StatusCode != 0:
		return fmt.Errorf("artifact store %s: the endpoint answered %d %s: %w", c, r.StatusCode, errCode(r), err)
	}
	return fmt.Errorf("artifact store %s: %w", c, err)
}

func errCode(r minio.ErrorResponse) string {
	return cmp.Or(r.Code, fmt.Sprintf("HTTP %d", r.StatusCode))
}

func (s *S3) String() string { return s.cfg.String() }

func (s *S3) object(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return s.cfg.Prefix + key, nil
}

// checkKey accepts the keys that Dir accepts, in their plain form.
func checkKey(key string) error {
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//") {
		return fmt.Errorf("artifact key %q is not valid", key)
	}
	return nil
}

// Put streams r to the bucket as a multipart upload, one part in memory at
// a time; the object appears only when it is complete (a failed upload is
// aborted).
func (s *S3) Put(ctx context.Context, key string, r io.Reader) (int64, string, error) {
	name, err := s.object(key)
	if err != nil {
		return 0, "", err
	}
	hr := &hashingReader{r: r, h: sha256.New()}
	_, err = s.client.PutObject(ctx, s.cfg.Bucket, name, hr, -1, minio.PutObjectOptions{
		PartSize:    s.cfg.PartSize,
		ContentType: "application/octet-stream",
	})
	if hr.err != nil {
		// The reader's own error (say, the upload is too large) comes first.
		return 0, "", hr.err
	}
	if r, ok := errors.AsType[minio.ErrorResponse](err); ok && r.StatusCode == http.StatusInsufficientStorage {
		return 0, "", fmt.Errorf("%w: the S3 server answered %s: %s", ErrFull, errCode(r), r.Message)
	}
	if err != nil {
		return 0, "", fmt.Errorf("artifact store: put %s: %w", key, err)
	}
	return hr.n, hex.EncodeToString(hr.h.Sum(nil)), nil
}

// Get opens an artifact; its body streams from the bucket.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	body, _, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.cfg.Bucket, name, minio.GetObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("artifact store: get %s: %w", key, err)
	}
	return body, nil
}

// Delete removes an artifact (no error if it is gone).
func (s *S3) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.cfg.Bucket, name, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("artifact store: delete %s: %w", key, err)
	}
	return nil
}

// DeletePrefix removes the artifact named prefix and every artifact under
// prefix + "/", as Dir removes a file or a folder.
func (s *S3) DeletePrefix(ctx context.Context, prefix string) error {
	name, err := s.object(prefix)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	listErr := make(chan error, 1)
	objects := make(chan minio.ObjectInfo)
	go func() {
		defer close(objects)
		send := func(o minio.ObjectInfo) bool {
			select {
			case objects <- o:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !send(minio.ObjectInfo{Key: name}) {
			listErr <- ctx.Err()
			return
		}
		for o := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: name + "/", Recursive: true}) {
			if o.Err != nil {
				listErr <- o.Err
				return
			}
			if !send(o) {
				listErr <- ctx.Err()
				return
			}
		}
		listErr <- nil
	}()
	var first error
	for e := range s.client.RemoveObjects(ctx, s.cfg.Bucket, objects, minio.RemoveObjectsOptions{}) {
		if first == nil && e.Err != nil && minio.ToErrorResponse(e.Err).Code != minio.NoSuchKey {
			first = fmt.Errorf("artifact store: delete %s: %w", strings.TrimPrefix(e.ObjectName, s.cfg.Prefix), e.Err)
		}
	}
	cancel() // in case the removal stopped early, so the listing stops too
	if err := <-listErr; first == nil && err != nil {
		first = fmt.Errorf("artifact store: list %s/: %w", prefix, err)
	}
	return first
}

// List returns the keys of the objects under prefix + "/".
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	name, err := s.object(prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	for o := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: name + "/", Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("artifact store: list %s/: %w", prefix, o.Err)
		}
		keys = append(keys, strings.TrimPrefix(o.Key, s.cfg.Prefix))
	}
	slices.Sort(keys)
	return keys, nil
}

// RemoveStaleUploads aborts the multipart uploads under the store's
// prefix that began more than olderThan ago: those a killed server left
// unfinished, whose parts the bucket would otherwise keep (and bill) for
// good. Servers sharing the bucket may be uploading right now, so only
// the age tells a stale upload from one in progress: give olderThan far
// more than an upload takes. It returns how many it aborted.
func (s *S3) RemoveStaleUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing if we stop early
	cutoff := time.Now().Add(-olderThan)
	core := minio.Core{Client: s.client}
	n := 0
	// The whole bucket is listed: MinIO lists the uploads of one object
	// name or of all, not of a prefix.
	for u := range s.client.ListIncompleteUploads(ctx, s.cfg.Bucket, "", true) {
		if u.Err != nil {
			return n, fmt.Errorf("artifact store: list unfinished uploads: %w", u.Err)
		}
		if !strings.HasPrefix(u.Key, s.cfg.Prefix) || u.Initiated.After(cutoff) {
			continue
		}
		if err := core.AbortMultipartUpload(ctx, s.cfg.Bucket, u.Key, u.UploadID); err != nil && minio.ToErrorResponse(err).Code != "NoSuchUpload" {
			return n, fmt.Errorf("artifact store: abort the unfinished upload of %s: %w", strings.TrimPrefix(u.Key, s.cfg.Prefix), err)
		}
		n++
	}
	return n, nil
}

// hashingReader counts and hashes what it reads, and keeps the source's
// error so that Put can report it as it is.
type hashingReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	err error
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	if err != nil && err != io.EOF {
		h.err = err
	}
	return n, err
}
