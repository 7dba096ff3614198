package preflight

import "testing"

func TestVersionRange(t *testing.T) {
	r, err := ParseVersionRange("1.33-1.37")
	if err != nil || r != (VersionRange{33, 37}) {
		t.Fatalf("%v %v", r, err)
	}
	for v, ok := range map[string]bool{"v1.37.2": true, "v1.33.0": true, "1.35": true, "v1.32.9": false, "v1.38.0": false, "v2.35.0": false, "garbage": false} {
		if r.Contains(v) != ok {
			t.Errorf("Contains(%q) = %v", v, !ok)
		}
	}
	for _, bad := range []string{"1.37-1.33", "1.33", "x-y", "2.1-2.3"} {
		if _, err := ParseVersionRange(bad); err == nil {
			t.Errorf("ParseVersionRange(%q) accepted", bad)
		}
	}
	if r.String() != "1.33 - 1.37" {
		t.Errorf("String %q", r.String())
	}
}
