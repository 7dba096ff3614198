package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/compute"
	"github.com/berth-ml/berth/internal/naming"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/store"
	"github.com/google/uuid"
)

// route is one API endpoint: how it is served and how it is documented.
type route struct {
	Method, Path string
	ID, Summary  string
	// Role is the least role that may call it; "" means no token needed.
	Role     string
	Request  any  // body type, nil if none
	RawBody  bool // the body is raw bytes (application/octet-stream)
	Response any  // success body type, nil if none
	Status   int
	Query    []queryParam
	Stream   bool // answers with server-sent events (when asked)
	Quiet    bool // not in the access log (health probes, metrics)
	Handle   func(w http.ResponseWriter, r *http.Request, p *principal) error
}

type queryParam struct{ Name, Type, Doc string }

const (
	wsPath       = "/api/v1/workspaces/{workspace}"
	computePath  = wsPath + "/computes/{compute}"
	endpointPath = wsPath + "/endpoints/{endpoint}"
)

func (s *Server) routeTable() []route {
	return []route{
		{Method: "GET", Path: "/healthz", ID: "healthz", Summary: "Liveness", Status: 200, Quiet: true,
			Handle: answer(func() any { return map[string]string{"status": "ok"} })},
		{Method: "GET", Path: "/readyz", ID: "readyz", Summary: "Readiness", Status: 200, Quiet: true, Handle: s.readyz},
		{Method: "GET", Path: "/metrics", ID: "metrics", Summary: "Prometheus metrics", Status: 200, Quiet: true, Handle: s.serveMetrics},
		{Method: "GET", Path: "/api/v1/openapi.json", ID: "getOpenAPI", Summary: "This API's OpenAPI 3 document", Status: 200,
			Handle: answer(func() any { return openAPI(s.routes) })},
		// No token, like /healthz and Kubernetes' /version: `berth version`
		// must tell which server it reaches before the user has a token (or
		// when theirs is wrong), and it tells nothing a workspace holds.
		{Method: "GET", Path: "/api/v1/version", ID: "getVersion", Summary: "The server's version, commit, Go version and the front-end image it installs (no token needed)",
			Response: api.BuildInfo{}, Status: 200, Handle: answer(func() any { return s.BuildInfo() })},

		{Method: "GET", Path: "/api/v1/workspaces", ID: "listWorkspaces", Summary: "List workspaces", Role: api.RoleReader,
			Response: api.WorkspaceList{}, Status: 200, Handle: s.listWorkspaces},
		{Method: "POST", Path: "/api/v1/workspaces", ID: "createWorkspace", Summary: "Create a workspace", Role: api.RoleContributor,
			Request: api.WorkspaceCreateRequest{}, Response: api.Workspace{}, Status: 201, Handle: s.createWorkspace},
		{Method: "GET", Path: wsPath, ID: "getWorkspace", Summary: "Show a workspace with its computes", Role: api.RoleReader,
			Response: api.Workspace{}, Status: 200, Handle: s.getWorkspace},
		{Method: "PATCH", Path: wsPath, ID: "updateWorkspace", Summary: "Change a workspace's settings (ACME, DNS zone, DNS-01 provider)", Role: api.RoleContributor,
			Request: api.WorkspaceUpdateRequest{}, Response: api.Workspace{}, Status: 200, Handle: s.updateWorkspace},
		{Method: "DELETE", Path: wsPath, ID: "deleteWorkspace", Summary: "Delete an empty workspace", Role: api.RoleContributor,
			Status: 204, Handle: s.deleteWorkspace},

		{Method: "GET", Path: wsPath + "/computes", ID: "listComputes", Summary: "List compute targets", Role: api.RoleReader,
			Response: api.ComputeList{}, Status: 200, Handle: s.listComputes},
		{Method: "POST", Path: wsPath + "/computes", ID: "createCompute", Summary: "Create or attach a compute target (origin created|attached)", Role: api.RoleContributor,
			Request: api.ComputeRequest{}, Response: api.Operation{}, Status: 202, Handle: s.createCompute},
		{Method: "GET", Path: computePath, ID: "getCompute", Summary: "Show a compute target", Role: api.RoleReader,
			Response: api.Compute{}, Status: 200, Handle: s.getCompute},
		{Method: "PATCH", Path: computePath, ID: "updateCompute", Summary: "Update load balancer or SSL settings in place", Role: api.RoleContributor,
			Request: api.ComputeUpdateRequest{}, Response: api.Operation{}, Status: 202, Handle: onWorkspace("compute", false, s.computes.Update)},
		{Method: "DELETE", Path: computePath, ID: "deleteCompute", Summary: "Delete a created cluster", Role: api.RoleContributor,
			Response: api.Operation{}, Status: 202, Handle: onWorkspace("compute", true, func(ctx context.Context, ws *api.Workspace, name string, _ *struct{}) (*store.Operation, error) {
				return s.computes.Delete(ctx, ws, name)
			})},
		{Method: "POST", Path: computePath + "/detach", ID: "detachCompute", Summary: "Remove Berth from the cluster and forget it; never deletes the cluster", Role: api.RoleContributor,
			Request: api.DetachRequest{}, Response: api.Operation{}, Status: 202, Handle: onWorkspace("compute", true, s.computes.Detach)},
		{Method: "POST", Path: computePath + "/scale", ID: "scaleCompute", Summary: "Change the node count of a created cluster", Role: api.RoleContributor,
			Request: api.ScaleRequest{}, Response: api.Operation{}, Status: 202, Handle: onWorkspace("compute", false, s.computes.Scale)},
		{Method: "POST", Path: computePath + "/reconcile", ID: "reconcileCompute", Summary: "Re-apply Berth's state and refresh the cluster's facts", Role: api.RoleContributor,
			Response: api.Operation{}, Status: 202, Handle: onWorkspace("compute", true, func(ctx context.Context, ws *api.Workspace, name string, _ *api.ReconcileRequest) (*store.Operation, error) {
				return s.computes.Reconcile(ctx, ws, name)
			})},
		{Method: "GET", Path: computePath + "/metrics", ID: "getComputeMetrics", Summary: "The recent traffic of a compute's front end, all services together", Role: api.RoleReader,
			Response: api.Metrics{}, Status: 200, Handle: s.computeMetrics, Query: []queryParam{sinceParam}},
		{Method: "GET", Path: computePath + "/credentials", ID: "getComputeCredentials", Summary: "The compute's stored credentials (owners only)", Role: api.RoleOwner,
			Response: api.Credentials{}, Status: 200, Handle: s.getCredentials},
		{Method: "GET", Path: computePath + "/certificate", ID: "getComputeCertificate", Summary: "The front end's TLS certificate (the key with includeKey=true, owners only)", Role: api.RoleReader,
			Response: api.Certificate{}, Status: 200, Handle: s.getCertificate, Query: []queryParam{{Name: "includeKey", Type: "boolean", Doc: "also return the private key (owners only)"}}},
		{Method: "GET", Path: computePath + "/operations", ID: "listComputeOperations", Summary: "A compute's operations, newest first", Role: api.RoleReader,
			Response: api.OperationList{}, Status: 200, Handle: s.listComputeOperations},

		{Method: "POST", Path: wsPath + "/models", ID: "registerModel", Summary: "Register a new version of a model; the body is the artifact (a file, or a directory as tar.gz), checked as it arrives: 400 InvalidArtifact if it cannot be unpacked, 413 ArtifactTooLarge beyond the server's limits (--max-model-unpacked-bytes, --max-model-files)", Role: api.RoleContributor,
			RawBody: true, Response: api.Model{}, Status: 201, Handle: s.registerModel, Query: []queryParam{
				{Name: "name", Type: "string", Doc: "model name"}, {Name: "fileName", Type: "string", Doc: "the file's name, or the directory's: no folders, no control characters, at most 255 bytes"},
				{Name: "format", Type: "string", Doc: "file or tar.gz"}, {Name: "description", Type: "string", Doc: "what the model is"},
				{Name: "tag", Type: "string", Doc: "key=value, repeatable"}}},
		{Method: "GET", Path: wsPath + "/models", ID: "listModels", Summary: "List model versions", Role: api.RoleReader,
			Response: api.ModelList{}, Status: 200, Handle: s.listModels, Query: []queryParam{{Name: "name", Type: "string", Doc: "only this model's versions"}}},
		{Method: "GET", Path: wsPath + "/models/{model}", ID: "getModel", Summary: "Show a model version (the latest unless ?version=)", Role: api.RoleReader,
			Response: api.Model{}, Status: 200, Handle: s.getModel, Query: []queryParam{{Name: "version", Type: "string", Doc: "a version number or latest"}}},
		{Method: "GET", Path: wsPath + "/models/{model}/versions/{version}/download", ID: "downloadModel", Summary: "Download a model version's artifact", Role: api.RoleReader,
			Status: 200, Handle: s.downloadModel},
		{Method: "DELETE", Path: wsPath + "/models/{model}/versions/{version}", ID: "deleteModel", Summary: "Delete a model version", Role: api.RoleContributor,
			Status: 204, Handle: s.deleteModel},
		{Method: "GET", Path: wsPath + "/services", ID: "listServices", Summary: "List scoring services", Role: api.RoleReader,
			Response: api.ServiceList{}, Status: 200, Handle: s.listServices},
		{Method: "POST", Path: wsPath + "/services", ID: "deployService", Summary: "Deploy models as a scoring service", Role: api.RoleContributor,
			Request: api.ServiceRequest{}, Response: api.Operation{}, Status: 202, Handle: onWorkspace("", false, func(ctx context.Context, ws *api.Workspace, _ string, req *api.ServiceRequest) (*store.Operation, error) {
				return s.services.Deploy(ctx, ws, req)
			})},
		{Method: "GET", Path: wsPath + "/services/{service}", ID: "getService", Summary: "Show a scoring service", Role: api.RoleReader,
			Response: api.Service{}, Status: 200, Handle: onWorkspace("service", false, func(ctx context.Context, ws *api.Workspace, name string, _ *noBody) (*api.Service, error) {
				sv, err := s.services.Get(ctx, ws, name)
				if err != nil {
					return nil, err
				}
				return &sv.Service, nil
			})},
		{Method: "PATCH", Path: wsPath + "/services/{service}", ID: "updateService", Summary: "Update a scoring service in place (rolling, no downtime); empty fields keep their values", Role: api.RoleContributor,
			Request: api.ServiceSpec{}, Response: api.Operation{}, Status: 202, Handle: onWorkspace("service", false, s.services.Update)},
		{Method: "DELETE", Path: wsPath + "/services/{service}", ID: "deleteService", Summary: "Delete a scoring service", Role: api.RoleContributor,
			Response: api.Operation{}, Status: 202, Handle: onName("service", s.services.Delete)},
		{Method: "GET", Path: wsPath + "/services/{service}/logs", ID: "getServiceLogs", Summary: "The last lines of a service's replica logs (text; contributors and owners: what a replica prints is its code's, not the service's metadata)", Role: api.RoleContributor,
			Status: 200, Handle: s.serviceLogs, Query: []queryParam{{Name: "replica", Type: "string", Doc: "one replica"}, {Name: "tail", Type: "integer", Doc: "lines per replica (default 100)"},
				{Name: "previous", Type: "boolean", Doc: "what ran before: the local compute's earlier generations, a cluster's previous (crashed) containers"},
				{Name: "follow", Type: "boolean", Doc: "then stream what the replicas print until the client disconnects"}}},
		{Method: "GET", Path: wsPath + "/services/{service}/metrics", ID: "getServiceMetrics", Summary: "A service's recent traffic through its compute's front end: request rate, errors by code, latency and queue time percentiles, replicas", Role: api.RoleReader,
			Response: api.Metrics{}, Status: 200, Handle: s.serviceMetrics, Query: []queryParam{sinceParam}},
		{Method: "GET", Path: wsPath + "/services/{service}/request-logs", ID: "getServiceRequestLogs", Summary: "A service's logged requests and answers (--log-requests) as JSON Lines, oldest first (contributors and owners: the bodies are the clients' data)", Role: api.RoleContributor,
			Status: 200, Handle: s.serviceRequestLogs, Query: []queryParam{logsSinceParam}},
		{Method: "GET", Path: wsPath + "/services/{service}/keys", ID: "getServiceKeys", Summary: "A key-auth service's keys (owners only)", Role: api.RoleOwner,
			Response: api.ServiceKeys{}, Status: 200, Handle: s.serviceKeys},
		{Method: "POST", Path: wsPath + "/services/{service}/regen-key", ID: "regenServiceKey", Summary: "Replace a service key (owners only)", Role: api.RoleOwner,
			Request: api.RegenKeyRequest{}, Response: api.ServiceKeys{}, Status: 200, Handle: s.regenServiceKey},
		{Method: "GET", Path: "/api/v1/delivery/services/{service}/models/{model}/versions/{version}", ID: "deliverModel",
			Summary: "A model artifact for a replica's init container; the bearer token is the pod's projected service-account token (audience berth:<attachment>), checked with the cluster's TokenReview",
			Status:  200, Handle: s.deliverModel},
		{Method: "POST", Path: "/api/v1/delivery/computes/{compute}/frontend-metrics", ID: "reportFrontendMetrics",
			Summary: "A cluster front end's metrics (Prometheus text format), reported every metrics interval; the bearer token is the berth-fe pod's projected service-account token (audience berth:<attachment>), checked with the cluster's TokenReview",
			Status:  204, Handle: s.reportFrontendMetrics},
		{Method: "POST", Path: "/api/v1/delivery/computes/{compute}/request-logs", ID: "reportRequestLogs",
			Summary: "A batch of a cluster front end's request logs (JSON Lines), filed in the artifact store by the hour; authenticated as its metrics reports are",
			Status:  204, Handle: s.reportRequestLogs},
		{Method: "POST", Path: wsPath + "/services/{service}/token", ID: "getServiceToken", Summary: "A short-lived token for a token-auth service (owners only, as keys are)", Role: api.RoleOwner,
			Response: api.ServiceToken{}, Status: 200, Handle: onName("service", s.services.Token)},
		{Method: "GET", Path: wsPath + "/endpoints", ID: "listEndpoints", Summary: "List endpoints", Role: api.RoleReader,
			Response: api.EndpointList{}, Status: 200, Handle: onWorkspace("", false, func(ctx context.Context, ws *api.Workspace, _ string, _ *noBody) (*api.EndpointList, error) {
				return s.endpoints.List(ctx, ws)
			})},
		{Method: "POST", Path: wsPath + "/endpoints", ID: "createEndpoint", Summary: "Create an endpoint: one scoring URI (and its keys) over versions added later", Role: api.RoleContributor,
			Request: api.EndpointRequest{}, Response: api.Endpoint{}, Status: 200, Handle: onWorkspace("", false, func(ctx context.Context, ws *api.Workspace, _ string, req *api.EndpointRequest) (*api.Endpoint, error) {
				return s.endpoints.Create(ctx, ws, req)
			})},
		{Method: "GET", Path: endpointPath, ID: "getEndpoint", Summary: "Show an endpoint with its versions and their traffic", Role: api.RoleReader,
			Response: api.Endpoint{}, Status: 200, Handle: onName("endpoint", s.endpoints.Show)},
		{Method: "PATCH", Path: endpointPath, ID: "setEndpointTraffic", Summary: "Set several versions' traffic in one atomic change (the result sums to 100)", Role: api.RoleContributor,
			Request: api.EndpointTrafficRequest{}, Response: api.EndpointChange{}, Status: 200, Handle: onWorkspace("endpoint", false, s.endpoints.SetTraffic)},
		{Method: "DELETE", Path: endpointPath, ID: "deleteEndpoint", Summary: "Stop serving an endpoint and delete its versions' services", Role: api.RoleContributor,
			Response: api.EndpointChange{}, Status: 200, Handle: onName("endpoint", s.endpoints.Delete)},
		{Method: "POST", Path: endpointPath + "/versions", ID: "addEndpointVersion", Summary: "Deploy a version of an endpoint (a service) with its share of the traffic", Role: api.RoleContributor,
			Request: api.EndpointVersionRequest{}, Response: api.EndpointChange{}, Status: 200, Handle: onWorkspace("endpoint", false, s.endpoints.AddVersion)},
		{Method: "PATCH", Path: endpointPath + "/versions/{version}", ID: "updateEndpointVersion", Summary: "Change a version's traffic (one atomic change) and, with service settings, roll its service", Role: api.RoleContributor,
			Request: api.EndpointVersionUpdate{}, Response: api.EndpointChange{}, Status: 200, Handle: onVersion(func(ctx context.Context, ws *api.Workspace, name, version string, req *api.EndpointVersionUpdate) (*api.EndpointChange, error) {
				return s.endpoints.UpdateVersion(ctx, ws, name, version, req)
			})},
		{Method: "DELETE", Path: endpointPath + "/versions/{version}", ID: "deleteEndpointVersion", Summary: "Delete a version that has no traffic left, and its service", Role: api.RoleContributor,
			Response: api.EndpointChange{}, Status: 200, Handle: onVersion(func(ctx context.Context, ws *api.Workspace, name, version string, _ *noBody) (*api.EndpointChange, error) {
				return s.endpoints.DeleteVersion(ctx, ws, name, version)
			})},
		{Method: "GET", Path: endpointPath + "/request-logs", ID: "getEndpointRequestLogs", Summary: "An endpoint's logged requests and answers, of every version (each version's --log-requests), as JSON Lines, oldest first (contributors and owners)", Role: api.RoleContributor,
			Status: 200, Handle: s.endpointRequestLogs, Query: []queryParam{logsSinceParam}},
		{Method: "GET", Path: endpointPath + "/keys", ID: "getEndpointKeys", Summary: "A key-auth endpoint's keys (owners only)", Role: api.RoleOwner,
			Response: api.ServiceKeys{}, Status: 200, Handle: onName("endpoint", s.endpoints.Keys)},
		{Method: "POST", Path: endpointPath + "/regen-key", ID: "regenEndpointKey", Summary: "Replace an endpoint key (owners only)", Role: api.RoleOwner,
			Request: api.RegenKeyRequest{}, Response: api.ServiceKeys{}, Status: 200, Handle: onWorkspace("endpoint", false, s.endpoints.RegenKey)},
		{Method: "POST", Path: endpointPath + "/token", ID: "getEndpointToken", Summary: "A short-lived token for a token-auth endpoint (owners only)", Role: api.RoleOwner,
			Response: api.ServiceToken{}, Status: 200, Handle: onName("endpoint", s.endpoints.Token)},
		{Method: "GET", Path: "/api/v1/versions", ID: "listVersions", Summary: "Kubernetes versions Berth supports (default marked)", Role: api.RoleReader,
			Response: api.VersionList{}, Status: 200, Handle: s.versions, Query: []queryParam{{Name: "location", Type: "string", Doc: "an Azure location (AKS provider)"}, {Name: "workspace", Type: "string", Doc: "the workspace whose Azure subscription and credentials to use"}}},
		{Method: "GET", Path: wsPath + "/operations", ID: "listOperations", Summary: "A workspace's operations (of computes and services), newest first, at most 100", Role: api.RoleReader,
			Response: api.OperationList{}, Status: 200, Handle: s.listOperations, Query: []queryParam{{Name: "state", Type: "string", Doc: "only operations in this state: Pending, Running, Succeeded, Failed or Canceled"}}},
		{Method: "GET", Path: "/api/v1/operations/{operation}", ID: "getOperation", Summary: "Show an operation", Role: api.RoleReader,
			Response: api.Operation{}, Status: 200, Handle: s.getOperation},
		{Method: "GET", Path: "/api/v1/operations/{operation}/events", ID: "listOperationEvents", Summary: "An operation's events; follow=true streams them (server-sent events)", Role: api.RoleReader,
			Response: api.EventList{}, Status: 200, Stream: true, Handle: s.listEvents, Query: []queryParam{
				{Name: "after", Type: "integer", Doc: "only events after this sequence number"},
				{Name: "follow", Type: "boolean", Doc: "stream events as server-sent events until the operation ends"}}},
		{Method: "POST", Path: "/api/v1/operations/{operation}/cancel", ID: "cancelOperation", Summary: "Cancel an operation (it stops at its next step)", Role: api.RoleContributor,
			Response: api.Operation{}, Status: 202, Handle: s.cancelOperation},

		{Method: "GET", Path: "/api/v1/whoami", ID: "whoami", Summary: "The caller's own token: its id, role and workspace scope (no secret)", Role: api.RoleReader,
			Response: api.Token{}, Status: 200, Handle: func(w http.ResponseWriter, _ *http.Request, p *principal) error {
				return writeJSON(w, http.StatusOK, p.token.Token)
			}},
		{Method: "GET", Path: "/api/v1/tokens", ID: "listTokens", Summary: "List API tokens (owners only)", Role: api.RoleOwner,
			Response: api.TokenList{}, Status: 200, Handle: s.listTokens},
		{Method: "POST", Path: "/api/v1/tokens", ID: "createToken", Summary: "Create an API token; the secret is shown once", Role: api.RoleOwner,
			Request: api.TokenCreateRequest{}, Response: api.TokenCreated{}, Status: 201, Handle: s.createToken},
		{Method: "DELETE", Path: "/api/v1/tokens/{token}", ID: "revokeToken", Summary: "Revoke an API token", Role: api.RoleOwner,
			Status: 204, Handle: s.revokeToken},
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if !s.ready.Load() {
		return writeJSON(w, 503, map[string]string{"status": "starting or stopping"})
	}
	if err := s.store.Ping(r.Context()); err != nil {
		return writeJSON(w, 503, map[string]string{"status": "database unreachable"})
	}
	return writeJSON(w, 200, map[string]string{"status": "ready", "database": s.store.Dialect()})
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ *principal) error {
	s.metrics.handler().ServeHTTP(w, r)
	return nil
}

// answer serves a route whose answer needs nothing of the request: 200
// with what fn gives.
func answer(fn func() any) func(http.ResponseWriter, *http.Request, *principal) error {
	return func(w http.ResponseWriter, _ *http.Request, _ *principal) error {
		return writeJSON(w, http.StatusOK, fn())
	}
}

// workspace loads a workspace by name.
func (s *Server) workspace(ctx context.Context, name string) (*api.Workspace, error) {
	ws, err := s.store.GetWorkspace(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem.NotFound("workspace %q not found", name)
	}
	return ws, err
}

func (s *Server) listWorkspaces(w http.ResponseWriter, r *http.Request, p *principal) error {
	all, err := s.store.ListWorkspaces(r.Context())
	if err != nil {
		return err
	}
	out := api.WorkspaceList{Value: []api.Workspace{}}
	for _, ws := range all {
		if p.inWorkspace(ws.Name) {
			ws.Settings = ws.Settings.Redacted()
			out.Value = append(out.Value, ws)
		}
	}
	return writeJSON(w, 200, out)
}

var regionChars = func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }

