package service

import (
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
)

func TestDefaultsAreTheReferences(t *testing.T) {
	s := api.ServiceSpec{Compute: "c1", Models: []string{"iris"}, Image: "example/model:1"}
	if d := Normalize(&s); len(d) != 0 {
		t.Fatalf("valid spec rejected: %v", d)
	}
	if s.CPU != 0.1 || s.MemoryGB != 0.5 || s.ScoringTimeoutMs != 60000 || s.MaxConcurrentRequests != 1 || s.MaxQueueWaitMs != 500 ||
		s.Auth != "key" || s.Namespace != "default" || s.Port != 5001 || s.ModelDelivery != api.ModelDeliveryFetch {
		t.Errorf("defaults: %+v", s)
	}
	a := s.Autoscale
	if a == nil || !a.Enabled || a.MinReplicas != 1 || a.MaxReplicas != 10 || a.RefreshSeconds != 1 || a.TargetUtilization != 70 {
		t.Errorf("autoscale defaults: %+v", a)
	}
	if *s.Liveness != (api.Probe{InitialDelaySeconds: 310, PeriodSeconds: 10, TimeoutSeconds: 2, SuccessThreshold: 1, FailureThreshold: 3}) {
		t.Errorf("liveness defaults: %+v", s.Liveness)
	}
	fixed := api.ServiceSpec{Compute: "c1", Models: []string{"iris:3"}, Command: []string{"berth", "model-server"}, Replicas: 2}
	if d := Normalize(&fixed); len(d) != 0 || fixed.Autoscale.Enabled {
		t.Errorf("fixed replicas: %v %+v", d, fixed.Autoscale)
	}
}

func TestEveryRuleReportedTogether(t *testing.T) {
	s := api.ServiceSpec{Models: []string{"iris:zero"}, Image: "x", Command: []string{"y"}, CPU: 1, CPULimit: 0.5, MemoryGB: 2, MemoryLimitGB: 1,
		GPU: -1, Replicas: 2, Autoscale: &api.AutoscaleSettings{Enabled: true}, MaxConcurrentRequests: -1, Auth: "both",
		Namespace: "Bad_NS", Env: map[string]string{"1X": "v"}, ModelDelivery: "baked"}
	d := Normalize(&s)
	var msgs []string
	for _, x := range d {
		msgs = append(msgs, x.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"a compute is required", `the version must be a positive number`, "give `image` or `command`, not both",
		"cpuLimit 0.5 must be at least the CPU request 1", "memoryLimitGb 1 must be at least the memory request 2", "gpu -1",
		"give a fixed `replicas` count or autoscale settings, not both", "maxConcurrentRequestsPerContainer -1", `auth "both" is not valid`,
		`namespace "Bad_NS" must be a DNS label`, `env "1X"`, `modelDelivery "baked" is not valid: use fetch`} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
}

func TestServiceNames(t *testing.T) {
	for name, want := range map[string]string{
		"iris-v1": "", "abc-": "end with a letter or digit", "ab": "3 to 32", "Iris": "lowercase", "1iris": "start with a letter", "a-very-long-service-name-that-goes-on": "3 to 32",
	} {
		d := CheckName(name)
		if want == "" && len(d) != 0 || want != "" && (len(d) == 0 || !strings.Contains(d[0].Message, want)) {
			t.Errorf("CheckName(%q) = %v, want %q", name, d, want)
		}
	}
}

func TestScaleToZeroRules(t *testing.T) {
	base := func() api.ServiceSpec {
		return api.ServiceSpec{Compute: "c1", Models: []string{"iris"}, Command: []string{"serve"}}
	}
	toZero := func(after int) *api.AutoscaleSettings {
		return &api.AutoscaleSettings{Enabled: true, ScaleToZeroAfterSeconds: after}
	}
	for _, c := range []struct {
		name string
		edit func(*api.ServiceSpec)
		want []string // messages; none: valid
	}{
		{"min 0 with idle time", func(s *api.ServiceSpec) { s.Autoscale = toZero(2) }, nil},
		{"min 0 with replicas 3", func(s *api.ServiceSpec) { s.Replicas, s.Autoscale = 3, toZero(300) },
			[]string{"replicas 3 is a fixed count, which never scales to zero: give `replicas` or autoscale.minReplicas 0, not both"}},
		{"idle time with min 2", func(s *api.ServiceSpec) { s.Autoscale = toZero(300); s.Autoscale.MinReplicas = 2 },
			[]string{"autoscale.scaleToZeroAfterSeconds is only for autoscale.minReplicas 0 (it is 2)"}},
		{"negative idle time", func(s *api.ServiceSpec) { s.Autoscale = toZero(-5) },
			[]string{"autoscale.scaleToZeroAfterSeconds -5 must be at least 1"}},
		{"negative cold start", func(s *api.ServiceSpec) { s.Autoscale, s.ColdStartTimeoutMs = toZero(300), -1 },
			[]string{"coldStartTimeoutMs -1 must be at least 1"}},
		{"cold start without min 0", func(s *api.ServiceSpec) { s.ColdStartTimeoutMs = 1000 },
			[]string{"coldStartTimeoutMs is only for a service that scales to zero (autoscale.minReplicas 0)"}},
		{"cold start with replicas", func(s *api.ServiceSpec) { s.Replicas, s.ColdStartTimeoutMs = 2, 1000 },
			[]string{"coldStartTimeoutMs is only for a service that scales to zero (autoscale.minReplicas 0)"}},
		{"all at once", func(s *api.ServiceSpec) {
			s.Autoscale, s.ColdStartTimeoutMs = toZero(-1), -1
			s.Autoscale.MinReplicas = 1
		}, []string{"autoscale.scaleToZeroAfterSeconds is only for autoscale.minReplicas 0 (it is 1)",
			"autoscale.scaleToZeroAfterSeconds -1 must be at least 1", "coldStartTimeoutMs -1 must be at least 1"}},
	} {
		s := base()
		c.edit(&s)
		var got []string
		for _, d := range Normalize(&s) {
			got = append(got, d.Message)
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], c.want[i]) {
				t.Errorf("%s: got %q, want %q", c.name, got[i], c.want[i])
			}
		}
	}
	s := base()
	s.Autoscale = toZero(2)
	Normalize(&s)
	if a := s.Autoscale; a.MinReplicas != 0 || a.MaxReplicas != 10 || s.ColdStartTimeoutMs != DefaultColdStartTimeoutMs {
		t.Errorf("min 0 defaults: %+v, cold start %d", a, s.ColdStartTimeoutMs)
	}
	// Without an idle time, min 0 is the old default: 1 replica at least.
	old := base()
	old.Autoscale = &api.AutoscaleSettings{Enabled: true}
	if d := Normalize(&old); len(d) != 0 || old.Autoscale.MinReplicas != 1 || old.ColdStartTimeoutMs != 0 {
		t.Errorf("min unset: %v %+v %d", d, old.Autoscale, old.ColdStartTimeoutMs)
	}
}

