package naming

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestComputeNameRules(t *testing.T) {
	cases := []struct {
		name string
		want []string // substrings of the messages, one per failed rule; none = valid
	}{
		{"aks-prod", nil},
		{"A1b", nil},
		{"gpu-cluster-0123456789ab", nil}, // 24
		{"", []string{"compute name is required"}},
		{"ab", []string{`"ab" must be 3 to 24 characters long (it has 2)`}},
		{"gpu-cluster-0123456789abc", []string{"must be 3 to 24 characters long (it has 25)"}},
		{"1abc", []string{`"1abc" must start with a letter`}},
		{"-abc", []string{"must start with a letter"}},
		{"abc-", []string{`"abc-" must end with a letter or digit`}},
		{"my_cluster", []string{`may only contain letters, digits and '-' (found '_')`}},
		{"my cluster!", []string{`(found ' ', '!')`, "must end with a letter or digit"}},
		{"Local", []string{`"Local" is reserved`}},
		{"9_", []string{"must be 3 to 24", "found '_'", "must start with a letter", "must end with a letter or digit"}},
	}
	for _, c := range cases {
		got := Compute(c.name)
		if len(got) != len(c.want) {
			t.Errorf("Compute(%q) = %v, want %d problems", c.name, got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(got[i].Message, w) {
				t.Errorf("Compute(%q)[%d] = %q, want it to contain %q", c.name, i, got[i].Message, w)
			}
			if got[i].Code != "InvalidComputeName" {
				t.Errorf("code %q", got[i].Code)
			}
		}
	}
}

func TestWorkspaceNameRules(t *testing.T) {
	for _, ok := range []string{"team_a", "1team", "ml-prod-2026"} {
		if d := Workspace(ok); len(d) != 0 {
			t.Errorf("Workspace(%q) = %v, want valid", ok, d)
		}
	}
	for name, want := range map[string]string{
		"_x1":                                "must start with a letter or digit",
		"ab":                                 "must be 3 to 33 characters long",
		"team.a":                             "found '.'",
		"abcdefghijabcdefghijabcdefghijabcd": "must be 3 to 33 characters long (it has 34)",
	} {
		d := Workspace(name)
		if len(d) == 0 || !strings.Contains(d[0].Message, want) {
			t.Errorf("Workspace(%q) = %v, want %q", name, d, want)
		}
	}
}

func FuzzComputeName(f *testing.F) {
	for _, s := range []string{"abc", "a-b", "", "ab", "ÿÿÿ", "a\x00b", "local"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		d := Compute(name)
		valid := len(d) == 0
		// A name is valid exactly when it matches the rule written out plainly.
		n := utf8.RuneCountInString(name)
		want := n >= 3 && n <= 24 && utf8.ValidString(name)
		for i, r := range name {
			if !(isLetter(r) || isDigit(r) || r == '-') {
				want = false
			}
			if i == 0 && !isLetter(r) {
				want = false
			}
		}
		if want {
			last := name[len(name)-1]
			want = isLetter(rune(last)) || isDigit(rune(last))
			want = want && !reservedCompute[strings.ToLower(name)]
		}
		if valid != want {
			t.Fatalf("Compute(%q) valid=%v, rule says %v (%v)", name, valid, want, d)
		}
		for _, x := range d {
			if x.Message == "" {
				t.Fatal("empty message")
			}
		}
	})
}