func (s *Server) createWorkspace(w http.ResponseWriter, r *http.Request, p *principal) error {
	if p.token.Workspace != "" {
		return problem.Forbidden("your token (%s) is limited to workspace %q and cannot create workspaces", p.token.ID, p.token.Workspace)
	}
	var req api.WorkspaceCreateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	details := naming.Workspace(req.Name)
	req.Region = strings.ToLower(cmp.Or(req.Region, "local"))
	if len(req.Region) > 40 || strings.IndexFunc(req.Region, regionChars) >= 0 {
		details = append(details, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "region",
			Message: "region " + quote(req.Region) + " must be lowercase letters and digits, like westus2"})
	}
	details = append(details, validateSettings(req.Settings)...)
	if len(details) > 0 {
		return problem.Validation("", details)
	}
	ws := &api.Workspace{ID: uuid.NewString(), Name: req.Name, Region: req.Region, Settings: req.Settings}
	err := s.store.CreateWorkspace(r.Context(), ws)
	if errors.Is(err, store.ErrNameInUse) {
		return problem.Conflict(api.CodeNameInUse, "a workspace named %q already exists (names are unique regardless of case)", req.Name)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/workspaces/"+ws.Name)
	ws.Settings = ws.Settings.Redacted()
	return writeJSON(w, 201, ws)
}

