package imageref

import (
	"strings"
	"testing"
)

func TestRepository(t *testing.T) {
	for _, tc := range []struct {
		in, err string // err: a part of the message; "" means valid
	}{
		{"ghcr.io/berth-ml/berth", ""},
		{"berth", ""},
		{"berth-ml/berth", ""},
		{"localhost/berth", ""},
		{"localhost:5000/berth", ""},
		{"mirror.corp.example:5000/ml/team/berth", ""},
		{"127.0.0.1:5000/berth", ""},
		{"[::1]:5000/berth", ""},
		{"[fd00::1]/berth", ""},
		{"Registry.Corp/berth", ""}, // host names are case-insensitive
		{"REG/repo", ""},            // capitals: the first part is a host, as Docker reads it
		{"reg.io/a.b/c_d/e__f/g---h/0x", ""},
		{"reg.io/" + strings.Repeat("a", 248), ""},

		{"", "is empty"},
		{"REG/Repo", `has an invalid path component "Repo": repository paths must be lowercase`},
		{"Berth", `has an invalid path component "Berth": repository paths must be lowercase`},
		{"reg/repo:tag", `has a tag (":tag")`},
		{"reg.io:5000/repo:1.0", `has a tag (":1.0")`},
		{"reg:5000", `has a tag (":5000")`},
		{"reg/repo@sha256:" + strings.Repeat("a", 64), "has a digest"},
		{"reg//x", "empty path component"},
		{"reg/x/", "empty path component"},
		{"/x", "empty path component"},
		{"reg.io/", "no repository path"},
		{"reg/re po", `has an invalid path component "re po": ' ' is not allowed`},
		{"reg.io/ber$th", `'$' is not allowed`},
		{"reg.io/-berth", "must start and end with a lowercase letter or digit"},
		{"reg.io/berth_", "must start and end"},
		{"reg.io/a..b", "must start and end"},
		{"reg.io/a___b", "must start and end"},
		{"reg.io/a._b", "must start and end"},
		{"https://ghcr.io/berth", `has a URL scheme ("https://")`},
		{"ghcr.io:/berth", `has an invalid registry host "ghcr.io:": the port is empty`},
		{"reg_x.io/berth", `has an invalid registry host "reg_x.io": "reg_x" is not a host name label`},
		{"-reg.io/berth", `"-reg" is not a host name label`},
		{"reg..io/berth", `has an invalid registry host "reg..io": "" is not a host name label`},
		{"reg.io:/berth", "the port is empty"},
		{"reg.io:http/berth", `port "http" is not a number`},
		{"reg.io:70000/berth", `port "70000" is not a number from 1 to 65535`},
		{"[::1/berth", "no closing ']'"},
		{"[1.2.3.4]/berth", "is not an IPv6 address"},
		{"[::1]x/berth", `unexpected "x"`},
		{"reg.io/" + strings.Repeat("a", 249), "more than the 255"},
	} {
		err := Repository(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("Repository(%q): %v, want valid", tc.in, err)
		case tc.err != "" && err == nil:
			t.Errorf("Repository(%q) valid, want an error with %q", tc.in, tc.err)
		case tc.err != "" && !strings.Contains(err.Error(), tc.err):
			t.Errorf("Repository(%q): %q, want it to contain %q", tc.in, err, tc.err)
		}
	}
}

func TestReference(t *testing.T) {
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct{ in, err string }{
		{"ghcr.io/berth-ml/berth:0.3.0", ""},
		{"ghcr.io/berth-ml/berth", ""},
		{"berth:dev-0123456789ab-dirty", ""},
		{"localhost:5000/berth:latest", ""},
		{"localhost:5000/berth", ""},
		{"reg.io/berth@" + digest, ""},
		{"reg.io/berth:1.0@" + digest, ""},
		{"[::1]:5000/berth:v1", ""},

		{"", "is empty"},
		{"reg.io/berth:", `has an invalid tag ""`},
		{"reg.io/berth:-x", `has an invalid tag "-x"`},
		{"reg.io/berth:1.0+build", `has an invalid tag "1.0+build"`},
		{"reg.io/berth:" + strings.Repeat("a", 129), "has an invalid tag"},
		{"reg.io/berth@sha256:abc", "has an invalid digest"},
		{"reg.io/Berth:1", "must be lowercase"},
		{"reg.io//berth:1", "empty path component"},
	} {
		err := Reference(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("Reference(%q): %v, want valid", tc.in, err)
		case tc.err != "" && err == nil:
			t.Errorf("Reference(%q) valid, want an error with %q", tc.in, tc.err)
		case tc.err != "" && !strings.Contains(err.Error(), tc.err):
			t.Errorf("Reference(%q): %q, want it to contain %q", tc.in, err, tc.err)
		}
	}
}

func TestTag(t *testing.T) {
	for _, ok := range []string{"0.3.0", "latest", "dev-0123456789ab", "dev-0123456789ab-dirty", "dev", "_x", strings.Repeat("a", 128)} {
		if err := Tag(ok); err != nil {
			t.Errorf("Tag(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".x", "-x", "a+b", "a/b", "a:b", strings.Repeat("a", 129)} {
		if Tag(bad) == nil {
			t.Errorf("Tag(%q) valid", bad)
		}
	}
}
