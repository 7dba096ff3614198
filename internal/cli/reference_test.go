package cli

import (
	"strings"
	"testing"
)

// TestClusterPurposeSpellings: the reference's spellings of the two
// purposes map to Berth's; anything else is refused naming Berth's.
func TestClusterPurposeSpellings(t *testing.T) {
	for in, want := range map[string]string{"": "", "FastProd": "FastProd", "fastprod": "FastProd", "FAST_PROD": "FastProd", "fast-prod": "FastProd",
		"DevTest": "DevTest", "devtest": "DevTest", "dev-test": "DevTest", "DEV_TEST": "DevTest", "Dev Test": "DevTest"} {
		if got, err := clusterPurpose(in); got != want || err != nil {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"prod", "dev", "test", "production", "fast"} {
		if _, err := clusterPurpose(in); err == nil || !strings.Contains(err.Error(), "Berth spells them FastProd") {
			t.Errorf("%q: %v", in, err)
		}
	}
}