func quote(s string) string { b, _ := json.Marshal(problem.Shorten(s)); return string(b) }

func (s *Server) getWorkspace(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	cs, err := s.store.ListComputes(r.Context(), ws.ID)
	if err != nil {
		return err
	}
	ws.Computes = make([]api.Compute, 0, len(cs))
	for _, c := range cs {
		ws.Computes = append(ws.Computes, c.Compute)
	}
	ws.Settings = ws.Settings.Redacted()
	return writeJSON(w, 200, ws)
}

func (s *Server) deleteWorkspace(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	err := s.store.DeleteWorkspace(r.Context(), ws.ID)
	if err == nil {
		s.artifacts.DeletePrefix(r.Context(), ws.ID)
		s.artifacts.DeletePrefix(r.Context(), requestLogPrefix+"/"+ws.ID)
	}
	if errors.Is(err, store.ErrNotEmpty) {
		n, _ := s.store.CountComputes(r.Context(), ws.ID)
		return problem.Conflict(api.CodeWorkspaceNotEmpty, "workspace %q still has %d compute(s); detach or delete them first (berth compute list -w %s)", ws.Name, n, ws.Name)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(204)
	return nil
}

// listComputes writes the stored documents as they are: no decoding, so a
// thousand computes list in a few milliseconds.
func (s *Server) listComputes(w http.ResponseWriter, r *http.Request, p *principal) error {
	docs, err := s.store.ListComputeDocs(r.Context(), p.ws.ID)
	if err != nil {
		return err
	}
	size := 16
	for _, d := range docs {
		size += len(d) + 1
	}
	buf := make([]byte, 0, size)
	buf = append(buf, `{"value":[`...)
	for i, d := range docs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, d...)
	}
	buf = append(buf, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	_, err = w.Write(buf)
	return err
}

