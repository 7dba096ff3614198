package endpoint

import (
	"testing"

	"github.com/berth-ml/berth/api"
)

// TestLoggingSettingsAreAVersionChange: `endpoint version update` with
// only a request logging flag, or any other one setting, changes the
// version's service.
func TestLoggingSettingsAreAVersionChange(t *testing.T) {
	p, sink := 10, ""
	for _, s := range []api.ServiceSpec{{LogRequests: &p}, {LogBodyLimit: 100}, {LogSink: &sink}, {ColdStartTimeoutMs: 5000}, {Port: 8080}} {
		if isZero(s) {
			t.Errorf("%+v is taken as no change", s)
		}
	}
	if !isZero(api.ServiceSpec{}) {
		t.Error("an empty spec is taken as a change")
	}
}
