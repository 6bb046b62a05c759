package metrics

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/patchgate/patchgate/internal/result"
)

// A severity the gate did not list was not counted: it gets no datum, not
// a 0 a dashboard would read as "none open".
func TestOpenFindingsOnlyForCountedSeverities(t *testing.T) {
	for _, tc := range []struct {
		listed *result.FindingsListed
		want   map[string]float64
	}{
		{nil, map[string]float64{"OpenFindingsCritical": 1, "OpenFindingsHigh": 2}},
		{&result.FindingsListed{MinSeverity: "HIGH"}, map[string]float64{"OpenFindingsCritical": 1, "OpenFindingsHigh": 2}},
		{&result.FindingsListed{MinSeverity: "CRITICAL"}, map[string]float64{"OpenFindingsCritical": 1}},
	} {
		tg := result.Target{AccountID: "111122223333", Region: "us-east-1", Phases: []result.Phase{{Name: "prod",
			Verification: &result.Verification{Inspector: &result.Inspector{Listed: tc.listed, RemainingBySeverity: map[string]int{"CRITICAL": 1, "HIGH": 2}}}}}}
		got := map[string]float64{}
		for _, d := range Datums("web", tg, time.Now()) {
			if n := aws.ToString(d.MetricName); n == "OpenFindingsCritical" || n == "OpenFindingsHigh" {
				got[n] = aws.ToFloat64(d.Value)
			}
		}
		if len(got) != len(tc.want) || got["OpenFindingsCritical"] != tc.want["OpenFindingsCritical"] || got["OpenFindingsHigh"] != tc.want["OpenFindingsHigh"] {
			t.Errorf("listed %+v: %v, want %v", tc.listed, got, tc.want)
		}
	}
}