// noBody is the request of a call that takes no body.
type noBody struct{}

// onWorkspace serves a route that calls fn with the path's workspace, the
// resource its param names ("" for none) and the decoded body (none for
// noBody; an optional one may be empty). An operation answers 202 with its
// Location, anything else 200 as JSON.
func onWorkspace[Req, Resp any](param string, optional bool, fn func(ctx context.Context, ws *api.Workspace, name string, req *Req) (Resp, error)) func(http.ResponseWriter, *http.Request, *principal) error {
	return func(w http.ResponseWriter, r *http.Request, p *principal) error {
		var req Req
		if _, none := any(&req).(*noBody); !none && (!optional || r.ContentLength != 0) {
			if err := decode(r, &req); err != nil {
				return err
			}
		}
		out, err := fn(r.Context(), p.ws, r.PathValue(param), &req)
		if err != nil {
			return err
		}
		if op, ok := any(out).(*store.Operation); ok {
			return accepted(w, op)
		}
		return writeJSON(w, http.StatusOK, out)
	}
}

// onName is onWorkspace for a call that takes no body.
func onName[Resp any](param string, fn func(ctx context.Context, ws *api.Workspace, name string) (Resp, error)) func(http.ResponseWriter, *http.Request, *principal) error {
	return onWorkspace(param, false, func(ctx context.Context, ws *api.Workspace, name string, _ *noBody) (Resp, error) {
		return fn(ctx, ws, name)
	})
}

