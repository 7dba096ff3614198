package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
)

const (
	token     = "s3cret"
	userAgent = "berth-test/1"
)

// newClient returns a client of srv with the test's token and User-Agent.
func newClient(t *testing.T, srv *httptest.Server) *client.Client {
	t.Helper()
	c, err := client.New(srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	c.UserAgent = userAgent
	return c
}

// seen is what the fake server records of a request.
type seen struct {
	method, path, query, auth, agent, accept, ctype, body string
}

// fakeServer answers every route of the API with a plausible success: an
// operation for JSON calls (202 and a Location for changes), a byte stream
// for downloads, text for logs and server-sent events for a followed
// operation. It records each request.
type fakeServer struct {
	mu   sync.Mutex
	reqs []seen
}

var doneOp = api.Operation{ID: "op1", Kind: "Create", TargetName: "c1", State: api.OpSucceeded}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("User-Agent"), r.Header.Get("Accept"), r.Header.Get("Content-Type"), string(body)})
	f.mu.Unlock()
	switch {
	case strings.HasSuffix(r.URL.Path, "/events") && r.URL.Query().Get("follow") == "true":
		w.Header().Set("Content-Type", "text/event-stream")
		ev, _ := json.Marshal(api.Event{Seq: 1, Level: api.LevelInfo, Message: "hello"})
		op, _ := json.Marshal(doneOp)
		fmt.Fprintf(w, "id: 1\nevent: event\ndata: %s\n\n: keep-alive\n\nevent: end\ndata: %s\n\n", ev, op)
	case strings.HasSuffix(r.URL.Path, "/download"):
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, "artifact bytes")
	case strings.HasSuffix(r.URL.Path, "/logs"):
		io.WriteString(w, "log line\n")
	case strings.HasSuffix(r.URL.Path, "/services/scored") && r.Method == http.MethodGet:
		// A service whose scoring URI is this server's /frontend/score.
		json.NewEncoder(w).Encode(api.Service{Name: "scored", ServiceSpec: api.ServiceSpec{Compute: "c1", Auth: api.AuthNone},
			ScoringURI: "http://" + r.Host + "/frontend/score"})
	case r.URL.Path == "/frontend/score":
		io.WriteString(w, `{"predictions":["setosa"]}`)
	default:
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet {
			w.Header().Set("Location", "/api/v1/operations/op1")
			w.WriteHeader(http.StatusAccepted)
		}
		json.NewEncoder(w).Encode(doneOp)
	}
}

