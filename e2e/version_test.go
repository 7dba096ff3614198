package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
)

type versionsOut struct {
	Client api.BuildInfo  `json:"client"`
	Server *api.BuildInfo `json:"server"`
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startServer(t, dir, freeAddr(t), nil, "--image-repository", "mirror.corp.example:5000/ml/berth")
	// No token at all (the data dir the CLI looks in has no admin.token):
	// the version needs none.
	env := []string{"BERTH_SERVER=" + p.url(), "BERTH_DATA_DIR=" + t.TempDir()}

	r := berth(t, env, "version", "-o", "json")
	var v versionsOut
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Server == nil {
		t.Fatalf("version -o json: %+v", r)
	}
	c := v.Client
	if c.Version == "" || !strings.HasPrefix(c.GoVersion, "go") || !strings.Contains(c.Platform, "/") || c.APIVersion != "v1" {
		t.Errorf("client part: %+v", c)
	}
	// The same binary on both sides, and the server's image is the mirror
	// tagged with its version.
	if s := *v.Server; s.Version != c.Version || s.Commit != c.Commit || s.GoVersion != c.GoVersion ||
		s.FrontendImage != "mirror.corp.example:5000/ml/berth:"+c.Version {
		t.Errorf("server part: %+v (client %+v)", s, c)
	}
	if !strings.Contains(r.stdout, `"goVersion"`) || !strings.Contains(r.stdout, `"frontendImage"`) {
		t.Errorf("fields are not lowerCamelCase:\n%s", r.stdout)
	}

	r = berth(t, append(env, "BERTH_TOKEN=bth_wrong"), "version")
	for _, want := range []string{"Client Version: " + c.Version + " (", "Server Version: " + c.Version + " (", " at " + p.url(),
		"Front-end image: mirror.corp.example:5000/ml/berth:" + c.Version} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("version (with a wrong token) lacks %q: %+v", want, r)
		}
	}
	if r.code != 0 {
		t.Errorf("version with a wrong token: exit %d", r.code)
	}
	if r := berth(t, env, "version", "--query", "server.frontendImage", "-o", "tsv"); strings.TrimSpace(r.stdout) != "mirror.corp.example:5000/ml/berth:"+c.Version {
		t.Errorf("--query server.frontendImage: %+v", r)
	}

	r = berth(t, nil, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "berth version "+c.Version+" (") || !strings.Contains(r.stdout, c.GoVersion) {
		t.Errorf("--version: %+v", r)
	}

	// The server cannot be reached: the client part still, exit 1.
	down := []string{"BERTH_SERVER=http://" + freeAddr(t)}
	r = berth(t, down, "version")
	if r.code != 1 || !strings.Contains(r.stdout, "Client Version: "+c.Version) || strings.Contains(r.stdout, "Server Version") ||
		!strings.Contains(r.stderr, "the server is unreachable") {
		t.Errorf("unreachable server: %+v", r)
	}
	r = berth(t, down, "version", "-o", "json")
	v = versionsOut{}
	if r.code != 1 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Client.Version != c.Version || v.Server != nil {
		t.Errorf("unreachable server, -o json: %+v", r)
	}
	// No server named and none at the default address (a private HOME, no
	// BERTH_SERVER; no test serves on 127.0.0.1:8470): the client's
	// version is the answer, as in a container of Berth's image.
	r = berth(t, nil, "version")
	if r.code != 0 || !strings.Contains(r.stdout, "Client Version: "+c.Version) || !strings.Contains(r.stderr, "No server: none is named and none runs at http://127.0.0.1:8470") {
		t.Errorf("no server named: %+v", r)
	}
	r = berth(t, down, "version", "--client", "-o", "json")
	v = versionsOut{}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Client.Version != c.Version || v.Server != nil || r.stderr != "" {
		t.Errorf("--client: %+v", r)
	}
}

func TestServerRefusesBadImageRepository(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--image-repository", "REG/Repo"}, `--image-repository "REG/Repo" has an invalid path component "Repo": repository paths must be lowercase`},
		{[]string{"--image-repository", "reg/repo:tag"}, `--image-repository "reg/repo:tag" has a tag (":tag")`},
		{[]string{"--image-repository", "reg//x"}, `--image-repository "reg//x" has an empty path component`},
		{[]string{"--image-repository", "reg/re po"}, `--image-repository "reg/re po" has an invalid path component "re po": ' ' is not allowed`},
		{[]string{"--frontend-image", "reg/Repo:1"}, `--frontend-image "reg/Repo:1" has an invalid path component "Repo"`},
		{[]string{"--image-repository", "reg/repo", "--frontend-image", "reg/repo:1"}, "--frontend-image and --image-repository cannot both be given"},
	} {
		data := filepath.Join(t.TempDir(), "data")
		args := append([]string{"server", "--data-dir", data, "--listen", freeAddr(t)}, tc.args...)
		r := berth(t, nil, args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("berth %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("berth %s made the data directory", strings.Join(tc.args, " "))
		}
	}
}
