package imagetest

import "testing"

func TestLoadedName(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"Getting image source signatures\nCopying blob 1a2b\nWriting manifest to image destination\nLoaded image: localhost/berth:dev-0123456789ab\n", "localhost/berth:dev-0123456789ab"},
		{"Loaded image(s): localhost/berth:1.2.0\n", "localhost/berth:1.2.0"},
		{"Loaded image(s): sha256:abc,localhost/berth:1.2.0\n", "localhost/berth:1.2.0"},
		{"Loaded image: sha256:0123\n", ""},
		{"nothing\n", ""},
	} {
		got, err := LoadedName(tc.out)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("LoadedName(%q) = %q, %v; want %q", tc.out, got, err, tc.want)
		}
	}
}