func (f *fakeServer) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// calls exercises every method of Client that talks to the server.
func calls(c *client.Client) map[string]func(context.Context) error {
	const ws, name = "ws1", "c1"
	op := func(_ *api.Operation, err error) error { return err }
	return map[string]func(context.Context) error{
		"ListWorkspaces": func(ctx context.Context) error { _, err := c.ListWorkspaces(ctx); return err },
		"CreateWorkspace": func(ctx context.Context) error {
			_, err := c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: ws})
			return err
		},
		"UpdateWorkspace": func(ctx context.Context) error {
			_, err := c.UpdateWorkspace(ctx, ws, api.WorkspaceUpdateRequest{})
			return err
		},
		"GetWorkspace":    func(ctx context.Context) error { _, err := c.GetWorkspace(ctx, ws); return err },
		"DeleteWorkspace": func(ctx context.Context) error { return c.DeleteWorkspace(ctx, ws) },
		"ListComputes":    func(ctx context.Context) error { _, err := c.ListComputes(ctx, ws); return err },
		"GetCompute":      func(ctx context.Context) error { _, err := c.GetCompute(ctx, ws, name); return err },
		"CreateCompute": func(ctx context.Context) error {
			o, err := c.CreateCompute(ctx, ws, api.ComputeRequest{Name: name})
			if err == nil && o.ID != doneOp.ID {
				err = fmt.Errorf("CreateCompute returned operation %q, want %q", o.ID, doneOp.ID)
			}
			return err
		},
		"DryRunCompute": func(ctx context.Context) error {
			_, err := c.DryRunCompute(ctx, ws, api.ComputeRequest{Name: name})
			return err
		},
		"ListVersions":   func(ctx context.Context) error { _, err := c.ListVersions(ctx, "westus"); return err },
		"ListVersionsIn": func(ctx context.Context) error { _, err := c.ListVersionsIn(ctx, ws, "westus"); return err },
		"UpdateCompute": func(ctx context.Context) error {
			return op(c.UpdateCompute(ctx, ws, name, api.ComputeUpdateRequest{}))
		},
		"DetachCompute":    func(ctx context.Context) error { return op(c.DetachCompute(ctx, ws, name, api.DetachRequest{})) },
		"DeleteCompute":    func(ctx context.Context) error { return op(c.DeleteCompute(ctx, ws, name)) },
		"ScaleCompute":     func(ctx context.Context) error { return op(c.ScaleCompute(ctx, ws, name, 3)) },
		"ReconcileCompute": func(ctx context.Context) error { return op(c.ReconcileCompute(ctx, ws, name)) },
		"GetCredentials":   func(ctx context.Context) error { _, err := c.GetCredentials(ctx, ws, name); return err },
		"GetCertificate": func(ctx context.Context) error {
			_, err := c.GetCertificate(ctx, ws, name, true)
			return err
		},
		"ListComputeOperations": func(ctx context.Context) error {
			_, err := c.ListComputeOperations(ctx, ws, name)
			return err
		},
		"GetOperation":    func(ctx context.Context) error { return op(c.GetOperation(ctx, "op1")) },
		"CancelOperation": func(ctx context.Context) error { return op(c.CancelOperation(ctx, "op1")) },
		"ListEvents":      func(ctx context.Context) error { _, err := c.ListEvents(ctx, "op1", 2); return err },
		"ListOperations":  func(ctx context.Context) error { _, err := c.ListOperations(ctx, ws, "Running"); return err },
		"Wait": func(ctx context.Context) error {
			var got []int64
			o, err := c.Wait(ctx, "op1", client.WaitOptions{OnEvent: func(ev api.Event) { got = append(got, ev.Seq) }})
			if err == nil && (o.ID != doneOp.ID || len(got) != 1) {
				err = fmt.Errorf("Wait returned %+v after events %v", o, got)
			}
			return err
		},
		"ListTokens": func(ctx context.Context) error { _, err := c.ListTokens(ctx); return err },
		"CreateToken": func(ctx context.Context) error {
			_, err := c.CreateToken(ctx, api.TokenCreateRequest{})
			return err
		},
		"RevokeToken":   func(ctx context.Context) error { return c.RevokeToken(ctx, "t1") },
		"OpenAPI":       func(ctx context.Context) error { _, err := c.OpenAPI(ctx); return err },
		"ServerVersion": func(ctx context.Context) error { _, err := c.ServerVersion(ctx); return err },
		"Healthy":       func(ctx context.Context) error { return c.Healthy(ctx) },
		"RegisterModel": func(ctx context.Context) error {
			_, err := c.RegisterModel(ctx, ws, client.ModelUpload{Name: "m", FileName: "m.bin", Format: "file", Body: strings.NewReader("model bytes"), Size: -1})
			return err
		},
		"ListModels": func(ctx context.Context) error { _, err := c.ListModels(ctx, ws, "m"); return err },
		"GetModel":   func(ctx context.Context) error { _, err := c.GetModel(ctx, ws, "m", 0); return err },
		"DownloadModel": func(ctx context.Context) error {
			var b bytes.Buffer
			err := c.DownloadModel(ctx, ws, "m", 1, &b)
			if err == nil && b.String() != "artifact bytes" {
				err = fmt.Errorf("DownloadModel wrote %q", b.String())
			}
			return err
		},
		"DeleteModel":   func(ctx context.Context) error { return c.DeleteModel(ctx, ws, "m", 1) },
		"DeployService": func(ctx context.Context) error { return op(c.DeployService(ctx, ws, api.ServiceRequest{})) },
		"GetService":    func(ctx context.Context) error { _, err := c.GetService(ctx, ws, "s"); return err },
		"ListServices":  func(ctx context.Context) error { _, err := c.ListServices(ctx, ws); return err },
		"DeleteService": func(ctx context.Context) error { return op(c.DeleteService(ctx, ws, "s")) },
		"ServiceKeys":   func(ctx context.Context) error { _, err := c.ServiceKeys(ctx, ws, "s"); return err },
		"RegenServiceKey": func(ctx context.Context) error {
			_, err := c.RegenServiceKey(ctx, ws, "s", api.RegenKeyRequest{})
			return err
		},
		"ServiceToken":  func(ctx context.Context) error { _, err := c.ServiceToken(ctx, ws, "s"); return err },
		"UpdateService": func(ctx context.Context) error { return op(c.UpdateService(ctx, ws, "s", api.ServiceSpec{})) },
		"ServiceLogs": func(ctx context.Context) error {
			logs, err := c.ServiceLogs(ctx, ws, "s", "r0", 10)
			if err == nil && logs != "log line\n" {
				err = fmt.Errorf("ServiceLogs returned %q", logs)
			}
			return err
		},
		"ServiceMetrics": func(ctx context.Context) error { _, err := c.ServiceMetrics(ctx, ws, "s", time.Hour); return err },
		"ServiceRequestLogs": func(ctx context.Context) error {
			_, err := c.ServiceRequestLogs(ctx, ws, "s", time.Hour)
			return err
		},
		"ComputeMetrics": func(ctx context.Context) error { _, err := c.ComputeMetrics(ctx, ws, "c1", 0); return err },
		"WhoAmI":         func(ctx context.Context) error { _, err := c.WhoAmI(ctx); return err },
		"ScoreService": func(ctx context.Context) error {
			sc, err := c.ScoreService(ctx, ws, "scored", []byte(`{"data":[[1,2,3,4]]}`))
			if err == nil && string(sc.Body) != `{"predictions":["setosa"]}` {
				err = fmt.Errorf("ScoreService answered %q", sc.Body)
			}
			return err
		},
		"Scorer": func(ctx context.Context) error {
			sv, err := c.GetService(ctx, ws, "scored")
			if err == nil {
				_, err = c.Scorer(ctx, ws, sv)
			}
			return err
		},
		"CreateEndpoint": func(ctx context.Context) error {
			_, err := c.CreateEndpoint(ctx, ws, api.EndpointRequest{Name: "e", Compute: "c1"})
			return err
		},
		"GetEndpoint":    func(ctx context.Context) error { _, err := c.GetEndpoint(ctx, ws, "e"); return err },
		"ListEndpoints":  func(ctx context.Context) error { _, err := c.ListEndpoints(ctx, ws); return err },
		"DeleteEndpoint": func(ctx context.Context) error { _, err := c.DeleteEndpoint(ctx, ws, "e"); return err },
		"SetEndpointTraffic": func(ctx context.Context) error {
			_, err := c.SetEndpointTraffic(ctx, ws, "e", map[string]int{"v1": 100})
			return err
		},
		"AddEndpointVersion": func(ctx context.Context) error {
			_, err := c.AddEndpointVersion(ctx, ws, "e", api.EndpointVersionRequest{Version: "v1"})
			return err
		},
		"UpdateEndpointVersion": func(ctx context.Context) error {
			_, err := c.UpdateEndpointVersion(ctx, ws, "e", "v1", api.EndpointVersionUpdate{})
			return err
		},
		"DeleteEndpointVersion": func(ctx context.Context) error { _, err := c.DeleteEndpointVersion(ctx, ws, "e", "v1"); return err },
		"EndpointKeys":          func(ctx context.Context) error { _, err := c.EndpointKeys(ctx, ws, "e"); return err },
		"RegenEndpointKey": func(ctx context.Context) error {
			_, err := c.RegenEndpointKey(ctx, ws, "e", api.RegenKeyRequest{})
			return err
		},
		"EndpointRequestLogs": func(ctx context.Context) error { _, err := c.EndpointRequestLogs(ctx, ws, "e", time.Hour); return err },
		"EndpointToken":       func(ctx context.Context) error { _, err := c.EndpointToken(ctx, ws, "e"); return err },
		"EndpointScorer": func(ctx context.Context) error {
			_, err := c.EndpointScorer(ctx, ws, &api.Endpoint{Name: "e", Compute: "c1", Auth: api.AuthKey, ScoringURI: "https://x/api/v1/endpoint/e/score"})
			return err
		},
		"StreamServiceLogs": func(ctx context.Context) error {
			var b strings.Builder
			err := c.StreamServiceLogs(ctx, ws, "s", client.LogOptions{Previous: true, Follow: true}, &b)
			if err == nil && b.String() != "log line\n" {
				err = fmt.Errorf("StreamServiceLogs copied %q", b.String())
			}
			return err
		},
	}
}