// onVersion is onWorkspace for an endpoint's version: the endpoint and
// version come from the path.
func onVersion[Req, Resp any](fn func(ctx context.Context, ws *api.Workspace, name, version string, req *Req) (Resp, error)) func(http.ResponseWriter, *http.Request, *principal) error {
	return func(w http.ResponseWriter, r *http.Request, p *principal) error {
		return onWorkspace("endpoint", false, func(ctx context.Context, ws *api.Workspace, name string, req *Req) (Resp, error) {
			return fn(ctx, ws, name, r.PathValue("version"), req)
		})(w, r, p)
	}
}

// accepted answers 202 with the operation and its Location (nil, as
// writeJSON).
func accepted(w http.ResponseWriter, op *store.Operation) error {
	w.Header().Set("Location", "/api/v1/operations/"+op.ID)
	return writeJSON(w, http.StatusAccepted, op.Operation)
}

// createCompute starts a create or attach, or answers a dry run's
// preflight report (200) without changing anything.
func (s *Server) createCompute(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req api.ComputeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	_, op, err := s.computes.Create(r.Context(), p.ws, &req)
	if dry, ok := errors.AsType[*compute.DryRunResult](err); ok {
		return writeJSON(w, http.StatusOK, dry.Report)
	}
	if err != nil {
		return err
	}
	return accepted(w, op)
}

