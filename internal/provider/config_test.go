package provider

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
)

type testSettings struct {
	Count *int     `json:"count,omitempty"`
	Delay Duration `json:"delay,omitempty"`
	Name  string   `json:"name,omitempty"`
}

type testCert struct {
	CertificateError    string `json:"certificateError,omitempty"`
	CertificateFailures int    `json:"certificateFailures,omitempty"`
}

type testBase struct {
	Label string `json:"label,omitempty"`
	testCert
}

type testStatus struct {
	testBase
	Zone string `json:"zone,omitempty"`
}

// TestDecodeStrict: every unknown field and every value of the wrong type
// is reported, each naming its field; fields that fail stay zero.
func TestDecodeStrict(t *testing.T) {
	var s testSettings
	got := DecodeStrict("settings", json.RawMessage(`{"count":"three","delay":"soon","name":"a","zeta":1,"alpha":true}`), &s)
	want := []api.ErrorDetail{
		{Code: api.CodeInvalidProperty, Target: "settings.alpha", Message: "settings.alpha is not a setting of this compute type (known: count, delay, name)"},
		{Code: api.CodeInvalidValue, Target: "settings.count", Message: "settings.count must be an integer, not a JSON string"},
		{Code: api.CodeInvalidValue, Target: "settings.delay", Message: `settings.delay "soon" is not a duration like 500ms or 2m`},
		{Code: api.CodeInvalidProperty, Target: "settings.zeta", Message: "settings.zeta is not a setting of this compute type (known: count, delay, name)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("details:\n got %+v\nwant %+v", got, want)
	}
	if s.Count != nil || s.Delay != 0 || s.Name != "a" {
		t.Errorf("decoded %+v", s)
	}
	for _, raw := range []string{``, `null`, ` {} `} {
		if d := DecodeStrict("settings", json.RawMessage(raw), &s); d != nil {
			t.Errorf("%q: %v", raw, d)
		}
	}
	if d := DecodeStrict("settings", json.RawMessage(`[1]`), &s); len(d) != 1 || d[0].Target != "settings" {
		t.Errorf("an array: %v", d)
	}
	s = testSettings{}
	if d := DecodeStrict("settings", json.RawMessage(`{"count":3,"delay":"1m30s"}`), &s); d != nil || *s.Count != 3 || time.Duration(s.Delay) != 90*time.Second {
		t.Errorf("valid: %v %+v", d, s)
	}
}

// TestEditKeepsOtherFields: a provider that sees only part of a document
// (the kubernetes install path on an AKS compute) changes its fields and
// leaves the others alone; zeroed fields go.
func TestEditKeepsOtherFields(t *testing.T) {
	raw := json.RawMessage(`{"label":"a","zone":"z","certificateFailures":2,"legacy":{"x":"y"}}`)
	Edit(&raw, func(b *testBase) {
		if b.Label != "a" || b.CertificateFailures != 2 {
			t.Errorf("read %+v", b)
		}
		b.Label = ""
		b.CertificateError = "rate limited"
	})
	var got map[string]any
	json.Unmarshal(raw, &got)
	want := map[string]any{"zone": "z", "certificateFailures": 2.0, "certificateError": "rate limited", "legacy": map[string]any{"x": "y"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after edit: %s", raw)
	}
	if st := Read[testStatus](raw); st.Zone != "z" || st.CertificateError != "rate limited" {
		t.Errorf("read %+v", st)
	}
	Edit(&raw, func(b *testStatus) { *b = testStatus{} })
	if string(raw) != `{"legacy":{"x":"y"}}` {
		t.Errorf("emptied: %s", raw)
	}
	var empty json.RawMessage
	Edit(&empty, func(b *testBase) {})
	if empty != nil {
		t.Errorf("nothing set: %s", empty)
	}
	if Encode(testSettings{}) != nil || string(Encode(testSettings{Name: "n"})) != `{"name":"n"}` {
		t.Error("Encode")
	}
}