// TestEveryCallTakesThePipeline calls every method of Client that takes a
// context, streams and the upload included, and checks each request
// carried the token and the User-Agent, the marks of the one pipeline.
func TestEveryCallTakesThePipeline(t *testing.T) {
	f := &fakeServer{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := newClient(t, srv)
	table := calls(c)
	ctxType := reflect.TypeFor[context.Context]()
	ct := reflect.TypeOf(c)
	for i := range ct.NumMethod() {
		m := ct.Method(i)
		if m.Type.NumIn() > 1 && m.Type.In(1) == ctxType && table[m.Name] == nil {
			t.Errorf("%s takes a context but is not in the test's table of calls", m.Name)
		}
	}
	for name, call := range table {
		before := len(f.requests())
		if err := call(context.Background()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		reqs := f.requests()[before:]
		if len(reqs) == 0 {
			t.Errorf("%s sent no request", name)
		}
		for _, r := range reqs {
			if r.path == "/frontend/score" {
				if strings.Contains(r.auth, token) {
					t.Errorf("%s sent the Berth token to the service's scoring URI", name)
				}
				continue // the service's own endpoint
			}
			if r.auth != "Bearer "+token || r.agent != userAgent {
				t.Errorf("%s: %s %s sent Authorization %q and User-Agent %q", name, r.method, r.path, r.auth, r.agent)
			}
		}
	}
	for _, r := range f.requests() {
		switch {
		case r.method == "POST" && strings.HasSuffix(r.path, "/models"):
			if r.ctype != "application/octet-stream" || r.body != "model bytes" || !strings.Contains(r.query, "fileName=m.bin") {
				t.Errorf("upload sent Content-Type %q, body %q, query %q", r.ctype, r.body, r.query)
			}
		case strings.HasSuffix(r.path, "/events") && strings.Contains(r.query, "follow=true"):
			if r.accept != "text/event-stream" {
				t.Errorf("event stream asked for %q", r.accept)
			}
		case r.path == "/api/v1/workspaces" && r.method == "POST":
			if r.ctype != "application/json" || r.accept != "application/json" || !strings.Contains(r.body, `"name":"ws1"`) {
				t.Errorf("create workspace sent Content-Type %q, Accept %q, body %q", r.ctype, r.accept, r.body)
			}
		}
	}
}

// TestNoTokenNoAuthorization: a client without a token sends no
// Authorization header at all (GET /api/v1/version needs none).
func TestNoTokenNoAuthorization(t *testing.T) {
	f := &fakeServer{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := client.New(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServerVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := f.requests()[0]; r.auth != "" || r.agent != "berth-go-sdk" {
		t.Errorf("sent Authorization %q and User-Agent %q", r.auth, r.agent)
	}
}

// countingTransport counts the bytes read from answers' bodies.
type countingTransport struct {
	http.Transport
	n atomic.Int64
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.Transport.RoundTrip(r)
	if err == nil {
		resp.Body = countingBody{resp.Body, &t.n}
	}
	return resp, err
}

// TestHugeErrorBodyIsNotReadInFull: an error answer of 100 MiB is read
// up to 1 MiB, by JSON calls and streams alike, and the error still says
// the status.
func TestHugeErrorBodyIsNotReadInFull(t *testing.T) {
	const huge = 100 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadRequest)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for n := 0; n < huge; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := newClient(t, srv)
	tr := &countingTransport{}
	defer tr.CloseIdleConnections()
	c.WithHTTPClient(&http.Client{Transport: tr})
	table := calls(c)
	for _, name := range []string{"GetWorkspace", "DeleteModel", "RegisterModel", "DownloadModel", "ServiceLogs", "Wait"} {
		tr.n.Store(0)
		err := table[name](context.Background())
		var ce *client.Error
		if !errors.As(err, &ce) || ce.StatusCode != http.StatusBadRequest || !strings.Contains(err.Error(), "HTTP 400") || !errors.Is(err, client.ErrValidation) {
			t.Errorf("%s: got %v, want a *client.Error saying HTTP 400", name, err)
		}
		if n := tr.n.Load(); n > 1<<20 {
			t.Errorf("%s read %d bytes of the error answer, more than 1 MiB", name, n)
		}
		if len(err.Error()) > 2<<10 {
			t.Errorf("%s: the error message is %d bytes long", name, len(err.Error()))
		}
	}
}

// TestErrorBodyNotTheAPIs: an error answer that is not the API's JSON
// (a proxy's page, nothing, JSON without a code) becomes a *client.Error
// naming the request and the status.
func TestErrorBodyNotTheAPIs(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{http.StatusBadGateway, "<html>bad gateway</html>\n", "GET /api/v1/workspaces/ws1: HTTP 502: <html>bad gateway</html>"},
		{http.StatusNotFound, "", "GET /api/v1/workspaces/ws1: HTTP 404: "},
		{http.StatusConflict, `{"message":"no code"}`, `GET /api/v1/workspaces/ws1: HTTP 409: {"message":"no code"}`},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		}))
		c := newClient(t, srv)
		_, err := c.GetWorkspace(context.Background(), "ws1")
		var ce *client.Error
		if !errors.As(err, &ce) || ce.StatusCode != tc.status || ce.Code() != http.StatusText(tc.status) || err.Error() != tc.want {
			t.Errorf("HTTP %d %q: got %#v (%v), want %q", tc.status, tc.body, err, err, tc.want)
		}
		// The same decoder serves streams.
		err = c.DownloadModel(context.Background(), "ws1", "m", 2, io.Discard)
		if want := "GET /api/v1/workspaces/ws1/models/m/versions/2/download: HTTP " + fmt.Sprint(tc.status); !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("download, HTTP %d: got %v, want %q…", tc.status, err, want)
		}
		srv.Close()
	}
}

