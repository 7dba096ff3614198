package config

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestResolvePrecedence(t *testing.T) {
	noData := t.TempDir() // holds no admin.token
	file := &File{
		CurrentContext: "local",
		Contexts: []Context{
			{Name: "local", Server: "http://127.0.0.1:9000", Token: "bth_local", Workspace: "default"},
			{Name: "prod", Server: "https://berth.example.com", Token: "bth_prod", Workspace: "ml"},
			{Name: "bare", Workspace: "bare-ws"},
		},
	}
	tests := []struct {
		name  string
		flags Overrides
		env   map[string]string
		file  *File
		want  Resolved
	}{
		{
			name: "current context",
			file: file,
			want: Resolved{Server: "http://127.0.0.1:9000", Token: "bth_local", Workspace: "default", Context: "local", TokenSource: "context"},
		},
		{
			name: "environment beats context",
			env:  map[string]string{EnvServer: "http://10.0.0.1:8470", EnvToken: "bth_env", EnvWorkspace: "env-ws"},
			file: file,
			want: Resolved{Server: "http://10.0.0.1:8470", Token: "bth_env", Workspace: "env-ws", Context: "local", TokenSource: "env"},
		},
		{
			name:  "flags beat environment",
			flags: Overrides{Server: "http://flag:1", Token: "bth_flag", Workspace: "flag-ws"},
			env:   map[string]string{EnvServer: "http://10.0.0.1:8470", EnvToken: "bth_env", EnvWorkspace: "env-ws"},
			file:  file,
			want:  Resolved{Server: "http://flag:1", Token: "bth_flag", Workspace: "flag-ws", Context: "local", TokenSource: "flag"},
		},
		{
			name: "BERTH_CONTEXT selects a context",
			env:  map[string]string{EnvContext: "prod"},
			file: file,
			want: Resolved{Server: "https://berth.example.com", Token: "bth_prod", Workspace: "ml", Context: "prod", TokenSource: "context"},
		},
		{
			name:  "--context beats BERTH_CONTEXT",
			flags: Overrides{Context: "prod"},
			env:   map[string]string{EnvContext: "local"},
			file:  file,
			want:  Resolved{Server: "https://berth.example.com", Token: "bth_prod", Workspace: "ml", Context: "prod", TokenSource: "context"},
		},
		{
			name:  "flags mix with the context field by field",
			flags: Overrides{Context: "prod", Workspace: "other"},
			env:   map[string]string{EnvToken: "bth_env"},
			file:  file,
			want:  Resolved{Server: "https://berth.example.com", Token: "bth_env", Workspace: "other", Context: "prod", TokenSource: "env"},
		},
		{
			name:  "defaults fill what the context leaves out",
			flags: Overrides{Context: "bare"},
			env:   map[string]string{EnvDataDir: noData},
			file:  file,
			want:  Resolved{Server: DefaultServer, Workspace: "bare-ws", Context: "bare", TokenSource: "none"},
		},
		{
			name: "no file at all",
			env:  map[string]string{EnvDataDir: noData},
			want: Resolved{Server: DefaultServer, TokenSource: "none"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resolve(tt.flags, envOf(tt.env), tt.file)
			if got != tt.want {
				t.Errorf("Resolve:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestResolveUnknownContext(t *testing.T) {
	file := &File{CurrentContext: "gone", Contexts: []Context{{Name: "local"}, {Name: "prod"}}}
	tests := []struct {
		name  string
		flags Overrides
		env   map[string]string
		want  string
	}{
		{name: "flag", flags: Overrides{Context: "nope"}, want: `context "nope" (selected by --context) not found; known contexts: local, prod`},
		{name: "env", env: map[string]string{EnvContext: "nope"}, want: `context "nope" (selected by BERTH_CONTEXT) not found; known contexts: local, prod`},
		{name: "current", want: `context "gone" (selected by currentContext) not found; known contexts: local, prod`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.flags.Server, tt.flags.Token = "https://x", "bth_x" // resolution still works
			got := Resolve(tt.flags, envOf(tt.env), file)
			if got.Err == nil || got.Err.Error() != tt.want {
				t.Fatalf("Err = %v, want %q", got.Err, tt.want)
			}
			if got.Server != "https://x" || got.Token != "bth_x" {
				t.Errorf("flags not applied: %+v", got)
			}
		})
	}
}

func TestResolveAdminToken(t *testing.T) {
	dataDir := t.TempDir()
	tokenPath := filepath.Join(dataDir, AdminTokenFile)
	if err := os.WriteFile(tokenPath, []byte("bth_admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyDir := t.TempDir()
	tests := []struct {
		name       string
		server     string
		dataDir    string
		token      string
		wantToken  string
		wantSource string
	}{
		{name: "default server", wantToken: "bth_admin", wantSource: "admin.token file " + tokenPath},
		{name: "127.0.0.0/8", server: "http://127.1.2.3:8470", wantToken: "bth_admin", wantSource: "admin.token file " + tokenPath},
		{name: "localhost", server: "https://LOCALHOST:8443/", wantToken: "bth_admin", wantSource: "admin.token file " + tokenPath},
		{name: "ipv6 loopback", server: "http://[::1]:8470", wantToken: "bth_admin", wantSource: "admin.token file " + tokenPath},
		{name: "bare host:port", server: "127.0.0.1:8470", wantToken: "bth_admin", wantSource: "admin.token file " + tokenPath},
		{name: "remote server never reads the file", server: "https://berth.example.com", wantSource: "none"},
		{name: "private address is not loopback", server: "http://10.0.0.5:8470", wantSource: "none"},
		{name: "name that starts with localhost", server: "http://localhost.example.com", wantSource: "none"},
		{name: "a given token wins over the file", token: "bth_flag", wantToken: "bth_flag", wantSource: "flag"},
		{name: "missing file", dataDir: emptyDir, wantSource: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := dataDir
			if tt.dataDir != "" {
				dir = tt.dataDir
			}
			got := Resolve(Overrides{Server: tt.server, Token: tt.token}, envOf(map[string]string{EnvDataDir: dir}), nil)
			if got.Token != tt.wantToken || got.TokenSource != tt.wantSource {
				t.Errorf("Token, TokenSource = %q, %q; want %q, %q", got.Token, got.TokenSource, tt.wantToken, tt.wantSource)
			}
		})
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", ".berth", "config.yaml")
	want := &File{
		CurrentContext: "local",
		Contexts: []Context{
			{Name: "local", Server: "http://127.0.0.1:8470", Token: "bth_secret", Workspace: "default"},
			{Name: "prod", Server: "https://berth.example.com"},
		},
	}
	if err := want.Save(path); err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"currentContext: local", "contexts:", "- name: local", "server: http://127.0.0.1:8470", "token: bth_secret", "workspace: default"} {
		if !strings.Contains(string(raw), field) {
			t.Errorf("file lacks %q:\n%s", field, raw)
		}
	}
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode = %o, want 600", mode)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if mode := di.Mode().Perm(); mode != 0o700 {
		t.Errorf("directory mode = %o, want 700", mode)
	}

	// Saving again over an existing, too-open file tightens it.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := want.Save(path); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if fi, err = os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("after re-save: mode %v, err %v", fi.Mode().Perm(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the config file", len(entries))
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: no file
		want    *File
		wantErr string
	}{
		{name: "missing file is empty", want: &File{}},
		{name: "empty file", content: ptr(""), want: &File{}},
		{
			name:    "unknown field",
			content: ptr("currentContext: a\ncontexts:\n- name: a\n  sever: http://x\n"),
			wantErr: `unknown field "sever"`,
		},
		{
			name:    "unknown top-level field",
			content: ptr("current-context: a\n"),
			wantErr: `unknown field "current-context"`,
		},
		{name: "context without a name", content: ptr("contexts:\n- server: http://x\n"), wantErr: "contexts[0] has no name"},
		{name: "duplicate context", content: ptr("contexts:\n- name: a\n- name: a\n"), wantErr: `context "a" is defined twice`},
		{name: "not yaml", content: ptr("contexts: [\n"), wantErr: "config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Load(path)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Load succeeded: %+v", got)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Errorf("error %q should contain %q and name the file %s", err, tt.wantErr, path)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestContexts(t *testing.T) {
	f := &File{}
	if f.Current() != nil {
		t.Fatal("empty file has a current context")
	}
	if err := f.Use("local"); err == nil || err.Error() != `context "local" not found: no contexts are defined` {
		t.Errorf("Use on empty file: %v", err)
	}

	f.Set(Context{Name: "local", Server: "http://127.0.0.1:8470"})
	f.Set(Context{Name: "prod", Server: "https://a"})
	if f.Current() != nil {
		t.Error("Set must not change the current context")
	}
	f.Set(Context{Name: "prod", Server: "https://b", Token: "t"})
	if got := f.Names(); !reflect.DeepEqual(got, []string{"local", "prod"}) {
		t.Errorf("Names = %v", got)
	}
	if err := f.Use("prod"); err != nil {
		t.Fatal(err)
	}
	if c := f.Current(); c == nil || c.Server != "https://b" || c.Token != "t" {
		t.Errorf("Current = %+v, want the replaced prod", c)
	}
	if err := f.Use("staging"); err == nil || err.Error() != `context "staging" not found; known contexts: local, prod` {
		t.Errorf("Use unknown: %v", err)
	}
	if f.CurrentContext != "prod" {
		t.Errorf("failed Use changed the current context to %q", f.CurrentContext)
	}
	if err := f.Delete("staging"); err == nil || !strings.Contains(err.Error(), "known contexts: local, prod") {
		t.Errorf("Delete unknown: %v", err)
	}
	if err := f.Delete("prod"); err != nil {
		t.Fatal(err)
	}
	if f.CurrentContext != "" || f.Current() != nil {
		t.Errorf("deleting the current context leaves %q current", f.CurrentContext)
	}
	if got := f.Names(); !reflect.DeepEqual(got, []string{"local"}) {
		t.Errorf("Names after delete = %v", got)
	}
}

func TestDefaultPaths(t *testing.T) {
	t.Setenv(EnvConfig, "/tmp/berth-test/config.yaml")
	if got := DefaultPath(); got != "/tmp/berth-test/config.yaml" {
		t.Errorf("DefaultPath with %s = %q", EnvConfig, got)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	t.Setenv(EnvConfig, "")
	if got, want := DefaultPath(), filepath.Join(home, ".berth", "config.yaml"); got != want {
		t.Errorf("DefaultPath = %q, want %q", got, want)
	}
	if got, want := DefaultDataDir(), filepath.Join(home, ".berth", "data"); got != want {
		t.Errorf("DefaultDataDir = %q, want %q", got, want)
	}
}

func ptr(s string) *string { return &s }
