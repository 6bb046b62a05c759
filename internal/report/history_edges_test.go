package report_test

import (
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

// TestSummarizeRemainingAtTheLowestThreshold: a policy's remaining
// findings count from the lowest failOnSeverity of its phases that enable
// Inspector (a disabled phase's or an empty one's does not lower it), or
// all of them when no phase sets one; fixed findings and patched instances
// sum over every phase, with or without Inspector evidence.
func TestSummarizeRemainingAtTheLowestThreshold(t *testing.T) {
	insp := func(on bool, sev string) policy.Stage {
		return policy.Stage{Inspector: policy.Inspection{Enabled: on, FailOnSeverity: sev}}
	}
	remaining := []result.Finding{{Severity: "CRITICAL"}, {Severity: "HIGH"}, {Severity: "high"}, {Severity: "MEDIUM"}, {Severity: "LOW"}, {Severity: "UNKNOWN"}}
	for _, tc := range []struct {
		name   string
		stages []policy.Stage
		want   int
	}{
		{"no plan: every remaining finding", nil, 6},
		{"no stage sets a threshold", []policy.Stage{insp(true, ""), insp(false, "")}, 6},
		{"CRITICAL then HIGH: HIGH", []policy.Stage{insp(true, "CRITICAL"), insp(true, "HIGH")}, 3},
		{"HIGH then CRITICAL: HIGH", []policy.Stage{insp(true, "HIGH"), insp(true, "CRITICAL")}, 3},
		{"a disabled LOW does not count", []policy.Stage{insp(true, "CRITICAL"), insp(false, "LOW")}, 1},
		{"an empty one after does not reset it", []policy.Stage{insp(true, "MEDIUM"), insp(true, "")}, 4},
		{"lower case", []policy.Stage{insp(true, "medium")}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := result.Policy{Name: "p", Status: result.StatusPassed, Targets: []result.Target{{Phases: []result.Phase{
				{Name: "a", Counts: result.Counts{Succeeded: 3}, Verification: &result.Verification{Inspector: &result.Inspector{Remaining: remaining, Fixed: make([]result.Finding, 5)}}},
				{Name: "b", Counts: result.Counts{Succeeded: 4}, Verification: &result.Verification{}},
				{Name: "c", Counts: result.Counts{Succeeded: 1}},
				{Name: "d", Counts: result.Counts{Succeeded: 2}, Verification: &result.Verification{Inspector: &result.Inspector{Fixed: make([]result.Finding, 2)}}},
			}}}}
			if tc.stages != nil {
				p.Plan = &policy.Rollout{Stages: tc.stages}
			}
			es := report.Summarize(&result.Run{RunID: "1", Policies: []result.Policy{p}})
			if len(es) != 1 || es[0].CVEsRemaining != tc.want || es[0].CVEsFixed != 7 || es[0].Patched != 10 {
				t.Fatalf("%+v, want %d remaining, 7 fixed, 10 patched", es, tc.want)
			}
		})
	}
}

// TestHistoryTwoPointsMakeAChart: two verified runs are a trend, with a
// chart; the chart's title keeps spaces and loses what would end its quotes.
func TestHistoryTwoPointsMakeAChart(t *testing.T) {
	es := historyEntries()[:2]
	got := report.History("web fleet\"x`y\\z\tw", es)
	for _, want := range []string{"went from 91.0% to 91.8% (+0.8 points) over 2 verified runs", "```mermaid\nxychart-beta\n",
		`title "web fleet'x'y'z'w: compliance after patching (%)"`} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
}
