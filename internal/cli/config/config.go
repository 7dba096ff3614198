// Package config reads and writes the CLI's config file (kubectl-like named
// contexts: server, token, workspace) and resolves which server, token and
// workspace a command uses from flags, environment, the file and defaults.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Environment variables the CLI reads.
const (
	EnvConfig    = "BERTH_CONFIG"
	EnvServer    = "BERTH_SERVER"
	EnvToken     = "BERTH_TOKEN"
	EnvWorkspace = "BERTH_WORKSPACE"
	EnvContext   = "BERTH_CONTEXT"
	EnvDataDir   = "BERTH_DATA_DIR"
)

// DefaultServer is the server used when nothing else names one: a local
// `berth server` on its default port.
const DefaultServer = "http://127.0.0.1:8470"

// AdminTokenFile is the name, inside the server's data directory, of the file
// where `berth server` writes its admin token.
const AdminTokenFile = "admin.token"

// Context is a named server, token and workspace.
type Context struct {
	Name      string `json:"name" yaml:"name"`
	Server    string `json:"server,omitempty" yaml:"server,omitempty"`
	Token     string `json:"token,omitempty" yaml:"token,omitempty"`
	Workspace string `json:"workspace,omitempty" yaml:"workspace,omitempty"`
}

// File is the config file.
type File struct {
	CurrentContext string    `json:"currentContext,omitempty" yaml:"currentContext,omitempty"`
	Contexts       []Context `json:"contexts,omitempty" yaml:"contexts,omitempty"`
}

// DefaultPath is $BERTH_CONFIG, or ~/.berth/config.yaml.
func DefaultPath() string {
	return cmp.Or(os.Getenv(EnvConfig), filepath.Join(berthDir(), "config.yaml"))
}

// DefaultDataDir is where `berth server` keeps its data by default: ~/.berth/data.
func DefaultDataDir() string {
	return filepath.Join(berthDir(), "data")
}

func berthDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".berth"
	}
	return filepath.Join(home, ".berth")
}

// Load reads the config file at path. A missing file is an empty File; an
// unknown field, a context without a name or two contexts with the same name
// is an error naming the file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, c := range f.Contexts {
		if c.Name == "" {
			return nil, fmt.Errorf("config file %s: contexts[%d] has no name", path, i)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("config file %s: context %q is defined twice", path, c.Name)
		}
		seen[c.Name] = true
	}
	return &f, nil
}

// Save writes the file to path with mode 0600 (it holds tokens), creating its
// directory with mode 0700. The file is replaced atomically.
func (f *File) Save(path string) error {
	data, err := yaml.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode config file: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save config file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("save config file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save config file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save config file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save config file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save config file: %w", err)
	}
	return nil
}

// Get returns the context with the given name, or nil.
func (f *File) Get(name string) *Context {
	if f == nil {
		return nil
	}
	for i := range f.Contexts {
		if f.Contexts[i].Name == name {
			return &f.Contexts[i]
		}
	}
	return nil
}

// Current returns the current context, or nil if none is set or it does not exist.
func (f *File) Current() *Context {
	if f == nil || f.CurrentContext == "" {
		return nil
	}
	return f.Get(f.CurrentContext)
}

// Set adds ctx, or replaces the context with the same name. It does not
// change the current context.
func (f *File) Set(ctx Context) {
	if c := f.Get(ctx.Name); c != nil {
		*c = ctx
		return
	}
	f.Contexts = append(f.Contexts, ctx)
}

// Use makes the named context the current one.
func (f *File) Use(name string) error {
	if f.Get(name) == nil {
		return f.notFound(name, "")
	}
	f.CurrentContext = name
	return nil
}

// Delete removes the named context; if it was the current one, no context is
// current afterwards.
func (f *File) Delete(name string) error {
	for i, c := range f.Contexts {
		if c.Name == name {
			f.Contexts = append(f.Contexts[:i], f.Contexts[i+1:]...)
			if f.CurrentContext == name {
				f.CurrentContext = ""
			}
			return nil
		}
	}
	return f.notFound(name, "")
}

// Names returns the names of the contexts, in file order.
func (f *File) Names() []string {
	if f == nil {
		return nil
	}
	names := make([]string, len(f.Contexts))
	for i, c := range f.Contexts {
		names[i] = c.Name
	}
	return names
}

func (f *File) notFound(name, why string) error {
	names := f.Names()
	if len(names) == 0 {
		return fmt.Errorf("context %q%s not found: no contexts are defined", name, why)
	}
	return fmt.Errorf("context %q%s not found; known contexts: %s", name, why, strings.Join(names, ", "))
}

// Overrides are the global flags: --server, --token, -w/--workspace, --context.
type Overrides struct {
	Server    string
	Token     string
	Workspace string
	Context   string
}

// Resolved is what a command talks to.
type Resolved struct {
	Server    string
	Token     string
	Workspace string // empty when nothing names one
	Context   string // the selected context's name, if any
	// TokenSource says where Token came from: "flag", "env", "context",
	// "admin.token file <path>" or "none".
	TokenSource string
	// Err is set when a context was selected (by --context, BERTH_CONTEXT or
	// currentContext) that the config file does not define. The other fields
	// are still resolved, without that context.
	Err error
}

// Resolve picks the server, token and workspace: flag, then environment, then
// the selected context (--context, BERTH_CONTEXT, else the file's current
// context), then defaults. When no token is known and the server is on a
// loopback address, the token is read from <data dir>/admin.token, where the
// data dir is BERTH_DATA_DIR or DefaultDataDir(). env is usually os.Getenv
// (nil means os.Getenv); f may be nil.
func Resolve(flags Overrides, env func(string) string, f *File) Resolved {
	if env == nil {
		env = os.Getenv
	}
	var r Resolved

	var ctx *Context
	var from string
	switch {
	case flags.Context != "":
		r.Context, from = flags.Context, "--context"
	case env(EnvContext) != "":
		r.Context, from = env(EnvContext), EnvContext
	case f != nil:
		r.Context, from = f.CurrentContext, "currentContext"
	}
	if r.Context != "" {
		if ctx = f.Get(r.Context); ctx == nil {
			r.Err = f.notFound(r.Context, " (selected by "+from+")")
		}
	}
	ctx = cmp.Or(ctx, &Context{})

	r.Server = cmp.Or(flags.Server, env(EnvServer), ctx.Server, DefaultServer)
	r.Workspace = cmp.Or(flags.Workspace, env(EnvWorkspace), ctx.Workspace)
	switch {
	case flags.Token != "":
		r.Token, r.TokenSource = flags.Token, "flag"
	case env(EnvToken) != "":
		r.Token, r.TokenSource = env(EnvToken), "env"
	case ctx.Token != "":
		r.Token, r.TokenSource = ctx.Token, "context"
	default:
		r.TokenSource = "none"
		if IsLoopback(r.Server) {
			path := filepath.Join(cmp.Or(env(EnvDataDir), DefaultDataDir()), AdminTokenFile)
			if data, err := os.ReadFile(path); err == nil {
				if tok := strings.TrimSpace(string(data)); tok != "" {
					r.Token, r.TokenSource = tok, "admin.token file "+path
				}
			}
		}
	}
	return r
}

// IsLoopback reports whether server (a URL, or a bare host[:port]) names a
// loopback host: 127.0.0.0/8, ::1 or localhost.
func IsLoopback(server string) bool {
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil {
		return false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
