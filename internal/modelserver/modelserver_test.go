package modelserver

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type testData struct {
	Classes       []string    `json:"classes"`
	Rows          [][]float64 `json:"rows"`
	Labels        []string    `json:"labels"`
	Probabilities [][]float64 `json:"probabilities"`
}

func readTestData(t *testing.T) testData {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("iris", "testdata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var td testData
	if err := json.Unmarshal(raw, &td); err != nil {
		t.Fatal(err)
	}
	if len(td.Rows) == 0 || len(td.Rows) != len(td.Probabilities) {
		t.Fatalf("testdata: %d rows, %d probability rows", len(td.Rows), len(td.Probabilities))
	}
	return td
}

func builtin(t *testing.T) *Model {
	t.Helper()
	m, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func argmax(p []float64) int {
	best := 0
	for i := range p {
		if p[i] > p[best] {
			best = i
		}
	}
	return best
}

// TestPredictMatchesXGBoost compares every held-out row with the
// probabilities XGBoost's own predict_proba gave when the model was trained.
func TestPredictMatchesXGBoost(t *testing.T) {
	td := readTestData(t)
	m := builtin(t)
	if got := m.Metadata().Classes; strings.Join(got, ",") != strings.Join(td.Classes, ",") {
		t.Fatalf("classes %v, testdata %v", got, td.Classes)
	}
	probs, labels, err := m.Predict(td.Rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range td.Probabilities {
		for k := range want {
			if d := math.Abs(probs[i][k] - want[k]); d > 1e-5 {
				t.Errorf("row %d class %d: got %.7f, xgboost %.7f (diff %.2g)", i, k, probs[i][k], want[k], d)
			}
		}
		if wantLabel := td.Classes[argmax(want)]; labels[i] != wantLabel {
			t.Errorf("row %d: predicted %q, xgboost %q", i, labels[i], wantLabel)
		}
	}
}

// TestLoadDir loads the same files from a directory, as an operator would.
func TestLoadDir(t *testing.T) {
	m, err := Load("iris")
	if err != nil {
		t.Fatal(err)
	}
	md := m.Metadata()
	if md.Name != "iris" || m.NumFeatures() != 4 || len(md.Classes) != 3 {
		t.Fatalf("metadata %+v", md)
	}
}

func TestPredictWrongFeatureCount(t *testing.T) {
	m := builtin(t)
	_, _, err := m.Predict([][]float64{{5.1, 3.5, 1.4, 0.2}, {1, 2, 3}})
	if err == nil || !strings.Contains(err.Error(), "row 1 has 3 features, want 4") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	meta, err := os.ReadFile(filepath.Join("iris", "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	model, err := os.ReadFile(filepath.Join("iris", "model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		meta  string
		model []byte
		want  string
	}{
		"truncated model": {string(meta), model[:100], "too short"},
		"garbage model":   {string(meta), bytes.Repeat([]byte{0xff}, 4096), "corrupt objective name"},
		"json model":      {string(meta), []byte(`{"learner":{}}`), "JSON model"},
		"wrong classes":   {strings.Replace(string(meta), `"virginica"`, `"virginica", "other"`, 1), model, "classes"},
		"bad format":      {strings.Replace(string(meta), "xgboost-binary", "onnx", 1), model, "format"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "metadata.json"), []byte(c.meta), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "model.bin"), c.model, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func do(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if ct := rec.Header().Get("Content-Type"); ct == "application/json" {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: bad JSON %q: %v", method, path, rec.Body.String(), err)
		}
	}
	return rec.Code, out
}

func TestScore(t *testing.T) {
	td := readTestData(t)
	h := Handler(builtin(t))
	body, _ := json.Marshal(map[string]any{"data": td.Rows})
	code, out := do(t, h, "POST", "/score", string(body))
	if code != 200 {
		t.Fatalf("status %d: %v", code, out)
	}
	preds := out["predictions"].([]any)
	probs := out["probabilities"].([]any)
	if len(preds) != len(td.Rows) || len(probs) != len(td.Rows) {
		t.Fatalf("got %d predictions, %d probability rows", len(preds), len(probs))
	}
	for i, want := range td.Probabilities {
		if preds[i] != td.Classes[argmax(want)] {
			t.Errorf("row %d: %v, want %s", i, preds[i], td.Classes[argmax(want)])
		}
		p := probs[i].([]any)
		for k := range want {
			if d := math.Abs(p[k].(float64) - want[k]); d > 1e-5 {
				t.Errorf("row %d class %d: diff %g", i, k, d)
			}
		}
	}
}

func TestV2Infer(t *testing.T) {
	td := readTestData(t)
	h := Handler(builtin(t))
	var flat []float64
	for _, r := range td.Rows[:3] {
		flat = append(flat, r...)
	}
	req, _ := json.Marshal(map[string]any{
		"id":     "req-1",
		"inputs": []any{map[string]any{"name": "input-0", "shape": []int{3, 4}, "datatype": "FP64", "data": flat}},
	})
	code, out := do(t, h, "POST", "/v2/models/iris/infer", string(req))
	if code != 200 {
		t.Fatalf("status %d: %v", code, out)
	}
	if out["model_name"] != "iris" || out["id"] != "req-1" {
		t.Fatalf("response %v", out)
	}
	outputs := out["outputs"].([]any)
	prob := outputs[0].(map[string]any)
	label := outputs[1].(map[string]any)
	if prob["name"] != "probabilities" || prob["datatype"] != "FP64" || len(prob["data"].([]any)) != 9 {
		t.Fatalf("probabilities output %v", prob)
	}
	if s := prob["shape"].([]any); s[0].(float64) != 3 || s[1].(float64) != 3 {
		t.Fatalf("probabilities shape %v", s)
	}
	if label["name"] != "label" || label["datatype"] != "BYTES" {
		t.Fatalf("label output %v", label)
	}
	for i, l := range label["data"].([]any) {
		if want := td.Classes[argmax(td.Probabilities[i])]; l != want {
			t.Errorf("row %d: %v, want %s", i, l, want)
		}
		for k := 0; k < 3; k++ {
			got := prob["data"].([]any)[i*3+k].(float64)
			if d := math.Abs(got - td.Probabilities[i][k]); d > 1e-5 {
				t.Errorf("row %d class %d: diff %g", i, k, d)
			}
		}
	}

	// Nested (row-major) data and the versioned path are accepted too.
	code, out = do(t, h, "POST", "/v2/models/iris/versions/1/infer",
		`{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2]]}]}`)
	if code != 200 || out["outputs"].([]any)[1].(map[string]any)["data"].([]any)[0] != "setosa" {
		t.Fatalf("nested: %d %v", code, out)
	}
}

func TestV2MetadataAndHealth(t *testing.T) {
	h := Handler(builtin(t))
	code, md := do(t, h, "GET", "/v2/models/iris", "")
	if code != 200 || md["name"] != "iris" || md["platform"] != "xgboost" {
		t.Fatalf("metadata %d %v", code, md)
	}
	in := md["inputs"].([]any)[0].(map[string]any)
	if in["name"] != "input-0" || in["datatype"] != "FP64" {
		t.Fatalf("input %v", in)
	}
	if s := in["shape"].([]any); len(s) != 2 || s[0].(float64) != -1 || s[1].(float64) != 4 {
		t.Fatalf("input shape %v", s)
	}
	if len(md["outputs"].([]any)) != 2 || md["versions"].([]any)[0] != "1" {
		t.Fatalf("metadata %v", md)
	}
	if code, out := do(t, h, "GET", "/v2/models/iris/ready", ""); code != 200 || out["ready"] != true {
		t.Fatalf("model ready %d %v", code, out)
	}
	if code, out := do(t, h, "GET", "/v2/models/nope", ""); code != 404 || out["error"] == nil {
		t.Fatalf("unknown model %d %v", code, out)
	}
	if code, _ := do(t, h, "GET", "/v2/models/nope/ready", ""); code != 404 {
		t.Fatalf("unknown model ready %d", code)
	}
	for _, p := range []string{"/v2/health/live", "/v2/health/ready", "/healthz", "/readyz", "/v2"} {
		if code, _ := do(t, h, "GET", p, ""); code != 200 {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	code, doc := do(t, h, "GET", "/swagger.json", "")
	if code != 200 || doc["openapi"] != "3.0.3" || doc["paths"].(map[string]any)["/score"] == nil {
		t.Fatalf("swagger %d %v", code, doc)
	}
}

func TestBadInput(t *testing.T) {
	h := Handler(builtin(t))
	cases := []struct {
		name, path, body, want string
	}{
		{"not json", "/score", `{"data":`, "invalid JSON"},
		{"no data", "/score", `{}`, `missing "data"`},
		{"empty data", "/score", `{"data":[]}`, "no rows"},
		{"short row", "/score", `{"data":[[1,2,3,4],[1,2,3]]}`, "row 1 has 3 features, want 4"},
		{"strings", "/score", `{"data":[["a","b","c","d"]]}`, "invalid JSON"},
		{"trailing", "/score", `{"data":[[1,2,3,4]]} {}`, "unexpected data"},
		{"v2 no inputs", "/v2/models/iris/infer", `{"inputs":[]}`, "exactly 1 input"},
		{"v2 shape", "/v2/models/iris/infer", `{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP64","data":[1,2,3]}]}`, "want [N, 4]"},
		{"v2 count", "/v2/models/iris/infer", `{"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP64","data":[1,2,3,4]}]}`, "needs 8 values, data has 4"},
		{"v2 datatype", "/v2/models/iris/infer", `{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"BYTES","data":["a","b","c","d"]}]}`, "not numeric"},
		{"v2 data", "/v2/models/iris/infer", `{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64","data":[1,2,"x",4]}]}`, "want a list of numbers"},
		{"v2 no data", "/v2/models/iris/infer", `{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64"}]}`, "data: missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := do(t, h, "POST", c.path, c.body)
			if code != 400 {
				t.Fatalf("status %d, want 400 (%v)", code, out)
			}
			if msg, _ := out["error"].(string); !strings.Contains(msg, c.want) {
				t.Fatalf("error %q, want it to mention %q", msg, c.want)
			}
		})
	}
	if code, _ := do(t, h, "POST", "/v2/models/other/infer", `{}`); code != 404 {
		t.Errorf("unknown model infer: %d, want 404", code)
	}
}

func TestBodyLimit(t *testing.T) {
	h := Handler(builtin(t))
	body := `{"data":[` + strings.Repeat(" ", MaxBodyBytes) + `]}`
	code, out := do(t, h, "POST", "/score", body)
	if code != http.StatusRequestEntityTooLarge || out["error"] == nil {
		t.Fatalf("status %d %v, want 413", code, out)
	}
}

// TestEmbeddedCopyIsCurrent fails when models/iris was retrained but the copy
// embedded in this package was not refreshed.
func TestEmbeddedCopyIsCurrent(t *testing.T) {
	for _, f := range []string{"model.bin", "metadata.json", "testdata.json"} {
		src, err := os.ReadFile(filepath.Join("..", "..", "models", "iris", f))
		if err != nil {
			t.Skipf("models/iris not available: %v", err)
		}
		dst, err := os.ReadFile(filepath.Join("iris", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src, dst) {
			t.Errorf("internal/modelserver/iris/%s differs from models/iris/%s; copy it over", f, f)
		}
	}
}
