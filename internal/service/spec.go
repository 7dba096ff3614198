// Package service is the life cycle of scoring services: the rules and
// defaults of a deployment request (REFERENCE.md "Web services"), checked
// all at once before anything is changed.
package service

import (
	"cmp"
	"net/url"
	"regexp"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend/reqlog"
	"github.com/berth-ml/berth/internal/problem"
)

// The reference's defaults.
const (
	DefaultCPU               = 0.1
	DefaultMemoryGB          = 0.5
	DefaultPort              = 5001
	DefaultScoringTimeoutMs  = 60000
	DefaultMaxConcurrent     = 1
	DefaultMaxQueueWaitMs    = 500
	DefaultAutoscaleMin      = 1
	DefaultAutoscaleMax      = 10
	DefaultAutoscaleRefresh  = 1
	DefaultTargetUtilization = 70
	DefaultNamespace         = "default"
)

// A service that scales to zero (autoscale min 0) stops its last replica
// after DefaultScaleToZeroAfter seconds idle, and a request waits up to
// DefaultColdStartTimeoutMs for one to start again.
const (
	DefaultScaleToZeroAfter   = 300
	DefaultColdStartTimeoutMs = 60000
)

// DefaultLiveness is the reference's liveness probe.
var DefaultLiveness = api.Probe{InitialDelaySeconds: 310, PeriodSeconds: 10, TimeoutSeconds: 2, SuccessThreshold: 1, FailureThreshold: 3}

// DefaultReadiness checks readiness often so new replicas serve quickly.
var DefaultReadiness = api.Probe{InitialDelaySeconds: 0, PeriodSeconds: 2, TimeoutSeconds: 2, SuccessThreshold: 1, FailureThreshold: 3}

var (
	serviceName = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)
	dnsLabel    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// CheckName checks a service name: 3–32 characters, lowercase letters,
// digits and '-', starting with a letter and ending with a letter or digit
// (a DNS-1123 label: it names the service's Kubernetes objects).
func CheckName(name string) []api.ErrorDetail {
	var out []api.ErrorDetail
	if name == "" {
		return []api.ErrorDetail{problem.Detail(api.CodeInvalidServiceName, "name", "service name is required")}
	}
	if n := len(name); n < 3 || n > 32 {
		out = append(out, problem.Detail(api.CodeInvalidServiceName, "name", "service name %q must be 3 to 32 characters long (it has %d)", name, n))
	}
	if !serviceName.MatchString(name) {
		out = append(out, problem.Detail(api.CodeInvalidServiceName, "name", "service name %q may only contain lowercase letters, digits and '-', must start with a letter and end with a letter or digit (it names Kubernetes objects)", name))
	}
	return out
}