// TestRequestLoggingSettings: the percentage, body limit and sink are
// checked with the rest; off is stored as nothing; logging gets the
// default body limit; an update keeps what it does not name and can turn
// logging and the sink off.
func TestRequestLoggingSettings(t *testing.T) {
	ptr := func(v int) *int { return &v }
	str := func(v string) *string { return &v }
	base := func() api.ServiceSpec {
		return api.ServiceSpec{Compute: "c1", Models: []string{"iris"}, Image: "example/model:1"}
	}
	s := base()
	s.LogRequests, s.LogSink = ptr(101), str("ftp://logs.example.com")
	s.LogBodyLimit = -1
	var msgs []string
	for _, d := range Normalize(&s) {
		msgs = append(msgs, d.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"logRequests 101 must be a percentage from 0 to 100", "logBodyLimit -1 must be from 1 to 1048576",
		"logSink must be an absolute http:// or https:// URL"} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
	for _, bad := range []string{"/relative", "https://", "https://user:secret@logs.example.com/"} {
		s := base()
		s.LogSink = str(bad)
		d := Normalize(&s)
		if len(d) != 1 || d[0].Target != "logSink" || strings.Contains(d[0].Message, "secret") {
			t.Errorf("sink %q: %v", bad, d)
		}
	}
	s = base()
	s.LogRequests, s.LogSink = ptr(10), str("https://logs.example.com/berth")
	if d := Normalize(&s); len(d) != 0 || *s.LogRequests != 10 || s.LogBodyLimit != 64<<10 {
		t.Fatalf("logging at 10%%: %v %+v", d, s)
	}
	// An update naming neither keeps them; 0 and "" turn them off.
	up := s
	mergeSpec(&up, &api.ServiceSpec{CPU: 2})
	if *up.LogRequests != 10 || *up.LogSink != "https://logs.example.com/berth" {
		t.Errorf("an update that names no logging setting changed them: %+v", up)
	}
	mergeSpec(&up, &api.ServiceSpec{LogRequests: ptr(0), LogSink: str("")})
	if d := Normalize(&up); len(d) != 0 || up.LogRequests != nil || up.LogSink != nil {
		t.Errorf("turning logging off: %v %v %v", d, up.LogRequests, up.LogSink)
	}
	off := base()
	if Normalize(&off); off.LogRequests != nil || off.LogBodyLimit != 0 || off.LogSink != nil {
		t.Errorf("a service that does not log got logging settings: %+v", off)
	}
}
