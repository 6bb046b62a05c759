package result

import "testing"

// Counted says which severities RemainingBySeverity measures: all of them
// when every finding was listed, else only those at or above what the
// gate listed, so that a report or metric never shows an unmeasured 0.
func TestInspectorCounted(t *testing.T) {
	for _, tc := range []struct {
		listed   *FindingsListed
		severity string
		want     bool
	}{
		{nil, "LOW", true},
		{&FindingsListed{}, "LOW", true},
		{&FindingsListed{MinSeverity: "HIGH"}, "CRITICAL", true},
		{&FindingsListed{MinSeverity: "HIGH"}, "HIGH", true},
		{&FindingsListed{MinSeverity: "HIGH"}, "MEDIUM", false},
		{&FindingsListed{MinSeverity: "CRITICAL"}, "HIGH", false},
		{&FindingsListed{MinSeverity: "HIGH"}, "SEVERE", false},
		{&FindingsListed{MinSeverity: "UNTRIAGED"}, "INFORMATIONAL", true},
	} {
		in := &Inspector{Listed: tc.listed}
		if got := in.Counted(tc.severity); got != tc.want {
			t.Errorf("listed %+v: Counted(%s) = %v, want %v", tc.listed, tc.severity, got, tc.want)
		}
	}
}

// TestSeverityRank: Inspector's order, UNTRIAGED lowest; a severity
// Inspector does not define has no rank.
func TestSeverityRank(t *testing.T) {
	for _, tc := range []struct {
		sev  string
		rank int
		ok   bool
	}{{"UNTRIAGED", 0, true}, {"INFORMATIONAL", 1, true}, {"LOW", 2, true}, {"MEDIUM", 3, true}, {"HIGH", 4, true}, {"CRITICAL", 5, true}, {"SEVERE", 0, false}, {"high", 0, false}} {
		if r, ok := SeverityRank(tc.sev); r != tc.rank || ok != tc.ok {
			t.Errorf("SeverityRank(%q) = %d, %v; want %d, %v", tc.sev, r, ok, tc.rank, tc.ok)
		}
	}
	if s := Severities(); len(s) != 6 || s[0] != "UNTRIAGED" || s[5] != "CRITICAL" {
		t.Errorf("Severities() = %v", s)
	}
}
