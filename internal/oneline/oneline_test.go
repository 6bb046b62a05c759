package oneline

import (
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\r\n::error::b", 100, "a ::error::b"},
		{"x\u2028y\u0085z\x00w", 100, "x y z w"},
		{"  many   spaces\t", 100, "many spaces"},
		{"abcdefghij", 8, "abcde…"},
		{"ééééé", 8, "éé…"},
		{"bad\xffbyte", 100, "bad\uFFFDbyte"},
	} {
		got := Clean(tc.in, tc.n)
		if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
			t.Errorf("Clean(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
