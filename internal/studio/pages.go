package studio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/service"
)

// pages are the parsed templates: layout.html around each page's own.
type pages struct{ byName map[string]*template.Template }

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := time.Since(t).Round(time.Second)
		switch {
		case d < time.Minute:
			return fmt.Sprintf("%ds ago", int(d.Seconds()))
		case d < time.Hour:
			return fmt.Sprintf("%dm ago", int(d.Minutes()))
		case d < 48*time.Hour:
			return fmt.Sprintf("%dh ago", int(d.Hours()))
		}
		return t.UTC().Format("2006-01-02")
	},
	"date": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"cpus": func(v float64) string {
		if v == 0 {
			return ""
		}
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", v), "0"), ".0")
	},
	"lower": strings.ToLower,
	"join":  strings.Join,
	// field finds the problems of a form field among an API error's details.
	"field":    func(errs map[string][]string, name string) []string { return errs[name] },
	"fe":       func(errs map[string][]string, name string) fieldErr { return fieldErr{ID: name, Msgs: errs[name]} },
	"fieldErr": func(id string, msgs []string) fieldErr { return fieldErr{ID: id, Msgs: msgs} },
	// in is one labelled input of a form, with its value and problems.
	"in": func(errs map[string][]string, form map[string]string, name, label, typ string) formInput {
		return formInput{Name: name, Label: label, Type: typ, Value: form[name], Msgs: errs[name]}
	},
	"list": func(v ...string) []string { return v },
	// desired is a service's wanted replicas: its fixed count, or its
	// autoscale range.
	"desired": func(sv api.Service) string {
		if a := sv.Autoscale; a != nil && a.Enabled {
			return fmt.Sprintf("%d–%d (auto)", a.MinReplicas, a.MaxReplicas)
		}
		return strconv.Itoa(sv.Replicas)
	},
	"can": func(sess *session, role string) bool {
		return sess != nil && roleRank[sess.Role] >= roleRank[role]
	},
}

// fieldErr is one form field's problems, for the "fielderr" template.
type fieldErr struct {
	ID   string
	Msgs []string
}

// formInput is one labelled input, for the "input" template.
type formInput struct {
	Name, Label, Type, Value string
	Msgs                     []string
}

var roleRank = map[string]int{api.RoleReader: 1, api.RoleContributor: 2, api.RoleOwner: 3}

func parsePages() (*pages, error) {
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		p.byName[name] = t
	}
	return p, nil
}

// view is what every page template gets.
type view struct {
	Session   *session
	Workspace string // the workspace in the path, if any
	Nav       string // the current section, for the menu
	Title     string
	Data      any
}