// versionLister is a provider that lists a cloud location's versions (AKS).
type versionLister interface {
	Versions(ctx context.Context, ws *api.Workspace, location string) (*api.VersionList, error)
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request, p *principal) error {
	if loc := r.URL.Query().Get("location"); loc != "" {
		prov, _ := s.computes.Providers.Get(api.ComputeAKS)
		vl, ok := prov.(versionLister)
		if !ok {
			return problem.New(http.StatusBadRequest, api.CodeLocationNotAvailable,
				"versions for an Azure location come from the AKS provider, which this server does not have configured; omit the location to list the versions Berth supports")
		}
		var ws *api.Workspace
		if name := r.URL.Query().Get("workspace"); name != "" {
			if !p.inWorkspace(name) {
				return problem.Forbidden("your token is limited to workspace %q", p.token.Workspace)
			}
			got, err := s.workspace(r.Context(), name)
			if err != nil {
				return err
			}
			ws = got
		}
		list, err := vl.Versions(r.Context(), ws, loc)
		if err != nil {
			return err
		}
		return writeJSON(w, 200, list)
	}
	return writeJSON(w, 200, supportedVersions(s.cfg.KubernetesVersions))
}

func (s *Server) getCompute(w http.ResponseWriter, r *http.Request, p *principal) error {
	c, err := s.computes.Get(r.Context(), p.ws, r.PathValue("compute"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, c.Compute)
}

func (s *Server) getCredentials(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	c, err := s.computes.Get(r.Context(), ws, r.PathValue("compute"))
	if err != nil {
		return err
	}
	cred := c.Secrets["credentials"]
	if cred == "" {
		return problem.NotFound("compute %q holds no credentials", c.Name)
	}
	s.log.Info("credentials read", "compute", c.Name, "workspace", ws.Name, "token", p.token.ID)
	return writeJSON(w, 200, api.Credentials{Value: cred})
}

func (s *Server) listComputeOperations(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	name := r.PathValue("compute")
	ops, err := s.store.ListOperations(r.Context(), ws.ID, name, "", 100)
	if err != nil {
		return err
	}
	if len(ops) == 0 {
		if _, err := s.computes.Get(r.Context(), ws, name); err != nil {
			return err
		}
	}
	writeOperations(w, ops)
	return nil
}

func (s *Server) listOperations(w http.ResponseWriter, r *http.Request, p *principal) error {
	var state api.OperationState
	if q := r.URL.Query().Get("state"); q != "" {
		for _, st := range []api.OperationState{api.OpPending, api.OpRunning, api.OpSucceeded, api.OpFailed, api.OpCanceled} {
			if strings.EqualFold(q, string(st)) {
				state = st
			}
		}
		if state == "" {
			return problem.Validation("", []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, "state", "state %q is not one of Pending, Running, Succeeded, Failed, Canceled", q)})
		}
	}
	ops, err := s.store.ListOperations(r.Context(), p.ws.ID, "", state, 100)
	if err != nil {
		return err
	}
	writeOperations(w, ops)
	return nil
}

