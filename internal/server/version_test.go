package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/server"
	"github.com/berth-ml/berth/internal/testenv/servertest"
	"github.com/berth-ml/berth/internal/version"
)

func TestVersionNeedsNoToken(t *testing.T) {
	e := start(t, sqlite())
	want := version.Get()
	image, _ := server.FrontendImage("")
	for name, token := range map[string]string{"none": "", "wrong": "bth_wrong", "reader": e.tokenFor(api.RoleReader, "")} {
		code, _, body := raw(t, "GET", e.url+"/api/v1/version", token, "")
		var got api.BuildInfo
		if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
			t.Fatalf("%s token: %d %s", name, code, body)
		}
		if got.Version != want.Version || got.GoVersion != want.GoVersion || got.Platform != want.Platform || got.APIVersion != "v1" || got.FrontendImage != image {
			t.Errorf("%s token: %+v, want %+v and image %s", name, got, want, image)
		}
	}
	sv, err := e.client("").ServerVersion(context.Background())
	if err != nil || sv.FrontendImage != "ghcr.io/berth-ml/berth:"+want.Version {
		t.Fatalf("SDK: %+v %v", sv, err)
	}
	// Documented, as a call without security, answering a BuildInfo.
	doc, err := e.owner.OpenAPI(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	op, _ := doc["paths"].(map[string]any)["/api/v1/version"].(map[string]any)["get"].(map[string]any)
	b, _ := json.Marshal(op)
	if sec, _ := op["security"].([]any); op == nil || len(sec) != 0 || !strings.Contains(string(b), "#/components/schemas/BuildInfo") {
		t.Errorf("OpenAPI of GET /api/v1/version: %s", b)
	}
}

func TestFrontendImageFromRepository(t *testing.T) {
	v := version.Get().Version
	dir := t.TempDir()
	srv := servertest.Start(t, server.Config{DataDir: dir, ImageRepository: "mirror.corp:5000/ml/berth", Poll: 100 * time.Millisecond})
	if got := srv.BuildInfo().FrontendImage; got != "mirror.corp:5000/ml/berth:"+v {
		t.Errorf("image from --image-repository: %s", got)
	}
	srv2 := servertest.Start(t, server.Config{DataDir: t.TempDir(), FrontendImage: "reg.io/berth:pinned"})
	if got := srv2.BuildInfo().FrontendImage; got != "reg.io/berth:pinned" {
		t.Errorf("image from --frontend-image: %s", got)
	}
}

func TestBadImageChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		cfg  server.Config
		want string
	}{
		{server.Config{ImageRepository: "REG/Repo"}, `image repository "REG/Repo" has an invalid path component "Repo": repository paths must be lowercase`},
		{server.Config{ImageRepository: "reg/repo:tag"}, `image repository "reg/repo:tag" has a tag (":tag")`},
		{server.Config{ImageRepository: "reg//x"}, "empty path component"},
		{server.Config{FrontendImage: "reg/Repo:1"}, `front end image "reg/Repo:1" has an invalid path component "Repo"`},
		{server.Config{FrontendImage: "reg/repo:1", ImageRepository: "reg/repo"}, "not both"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		tc.cfg.DataDir = dir
		_, err := server.New(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%+v: the data directory was made", tc.cfg)
		}
	}
}
