package suggest

import "testing"

func TestClosest(t *testing.T) {
	names := []string{"web-fleet", "db-fleet", "batch"}
	tests := []struct {
		name    string
		maxDist int
		want    string
		ok      bool
	}{
		{"web-flet", 2, "web-fleet", true},
		{"WEB-FLEET", 0, "web-fleet", true},
		{"db-flet", 1, "db-fleet", true},
		{"bach", 1, "batch", true},
		{"database-fleet", 2, "", false},
		{"zzz", 2, "", false},
	}
	for _, tt := range tests {
		got, ok := Closest(tt.name, names, tt.maxDist)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Closest(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := Closest("x", nil, 2); ok {
		t.Error("no known names must suggest nothing")
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"version", "versoin", 2}, {"run", "run", 0}} {
		if got := Distance(tt.a, tt.b); got != tt.d {
			t.Errorf("Distance(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.d)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	if got := DidYouMean("versoin", []string{"version", "validate"}, 2); got != ` (did you mean "version"?)` {
		t.Errorf("got %q", got)
	}
	if got := DidYouMean("qqqqqq", []string{"version"}, 2); got != "" {
		t.Errorf("got %q", got)
	}
}