func writeOperations(w http.ResponseWriter, ops []store.Operation) {
	out := api.OperationList{Value: make([]api.Operation, 0, len(ops))}
	for _, o := range ops {
		out.Value = append(out.Value, o.Operation)
	}
	writeJSON(w, 200, out)
}

// operation loads the {operation} of the path, within the caller's reach.
func (s *Server) operation(r *http.Request, p *principal) (*store.Operation, error) {
	id := r.PathValue("operation")
	op, err := s.store.GetOperation(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !p.inWorkspace(op.Workspace)) {
		return nil, problem.NotFound("operation %q not found", id)
	}
	return op, err
}

func (s *Server) getOperation(w http.ResponseWriter, r *http.Request, p *principal) error {
	op, err := s.operation(r, p)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, op.Operation)
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, p *principal) error {
	op, err := s.operation(r, p)
	if err != nil {
		return err
	}
	after, err := parseAfter(r)
	if err != nil {
		return err
	}
	if follow, err := boolQuery(r, "follow"); err != nil {
		return err
	} else if follow {
		return s.streamEvents(w, r, op, after)
	}
	evs, err := s.store.ListEvents(r.Context(), op.ID, after)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, api.EventList{Value: evs})
}

func (s *Server) cancelOperation(w http.ResponseWriter, r *http.Request, p *principal) error {
	op, err := s.operation(r, p)
	if err != nil {
		return err
	}
	if op.Terminal() {
		return problem.Conflict(api.CodeConflict, "operation %s has already ended (%s)", op.ID, op.State)
	}
	pending, err := s.store.RequestCancel(r.Context(), op.ID)
	if err != nil {
		return err
	}
	s.engine.Canceled(op.ID)
	if op, err = s.store.GetOperation(r.Context(), op.ID); err != nil {
		return err
	}
	// A running operation may have stopped already (the engine was told at
	// once): only one that never started is finished here.
	if pending {
		// Canceled before it started: the compute must not stay in a transitional state.
		if err := s.computes.CanceledBeforeStart(r.Context(), op); err != nil {
			return err
		}
	}
	s.events.publish(op.ID)
	return accepted(w, op)
}