// Normalize fills the reference's defaults into a spec and returns every
// problem found.
func Normalize(s *api.ServiceSpec) []api.ErrorDetail {
	var out []api.ErrorDetail
	add := func(code, target, format string, args ...any) {
		out = append(out, problem.Detail(code, target, format, args...))
	}
	atLeast1 := func(field string, v int) {
		if v < 1 {
			add("InvalidValue", field, "%s %d must be at least 1", field, v)
		}
	}
	if s.Compute == "" {
		add("InvalidValue", "compute", "a compute is required (`compute`)")
	}
	if len(s.Models) == 0 {
		add("InvalidValue", "models", "at least one model is required (`models`: NAME or NAME:VERSION)")
	}
	for _, m := range s.Models {
		if _, err := api.ParseModelRef(m); err != nil {
			add("InvalidValue", "models", "%v", err)
		}
	}
	switch {
	case s.Image == "" && len(s.Command) == 0:
		add("InvalidValue", "image", "give the model server to run: `image` or `command`")
	case s.Image != "" && len(s.Command) > 0:
		add("InvalidValue", "image", "give `image` or `command`, not both")
	}
	switch s.ModelDelivery {
	case "":
		s.ModelDelivery = api.ModelDeliveryFetch
	case api.ModelDeliveryFetch, api.ModelDeliveryImage:
	default:
		add("InvalidValue", "modelDelivery", "modelDelivery %q is not valid: use fetch (an init container downloads the models) or image (they are in the image)", s.ModelDelivery)
	}
	s.Port = cmp.Or(s.Port, DefaultPort)
	if s.Port < 1 || s.Port > 65535 {
		add("InvalidValue", "port", "port %d must be between 1 and 65535", s.Port)
	}
	s.CPU = cmp.Or(s.CPU, DefaultCPU)
	s.MemoryGB = cmp.Or(s.MemoryGB, DefaultMemoryGB)
	if s.CPU < 0 {
		add("InvalidValue", "cpu", "cpu %g must be positive", s.CPU)
	}
	if s.MemoryGB < 0 {
		add("InvalidValue", "memoryGb", "memoryGb %g must be positive", s.MemoryGB)
	}
	if s.CPULimit != 0 && s.CPULimit < s.CPU {
		add("InvalidValue", "cpuLimit", "cpuLimit %g must be at least the CPU request %g", s.CPULimit, s.CPU)
	}
	if s.MemoryLimitGB != 0 && s.MemoryLimitGB < s.MemoryGB {
		add("InvalidValue", "memoryLimitGb", "memoryLimitGb %g must be at least the memory request %g", s.MemoryLimitGB, s.MemoryGB)
	}
	if s.GPU < 0 {
		add("InvalidValue", "gpu", "gpu %d must not be negative", s.GPU)
	}
	toZero := s.Autoscale != nil && s.Autoscale.ScaleToZeroAfterSeconds != 0
	switch {
	case s.Replicas < 0:
		add("InvalidValue", "replicas", "replicas %d must be positive", s.Replicas)
	case s.Replicas > 0 && toZero:
		add("InvalidValue", "replicas", "replicas %d is a fixed count, which never scales to zero: give `replicas` or autoscale.minReplicas 0, not both", s.Replicas)
	case s.Replicas > 0 && s.Autoscale != nil && s.Autoscale.Enabled:
		add("InvalidValue", "replicas", "give a fixed `replicas` count or autoscale settings, not both")
	case s.Replicas > 0:
		s.Autoscale = &api.AutoscaleSettings{Enabled: false}
	default:
		s.Autoscale = cmp.Or(s.Autoscale, &api.AutoscaleSettings{})
		a := s.Autoscale
		a.Enabled = true
		if toZero {
			if a.MinReplicas != 0 {
				add("InvalidValue", "autoscale.scaleToZeroAfterSeconds", "autoscale.scaleToZeroAfterSeconds is only for autoscale.minReplicas 0 (it is %d)", a.MinReplicas)
			}
			atLeast1("autoscale.scaleToZeroAfterSeconds", a.ScaleToZeroAfterSeconds)
			s.ColdStartTimeoutMs = cmp.Or(s.ColdStartTimeoutMs, DefaultColdStartTimeoutMs)
			atLeast1("coldStartTimeoutMs", s.ColdStartTimeoutMs)
		} else {
			a.MinReplicas = cmp.Or(a.MinReplicas, DefaultAutoscaleMin)
			atLeast1("autoscale.minReplicas", a.MinReplicas)
		}
		a.MaxReplicas = cmp.Or(a.MaxReplicas, max(DefaultAutoscaleMax, a.MinReplicas))
		a.RefreshSeconds = cmp.Or(a.RefreshSeconds, DefaultAutoscaleRefresh)
		a.TargetUtilization = cmp.Or(a.TargetUtilization, DefaultTargetUtilization)
		if a.MaxReplicas < a.MinReplicas {
			add("InvalidValue", "autoscale.maxReplicas", "autoscale.maxReplicas %d must be at least autoscale.minReplicas %d", a.MaxReplicas, a.MinReplicas)
		}
		atLeast1("autoscale.refreshSeconds", a.RefreshSeconds)
		if a.TargetUtilization < 1 || a.TargetUtilization > 100 {
			add("InvalidValue", "autoscale.targetUtilization", "autoscale.targetUtilization %d must be between 1 and 100", a.TargetUtilization)
		}
	}
	if s.ColdStartTimeoutMs != 0 && !toZero {
		add("InvalidValue", "coldStartTimeoutMs", "coldStartTimeoutMs is only for a service that scales to zero (autoscale.minReplicas 0)")
	}
	s.MaxConcurrentRequests = cmp.Or(s.MaxConcurrentRequests, DefaultMaxConcurrent)
	atLeast1("maxConcurrentRequestsPerContainer", s.MaxConcurrentRequests)
	s.MaxQueueWaitMs = cmp.Or(s.MaxQueueWaitMs, DefaultMaxQueueWaitMs)
	atLeast1("maxQueueWaitMs", s.MaxQueueWaitMs)
	s.ScoringTimeoutMs = cmp.Or(s.ScoringTimeoutMs, DefaultScoringTimeoutMs)
	atLeast1("scoringTimeoutMs", s.ScoringTimeoutMs)
	switch s.Auth {
	case "":
		s.Auth = api.AuthKey
	case api.AuthKey, api.AuthToken, api.AuthNone:
	default:
		add("InvalidValue", "auth", "auth %q is not valid: use key, token or none (key and token never together)", s.Auth)
	}
	s.Namespace = cmp.Or(s.Namespace, DefaultNamespace)
	if len(s.Namespace) > 63 || !dnsLabel.MatchString(s.Namespace) {
		add("InvalidValue", "namespace", "namespace %q must be a DNS label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", s.Namespace)
	}
	for name, p := range map[string]**api.Probe{"livenessProbe": &s.Liveness, "readinessProbe": &s.Readiness} {
		if *p == nil {
			def := DefaultLiveness
			if name == "readinessProbe" {
				def = DefaultReadiness
			}
			*p = &def
			continue
		}
		pr := *p
		if pr.InitialDelaySeconds < 0 || pr.PeriodSeconds < 1 || pr.TimeoutSeconds < 1 || pr.SuccessThreshold < 1 || pr.FailureThreshold < 1 {
			add("InvalidValue", name, "%s: the initial delay must be ≥ 0 and the period, timeout, success and failure thresholds ≥ 1", name)
		}
	}
	for k := range s.Env {
		if !envName.MatchString(k) {
			add("InvalidValue", "env", "env %q: a variable name is letters, digits and '_', not starting with a digit", k)
		}
	}
	out = append(out, normalizeLogging(s)...)
	return out
}

