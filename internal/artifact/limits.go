package artifact

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Limits bound what unpacking one artifact may produce. The control plane
// checks them when a model is registered (Check, Checked), and replicas
// check them again when they unpack (Unpack), so that a small archive
// cannot fill a disk (an archive bomb).
type Limits struct {
	// MaxUnpackedBytes bounds the total size of the files an artifact
	// unpacks to (0: DefaultMaxUnpackedBytes).
	MaxUnpackedBytes int64
	// MaxFiles bounds the entries of an archive: its files, folders and
	// anything else it lists (0: DefaultMaxFiles).
	MaxFiles int
}

// Defaults: twice the largest upload the server takes (a model compresses
// little), and far more files than model folders have.
const (
	DefaultMaxUnpackedBytes int64 = 8 << 30
	DefaultMaxFiles               = 10000
)

// DefaultLimits are the limits when none are configured.
var DefaultLimits = Limits{MaxUnpackedBytes: DefaultMaxUnpackedBytes, MaxFiles: DefaultMaxFiles}

// The server flags that set the limits, named in LimitError so that the
// message says how to raise them.
const (
	FlagMaxUnpackedBytes = "--max-model-unpacked-bytes"
	FlagMaxFiles         = "--max-model-files"
)

// OrDefault fills unset (zero or negative) limits with the defaults.
func (l Limits) OrDefault() Limits {
	if l.MaxUnpackedBytes <= 0 {
		l.MaxUnpackedBytes = DefaultMaxUnpackedBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	return l
}

// Headers of a model download that carry the server's limits to the
// replicas that unpack it (berth model-init).
const (
	HeaderMaxUnpackedBytes = "X-Berth-Max-Unpacked-Bytes"
	HeaderMaxFiles         = "X-Berth-Max-Files"
)

// SetHeader writes the limits (defaults filled in) into h.
func (l Limits) SetHeader(h http.Header) {
	l = l.OrDefault()
	h.Set(HeaderMaxUnpackedBytes, strconv.FormatInt(l.MaxUnpackedBytes, 10))
	h.Set(HeaderMaxFiles, strconv.Itoa(l.MaxFiles))
}

// LimitsFromHeader reads what SetHeader wrote; a missing or unreadable
// value is left zero, which means the default.
func LimitsFromHeader(h http.Header) Limits {
	var l Limits
	if n, err := strconv.ParseInt(h.Get(HeaderMaxUnpackedBytes), 10, 64); err == nil && n > 0 {
		l.MaxUnpackedBytes = n
	}
	if n, err := strconv.Atoi(h.Get(HeaderMaxFiles)); err == nil && n > 0 {
		l.MaxFiles = n
	}
	return l
}

// LimitError says which limit an artifact exceeds.
type LimitError struct {
	// Flag is the server flag that sets the limit (FlagMaxUnpackedBytes or
	// FlagMaxFiles); Max its value.
	Flag string
	Max  int64
}

func (e *LimitError) Error() string {
	if e.Flag == FlagMaxFiles {
		return fmt.Sprintf("the archive holds more than %d files and folders, the limit for a model (%s=%d on the server; an administrator can raise it)", e.Max, e.Flag, e.Max)
	}
	return fmt.Sprintf("the artifact unpacks to more than %s, the limit for a model (%s=%s on the server; an administrator can raise it)", FormatSize(e.Max), e.Flag, FormatSize(e.Max))
}

// InvalidError means an artifact cannot be unpacked: it is not what its
// format says, or its archive is broken.
type InvalidError struct {
	Format string
	Err    error
}

func (e *InvalidError) Error() string {
	if e.Format == "tar.gz" {
		return "the artifact is not a valid tar.gz archive: " + e.Err.Error()
	}
	return "the artifact is not valid: " + e.Err.Error()
}

func (e *InvalidError) Unwrap() error { return e.Err }

var sizeUnits = []struct {
	suffix string
	n      int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// ParseSize reads a byte count: a number of bytes, or a whole number with
// a binary unit: KiB, MiB, GiB or TiB (also Ki, Mi, Gi, Ti, as Kubernetes
// writes them).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if v, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = v, u.n
			break
		}
		if v, ok := strings.CutSuffix(t, strings.TrimSuffix(u.suffix, "B")); ok {
			t, mult = v, u.n
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 1 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size: give a positive number of bytes, or one with KiB, MiB, GiB or TiB (such as 8GiB)", s)
	}
	return n * mult, nil
}

// FormatSize writes a byte count in the largest binary unit that divides
// it (8589934592 is "8GiB").
func FormatSize(n int64) string {
	for _, u := range sizeUnits {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