// Tokens are managed within the caller's scope: an owner limited to a
// workspace sees, makes and revokes only that workspace's tokens; only an
// unscoped owner manages unscoped ones.

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	ts, err := s.store.ListTokens(r.Context(), p.token.Workspace)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, api.TokenList{Value: ts})
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req api.TokenCreateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	var details []api.ErrorDetail
	if _, ok := roleRank[req.Role]; !ok {
		details = append(details, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "role",
			Message: "role " + quote(req.Role) + " is not valid: use owner, contributor or reader"})
	}
	if len(req.Description) > 200 {
		details = append(details, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "description", Message: "description must be at most 200 characters"})
	}
	if p.token.Workspace != "" && !strings.EqualFold(req.Workspace, p.token.Workspace) {
		return problem.Forbidden("your token (%s) is limited to workspace %q and can only create tokens for it", p.token.ID, p.token.Workspace)
	}
	if req.Workspace != "" {
		ws, err := s.store.GetWorkspace(r.Context(), req.Workspace)
		switch {
		case errors.Is(err, store.ErrNotFound):
			details = append(details, api.ErrorDetail{Code: api.CodeNotFound, Target: "workspace", Message: "workspace " + quote(req.Workspace) + " not found"})
		case err != nil:
			return err
		default:
			req.Workspace = ws.Name
		}
	}
	if len(details) > 0 {
		return problem.Validation("", details)
	}
	id, secret := newToken()
	t := &store.Token{Token: api.Token{ID: id, Role: req.Role, Workspace: req.Workspace, Description: req.Description}, Hash: hashToken(secret)}
	if err := s.store.CreateToken(r.Context(), t); err != nil {
		return err
	}
	s.log.Info("token created", "id", id, "role", req.Role, "workspace", req.Workspace, "by", p.token.ID)
	return writeJSON(w, 201, api.TokenCreated{Token: t.Token, Secret: secret})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("token")
	if p.token.Workspace != "" {
		ws, err := s.store.TokenWorkspace(r.Context(), id)
		if err == nil && !strings.EqualFold(ws, p.token.Workspace) {
			return problem.Forbidden("your token (%s) is limited to workspace %q and can only revoke its tokens", p.token.ID, p.token.Workspace)
		}
	}
	err := s.store.RevokeToken(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return problem.NotFound("token %q not found (or already revoked)", id)
	}
	if err != nil {
		return err
	}
	s.tokens.drop()
	s.log.Info("token revoked", "id", id, "by", p.token.ID)
	w.WriteHeader(204)
	return nil
}

func (s *Server) getCertificate(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	c, err := s.computes.Get(r.Context(), ws, r.PathValue("compute"))
	if err != nil {
		return err
	}
	withKey := r.URL.Query().Get("includeKey") == "true"
	if withKey && !p.can(api.RoleOwner) {
		return problem.Forbidden("the certificate's key is for owners only; your token (%s) has role %s", p.token.ID, p.token.Role)
	}
	cert := c.Secrets["tlsCert"]
	if cert == "" {
		return problem.NotFound("compute %q serves no TLS certificate (SSL is %s)", c.Name, c.SSLConfiguration.Status)
	}
	out := api.Certificate{CertPEM: cert, CAPEM: c.Secrets["caCert"]}
	if withKey {
		out.KeyPEM = c.Secrets["tlsKey"]
		s.log.Info("certificate key read", "compute", c.Name, "workspace", ws.Name, "token", p.token.ID)
	}
	return writeJSON(w, http.StatusOK, out)
}