// normalizeLogging checks the request logging settings; off is stored as
// no percentage and no sink.
func normalizeLogging(s *api.ServiceSpec) []api.ErrorDetail {
	var out []api.ErrorDetail
	if p := s.LogRequests; p != nil && (*p < 0 || *p > 100) {
		out = append(out, problem.Detail("InvalidValue", "logRequests", "logRequests %d must be a percentage from 0 to 100 (0 turns logging off)", *p))
	} else if p != nil && *p == 0 {
		s.LogRequests = nil
	}
	if s.LogBodyLimit < 0 || s.LogBodyLimit > reqlog.MaxBodyLimit {
		out = append(out, problem.Detail("InvalidValue", "logBodyLimit", "logBodyLimit %d must be from 1 to %d bytes (default %d)", s.LogBodyLimit, reqlog.MaxBodyLimit, reqlog.DefaultBodyLimit))
	} else if s.LogBodyLimit == 0 && s.LogRequests != nil {
		s.LogBodyLimit = reqlog.DefaultBodyLimit
	}
	if s.LogSink != nil && *s.LogSink == "" {
		s.LogSink = nil
	}
	if s.LogSink != nil {
		u, err := url.Parse(*s.LogSink)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			// Not echoed: it might hold a secret.
			out = append(out, problem.Detail("InvalidValue", "logSink", "logSink must be an absolute http:// or https:// URL with a host, like https://logs.example.com/berth"))
		case u.User != nil:
			out = append(out, problem.Detail("InvalidValue", "logSink", "logSink must not contain credentials (user:password@): they would show in the service's settings"))
		}
	}
	return out
}
