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