// TestAPIErrorsAndSentinels: the API's error answers decode into
// *client.Error with code, message and details, and match exactly their
// sentinels with errors.Is, for JSON calls, the upload, the streams and
// Wait.
func TestAPIErrorsAndSentinels(t *testing.T) {
	sentinels := map[string]error{
		"ErrNotFound": client.ErrNotFound, "ErrConflict": client.ErrConflict, "ErrValidation": client.ErrValidation,
		"ErrUnauthorized": client.ErrUnauthorized, "ErrForbidden": client.ErrForbidden,
	}
	for _, tc := range []struct {
		status int
		match  string // the sentinel that matches, if any
	}{
		{http.StatusBadRequest, "ErrValidation"},
		{http.StatusUnprocessableEntity, "ErrValidation"},
		{http.StatusUnauthorized, "ErrUnauthorized"},
		{http.StatusForbidden, "ErrForbidden"},
		{http.StatusNotFound, "ErrNotFound"},
		{http.StatusConflict, "ErrConflict"},
		{http.StatusRequestEntityTooLarge, ""},
		{http.StatusInternalServerError, ""},
	} {
		body := api.ErrorResponse{Error: api.Error{Code: "SomeCode", Message: "it went wrong", Details: []api.ErrorDetail{
			{Code: "A", Message: "first problem", Target: "name"}, {Code: "B", Message: "second problem"},
		}}}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			json.NewEncoder(w).Encode(body)
		}))
		table := calls(newClient(t, srv))
		names := []string{"GetWorkspace", "DeleteWorkspace", "ListComputes", "CreateCompute", "RegisterModel", "DownloadModel", "ServiceLogs", "Wait"}
		if tc.status >= 500 {
			names = names[:len(names)-1] // Wait retries those
		}
		for _, name := range names {
			err := table[name](context.Background())
			var ce *client.Error
			if !errors.As(err, &ce) || ce.StatusCode != tc.status || ce.Code() != "SomeCode" || !reflect.DeepEqual(ce.Details(), body.Error.Details) {
				t.Errorf("%s, HTTP %d: got %#v", name, tc.status, err)
				continue
			}
			if want := "it went wrong\n  - first problem\n  - second problem"; err.Error() != want {
				t.Errorf("%s, HTTP %d: message %q, want %q", name, tc.status, err.Error(), want)
			}
			for sname, s := range sentinels {
				if got := errors.Is(err, s); got != (sname == tc.match) {
					t.Errorf("%s, HTTP %d: errors.Is(err, client.%s) = %v", name, tc.status, sname, got)
				}
				if got := errors.Is(fmt.Errorf("wrapped: %w", err), s); got != (sname == tc.match) {
					t.Errorf("%s, HTTP %d: errors.Is(wrapped err, client.%s) = %v", name, tc.status, sname, got)
				}
			}
		}
		srv.Close()
	}
}