// render writes page name with data, inside the layout.
func (s *Studio) render(w http.ResponseWriter, r *http.Request, name string, status int, data any) {
	t := s.pages.byName[name]
	v := view{Session: sessionOf(r.Context()), Workspace: r.PathValue("ws"), Nav: name, Data: data}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		s.opts.Log.Error("studio page failed", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail renders an API error as a page: not found, forbidden, or what the
// server said.
func (s *Studio) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadGateway
	if ae, ok := errors.AsType[*client.Error](err); ok {
		status = ae.StatusCode
	}
	if status == http.StatusUnauthorized {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	s.render(w, r, "error", status, err.Error())
}

// done ends an action: to the page at path, or to its failure.
func (s *Studio) done(w http.ResponseWriter, r *http.Request, err error, path string) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// fieldErrors maps an API validation error's details to the form fields
// they name (the detail's target: "name", "ssl.certPem", …); problems of
// no field of the form come under "", shown above it.
func fieldErrors(err error, fields []string) map[string][]string {
	out := map[string][]string{}
	ae, ok := errors.AsType[*client.Error](err)
	if !ok {
		out[""] = []string{err.Error()}
		return out
	}
	if len(ae.Body.Details) == 0 {
		out[""] = []string{ae.Body.Message}
	}
	for _, d := range ae.Body.Details {
		target := d.Target
		if !slices.Contains(fields, target) {
			target = ""
		}
		out[target] = append(out[target], d.Message)
	}
	return out
}

// show is a page that shows what one call of the API answers.
func (s *Studio) show(page string, get func(c *client.Client, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data, err := get(s.client(r), r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, page, http.StatusOK, data)
	}
}

func (s *Studio) routes() {
	get := func(pattern string, h http.HandlerFunc) { s.mux.HandleFunc("GET "+pattern, s.signed(h)) }
	post := func(pattern string, h http.HandlerFunc) { s.mux.HandleFunc("POST "+pattern, s.signed(h)) }
	get("/{$}", func(w http.ResponseWriter, r *http.Request) {
		if ws := sessionOf(r.Context()).Workspace; ws != "" {
			http.Redirect(w, r, "/w/"+url.PathEscape(ws)+"/computes", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/workspaces", http.StatusSeeOther)
	})
	get("/workspaces", s.show("workspaces", func(c *client.Client, r *http.Request) (any, error) { return c.ListWorkspaces(r.Context()) }))
	get("/w/{ws}/computes", s.show("computes", func(c *client.Client, r *http.Request) (any, error) {
		return c.ListComputes(r.Context(), r.PathValue("ws"))
	}))
	get("/w/{ws}/computes/{name}", s.compute)
	post("/w/{ws}/computes/{name}/{action}", s.computeAction)
	get("/w/{ws}/attach", s.attachForm)
	post("/w/{ws}/attach", s.attach)
	get("/w/{ws}/services", s.show("services", func(c *client.Client, r *http.Request) (any, error) {
		return c.ListServices(r.Context(), r.PathValue("ws"))
	}))
	get("/w/{ws}/services/{name}", s.service)
	post("/w/{ws}/services/{name}/delete", s.serviceDelete)
	post("/w/{ws}/services/{name}/regen-key", s.serviceRegenKey)
	post("/w/{ws}/services/{name}/try", s.serviceTry)
	get("/w/{ws}/deploy", s.show("deploy", func(_ *client.Client, r *http.Request) (any, error) {
		return s.deployView(r, maps.Clone(deployDefaults), nil)
	}))
	post("/w/{ws}/deploy", s.deploy)
	get("/w/{ws}/models", s.show("models", func(c *client.Client, r *http.Request) (any, error) {
		return c.ListModels(r.Context(), r.PathValue("ws"), "")
	}))
	get("/w/{ws}/endpoints", s.show("endpoints", func(c *client.Client, r *http.Request) (any, error) {
		return c.ListEndpoints(r.Context(), r.PathValue("ws"))
	}))
	get("/w/{ws}/endpoints/{name}", s.show("endpoint", func(c *client.Client, r *http.Request) (any, error) {
		e, err := c.GetEndpoint(r.Context(), r.PathValue("ws"), r.PathValue("name"))
		return endpointView{Endpoint: e}, err
	}))
	post("/w/{ws}/endpoints/{name}/traffic", s.endpointTraffic)
	get("/w/{ws}/operations", s.show("operations", operations))
	get("/tokens", s.tokens)
	post("/tokens", s.tokenCreate)
	post("/tokens/{id}/revoke", s.tokenRevoke)
}

// computeView is a compute's page: the compute, its operations, and the
// drift its last reconcile found.
type computeView struct {
	Compute    *api.Compute
	Operations []api.Operation
	Drift      []string
	DriftAt    *time.Time
	Follow     string // the operation whose events to show live
	// Errors are a refused update's problems, by field.
	Errors map[string][]string
}

func (s *Studio) compute(w http.ResponseWriter, r *http.Request) {
	s.computePage(w, r, http.StatusOK, nil)
}

// updateFields are the compute update form's fields, named as the API's
// targets.
var updateFields = []string{"clusterPurpose", "loadBalancerType", "loadBalancerSubnet"}

func (s *Studio) computePage(w http.ResponseWriter, r *http.Request, status int, errs map[string][]string) {
	ctx, c := r.Context(), s.client(r)
	ws, name := r.PathValue("ws"), r.PathValue("name")
	cm, err := c.GetCompute(ctx, ws, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := computeView{Compute: cm, Follow: cm.CurrentOperation, Errors: errs}
	if v.Operations, err = c.ListComputeOperations(ctx, ws, name); err != nil {
		s.fail(w, r, err)
		return
	}
	sort.Slice(v.Operations, func(i, j int) bool { return v.Operations[i].CreatedAt.After(v.Operations[j].CreatedAt) })
	if op := r.URL.Query().Get("op"); op != "" {
		v.Follow = op
	} else if v.Follow == "" && len(v.Operations) > 0 {
		v.Follow = v.Operations[0].ID
	}
	for _, op := range v.Operations {
		if op.Kind != api.OpReconcile || op.State != api.OpSucceeded {
			continue
		}
		events, err := c.ListEvents(ctx, op.ID, 0)
		if err != nil {
			break
		}
		v.DriftAt = op.FinishedAt
		for _, e := range events {
			if d, ok := strings.CutPrefix(e.Message, "Drift: "); ok {
				v.Drift = append(v.Drift, d)
			}
		}
		break
	}
	s.render(w, r, "compute", status, v)
}

// computeAction starts detach or reconcile, then shows the compute with
// the operation's events.
func (s *Studio) computeAction(w http.ResponseWriter, r *http.Request) {
	ctx, c := r.Context(), s.client(r)
	ws, name := r.PathValue("ws"), r.PathValue("name")
	var op *api.Operation
	var err error
	switch r.PathValue("action") {
	case "detach":
		op, err = c.DetachCompute(ctx, ws, name, api.DetachRequest{})
	case "reconcile":
		op, err = c.ReconcileCompute(ctx, ws, name)
	case "update":
		req := api.ComputeUpdateRequest{ClusterPurpose: r.PostFormValue("clusterPurpose"),
			LoadBalancerType: r.PostFormValue("loadBalancerType"), LoadBalancerSubnet: r.PostFormValue("loadBalancerSubnet")}
		if op, err = c.UpdateCompute(ctx, ws, name, req); errors.Is(err, client.ErrValidation) {
			s.computePage(w, r, http.StatusBadRequest, fieldErrors(err, updateFields))
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/w/"+url.PathEscape(ws)+"/computes/"+url.PathEscape(name)+"?op="+url.QueryEscape(op.ID), http.StatusSeeOther)
}

// attachView is the attach form: what was typed, and the API's problems
// by field.
type attachView struct {
	Form   map[string]string
	Errors map[string][]string
}

func (s *Studio) attachForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "attach", http.StatusOK, attachView{Form: map[string]string{
		"clusterPurpose": api.PurposeFastProd, "loadBalancerType": api.LoadBalancerPublicIP}})
}

// attachFields are the attach form's fields, named as the API's targets.
var attachFields = []string{"name", "credentials", "settings.context", "clusterPurpose", "loadBalancerType",
	"loadBalancerSubnet", "ssl.certPem", "ssl.keyPem", "ssl.cname"}

// attach sends the form to the API as it is: the API checks everything and
// names each problem's field, which the form shows next to it (the form's
// fields are named as the API's targets).
func (s *Studio) attach(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("ws")
	r.ParseMultipartForm(8 << 20)
	form := map[string]string{}
	for _, k := range []string{"name", "settings.context", "clusterPurpose", "loadBalancerType", "loadBalancerSubnet", "ssl.cname", "force"} {
		form[k] = strings.TrimSpace(r.FormValue(k))
	}
	req := api.ComputeRequest{Name: form["name"], Type: "kubernetes", Origin: api.OriginAttached,
		ClusterPurpose: form["clusterPurpose"], LoadBalancerType: form["loadBalancerType"],
		LoadBalancerSubnet: form["loadBalancerSubnet"], Credentials: fileOrText(r, "credentials"), Force: form["force"] == "on"}
	if form["settings.context"] != "" {
		req.Settings, _ = json.Marshal(map[string]string{"context": form["settings.context"]})
	}
	if cert, key := fileOrText(r, "ssl.certPem"), fileOrText(r, "ssl.keyPem"); cert != "" || key != "" || form["ssl.cname"] != "" {
		req.SSL = &api.SSLRequest{CertPEM: cert, KeyPEM: key, Cname: form["ssl.cname"]}
	}
	op, err := s.client(r).CreateCompute(r.Context(), ws, req)
	if err != nil {
		s.render(w, r, "attach", http.StatusBadRequest, attachView{Form: form, Errors: fieldErrors(err, attachFields)})
		return
	}
	http.Redirect(w, r, "/w/"+url.PathEscape(ws)+"/computes/"+url.PathEscape(req.Name)+"?op="+url.QueryEscape(op.ID), http.StatusSeeOther)
}

// fileOrText is an uploaded file's content, or else the text field of the
// same name.
func fileOrText(r *http.Request, name string) string {
	if f, _, err := r.FormFile(name + ".file"); err == nil {
		defer f.Close()
		var b bytes.Buffer
		b.ReadFrom(f)
		if b.Len() > 0 {
			return b.String()
		}
	}
	return r.FormValue(name)
}

// serviceView is a service's page.
type serviceView struct {
	Service *api.Service
	// Keys are shown to owners only (the API refuses others).
	Keys   *api.ServiceKeys
	Follow string
}

func (s *Studio) service(w http.ResponseWriter, r *http.Request) {
	ctx, c := r.Context(), s.client(r)
	ws, name := r.PathValue("ws"), r.PathValue("name")
	sv, err := c.GetService(ctx, ws, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := serviceView{Service: sv, Follow: r.URL.Query().Get("op")}
	if sessionOf(ctx).Role == api.RoleOwner && sv.Auth == api.AuthKey {
		if v.Keys, err = c.ServiceKeys(ctx, ws, name); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.render(w, r, "service", http.StatusOK, v)
}

func (s *Studio) serviceDelete(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("ws")
	_, err := s.client(r).DeleteService(r.Context(), ws, r.PathValue("name"))
	s.done(w, r, err, "/w/"+url.PathEscape(ws)+"/services")
}

// deployView is the deploy form with the workspace's models and computes.
type deployView struct {
	Models   []api.Model
	Computes []api.Compute
	Form     map[string]string
	Errors   map[string][]string
}

// The reference's defaults, as the form shows them; the fields are named
// as the API's targets, so its problems land next to them.
var deployDefaults = map[string]string{
	"cpu": fmt.Sprint(service.DefaultCPU), "memoryGb": fmt.Sprint(service.DefaultMemoryGB),
	"autoscale.minReplicas": fmt.Sprint(service.DefaultAutoscaleMin), "autoscale.maxReplicas": fmt.Sprint(service.DefaultAutoscaleMax),
	"autoscale.targetUtilization": fmt.Sprint(service.DefaultTargetUtilization), "scoringTimeoutMs": fmt.Sprint(service.DefaultScoringTimeoutMs),
	"maxConcurrentRequestsPerContainer": fmt.Sprint(service.DefaultMaxConcurrent), "maxQueueWaitMs": fmt.Sprint(service.DefaultMaxQueueWaitMs),
	"auth": api.AuthKey}

var deployFields = []string{"name", "compute", "models", "image", "command", "cpu", "memoryGb", "replicas",
	"autoscale.minReplicas", "autoscale.maxReplicas", "autoscale.targetUtilization", "scoringTimeoutMs",
	"maxConcurrentRequestsPerContainer", "maxQueueWaitMs", "auth"}

// deployRequest reads the deploy form; numbers that do not parse are
// problems of their field, and the API checks the rest.
func deployRequest(form map[string]string) (api.ServiceRequest, map[string][]string) {
	errs := map[string][]string{}
	num := func(field string) float64 {
		if form[field] == "" {
			return 0
		}
		v, err := strconv.ParseFloat(form[field], 64)
		if err != nil {
			errs[field] = append(errs[field], fmt.Sprintf("%q is not a number", form[field]))
		}
		return v
	}
	req := api.ServiceRequest{Name: form["name"], ServiceSpec: api.ServiceSpec{Compute: form["compute"], Image: form["image"],
		CPU: num("cpu"), MemoryGB: num("memoryGb"), Replicas: int(num("replicas")), Auth: form["auth"],
		ScoringTimeoutMs: int(num("scoringTimeoutMs")), MaxConcurrentRequests: int(num("maxConcurrentRequestsPerContainer")),
		MaxQueueWaitMs: int(num("maxQueueWaitMs"))}}
	if form["models"] != "" {
		req.Models = []string{form["models"]}
	}
	if form["command"] != "" {
		req.Command = strings.Fields(form["command"])
	}
	if req.Replicas == 0 {
		req.Autoscale = &api.AutoscaleSettings{Enabled: true, MinReplicas: int(num("autoscale.minReplicas")),
			MaxReplicas: int(num("autoscale.maxReplicas")), TargetUtilization: int(num("autoscale.targetUtilization"))}
	}
	return req, errs
}

func (s *Studio) deployView(r *http.Request, form map[string]string, errs map[string][]string) (*deployView, error) {
	ctx, c, ws := r.Context(), s.client(r), r.PathValue("ws")
	ms, err := c.ListModels(ctx, ws, "")
	if err != nil {
		return nil, err
	}
	cs, err := c.ListComputes(ctx, ws)
	if err != nil {
		return nil, err
	}
	return &deployView{Models: ms, Computes: cs, Form: form, Errors: errs}, nil
}

func (s *Studio) deploy(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("ws")
	form := map[string]string{}
	for _, k := range deployFields {
		form[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	req, errs := deployRequest(form)
	if len(errs) == 0 {
		op, err := s.client(r).DeployService(r.Context(), ws, req)
		if err == nil {
			http.Redirect(w, r, "/w/"+url.PathEscape(ws)+"/services/"+url.PathEscape(req.Name)+"?op="+url.QueryEscape(op.ID), http.StatusSeeOther)
			return
		}
		errs = fieldErrors(err, deployFields)
	}
	v, err := s.deployView(r, form, errs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "deploy", http.StatusBadRequest, v)
}

// endpointView is an endpoint with the problems of a traffic change.
type endpointView struct {
	Endpoint *api.Endpoint
	Errors   map[string][]string
}

// endpointTraffic sets every version's share in one change (a promotion
// or a rollback); a refused change shows the API's problems above the form.
func (s *Studio) endpointTraffic(w http.ResponseWriter, r *http.Request) {
	ctx, c := r.Context(), s.client(r)
	ws, name := r.PathValue("ws"), r.PathValue("name")
	e, err := c.GetEndpoint(ctx, ws, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	traffic := map[string]int{}
	for _, v := range e.Versions {
		n, err := strconv.Atoi(r.PostFormValue(v.Name))
		if err != nil {
			s.render(w, r, "endpoint", http.StatusBadRequest, endpointView{Endpoint: e,
				Errors: map[string][]string{"": {fmt.Sprintf("the traffic of %s must be a whole percentage", v.Name)}}})
			return
		}
		traffic[v.Name] = n
	}
	if _, err := c.SetEndpointTraffic(ctx, ws, name, traffic); err != nil {
		if ae, ok := errors.AsType[*client.Error](err); !ok || ae.StatusCode != http.StatusBadRequest {
			s.fail(w, r, err) // not the change's problem: forbidden, gone, unreachable
			return
		}
		s.render(w, r, "endpoint", http.StatusBadRequest, endpointView{Endpoint: e, Errors: fieldErrors(err, nil)})
		return
	}
	http.Redirect(w, r, "/w/"+url.PathEscape(ws)+"/endpoints/"+url.PathEscape(name), http.StatusSeeOther)
}

// operationsView lists the workspace's operations, newest first,
// filtered by state.
type operationsView struct {
	State      string
	States     []api.OperationState
	Operations []api.Operation
}

func operations(c *client.Client, r *http.Request) (any, error) {
	v := operationsView{State: r.URL.Query().Get("state"),
		States: []api.OperationState{api.OpPending, api.OpRunning, api.OpSucceeded, api.OpFailed, api.OpCanceled}}
	var err error
	v.Operations, err = c.ListOperations(r.Context(), r.PathValue("ws"), v.State)
	return v, err
}

// tokensView is the owner's token page; Created is a token just made,
// whose secret is shown this once.
type tokensView struct {
	Tokens  []api.Token
	Created *api.TokenCreated
	Errors  map[string][]string
}

func (s *Studio) tokens(w http.ResponseWriter, r *http.Request) {
	s.renderTokens(w, r, http.StatusOK, tokensView{})
}

func (s *Studio) renderTokens(w http.ResponseWriter, r *http.Request, status int, v tokensView) {
	ts, err := s.client(r).ListTokens(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.Tokens = ts
	s.render(w, r, "tokens", status, v)
}

func (s *Studio) tokenCreate(w http.ResponseWriter, r *http.Request) {
	req := api.TokenCreateRequest{Role: r.PostFormValue("role"), Workspace: strings.TrimSpace(r.PostFormValue("workspace")),
		Description: strings.TrimSpace(r.PostFormValue("description"))}
	created, err := s.client(r).CreateToken(r.Context(), req)
	if err != nil {
		s.renderTokens(w, r, http.StatusBadRequest, tokensView{Errors: fieldErrors(err, []string{"role", "workspace"})})
		return
	}
	s.renderTokens(w, r, http.StatusOK, tokensView{Created: created})
}

func (s *Studio) tokenRevoke(w http.ResponseWriter, r *http.Request) {
	s.done(w, r, s.client(r).RevokeToken(r.Context(), r.PathValue("id")), "/tokens")
}

func (s *Studio) serviceRegenKey(w http.ResponseWriter, r *http.Request) {
	ws, name := r.PathValue("ws"), r.PathValue("name")
	_, err := s.client(r).RegenServiceKey(r.Context(), ws, name, api.RegenKeyRequest{Key: r.PostFormValue("key")})
	s.done(w, r, err, "/w/"+url.PathEscape(ws)+"/services/"+url.PathEscape(name))
}

// tryAnswer is what the "try it" box shows.
type tryAnswer struct {
	Status     int    `json:"status,omitempty"`
	Body       string `json:"body,omitempty"`
	DurationMs int64  `json:"durationMs,omitempty"`
	Error      string `json:"error,omitempty"`
}

// serviceTry scores a JSON body from the server, as a client would (the
// browser cannot: the scoring URI is another origin). It needs what
// scoring needs: an owner's token for a key or token service.
func (s *Studio) serviceTry(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var out tryAnswer
	if err == nil && !json.Valid(body) {
		err = errors.New("the request body is not valid JSON")
	}
	if err == nil {
		var sc *client.Scored
		if sc, err = s.client(r).ScoreService(r.Context(), r.PathValue("ws"), r.PathValue("name"), body); err == nil {
			out = tryAnswer{Status: sc.StatusCode, Body: string(sc.Body), DurationMs: sc.Duration.Milliseconds()}
		}
	}
	if err != nil {
		out.Error = err.Error()
		if errors.Is(err, client.ErrForbidden) {
			out.Error = "scoring this service takes its key or a token, which only owners may read: " + err.Error()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