// TestWaitReconnects: Wait retries a stream that answers 5xx or breaks
// before its end, resuming after the last event it saw.
func TestWaitReconnects(t *testing.T) {
	var mu sync.Mutex
	var afters []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		afters = append(afters, r.URL.Query().Get("after"))
		n := len(afters)
		mu.Unlock()
		ev := func(seq int64) {
			b, _ := json.Marshal(api.Event{Seq: seq, Level: api.LevelInfo, Message: fmt.Sprint("event ", seq)})
			fmt.Fprintf(w, "id: %d\nevent: event\ndata: %s\n\n", seq, b)
		}
		switch n {
		case 1:
			http.Error(w, `{"error":{"code":"ShuttingDown","message":"restarting"}}`, http.StatusServiceUnavailable)
		case 2:
			ev(1)
			ev(2) // and the stream breaks
		default:
			ev(2) // seen already
			ev(3)
			op, _ := json.Marshal(api.Operation{ID: "op1", Kind: "Delete", TargetName: "c1", State: api.OpFailed, Error: &api.Error{Code: "X", Message: "boom"}})
			fmt.Fprintf(w, "event: end\ndata: %s\n\n", op)
		}
	}))
	defer srv.Close()
	var seqs []int64
	op, err := newClient(t, srv).Wait(context.Background(), "op1", client.WaitOptions{OnEvent: func(ev api.Event) { seqs = append(seqs, ev.Seq) }})
	var oe *client.OperationError
	if !errors.As(err, &oe) || op == nil || op.State != api.OpFailed || err.Error() != "Delete of c1 failed: boom" {
		t.Fatalf("Wait returned %+v, %v", op, err)
	}
	if !reflect.DeepEqual(seqs, []int64{1, 2, 3}) || !reflect.DeepEqual(afters, []string{"0", "0", "2"}) {
		t.Errorf("events %v from streams after %v; want [1 2 3] after [0 0 2]", seqs, afters)
	}
}

// TestUnreachableServer: a failed round trip says which server it could
// not reach, for JSON calls and streams.
func TestUnreachableServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	c := newClient(t, srv)
	srv.Close()
	table := calls(c)
	for _, name := range []string{"GetWorkspace", "RegisterModel", "DownloadModel"} {
		err := table[name](context.Background())
		if want := "cannot reach the Berth server at " + srv.URL; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: got %v, want %q…", name, err, want)
		}
	}
}
