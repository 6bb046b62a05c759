package report_test

import (
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

// A phase that did not read its patch states before, and listed only the
// Inspector findings its gate judges, is shown as such: "not read" and
// "not listed", never a 0 that was not measured. The same phase with
// everything read shows the numbers.
func TestUnmeasuredCountsAreNotShownAsZero(t *testing.T) {
	run := func(notRead bool, listed *result.FindingsListed) *result.Run {
		t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
		v := &result.Verification{Verdict: result.StatusPassed,
			Compliance: &result.Compliance{Instances: 4, Compliant: 4, Percent: 100, Before: result.PatchCounts{Missing: 9}, BeforeNotRead: notRead},
			Inspector: &result.Inspector{Listed: listed, FixedBySeverity: map[string]int{}, RemainingBySeverity: map[string]int{"HIGH": 1},
				Remaining: []result.Finding{{InstanceID: "i-1", CVE: "CVE-2024-1", Severity: "HIGH", FixAvailable: true, Status: "ACTIVE"}}}}
		if listed == nil {
			v.Inspector.FixedBySeverity["CRITICAL"] = 3
		}
		return &result.Run{RunID: "1", StartedAt: t0, EndedAt: t0.Add(time.Hour), Status: result.StatusPassed, Policies: []result.Policy{{Name: "web", Status: result.StatusPassed,
			Targets: []result.Target{{AccountID: "111122223333", Region: "us-east-1", Status: result.StatusPassed, Phases: []result.Phase{{Name: "prod", Status: result.StatusPassed,
				Counts: result.Counts{Targeted: 4, Succeeded: 4}, StartedAt: t0, EndedAt: t0.Add(time.Hour), Verification: v}}}}}}}
	}
	row := func(r *result.Run) string {
		for _, l := range strings.Split(report.Run(r, report.Summary), "\n") {
			if strings.HasPrefix(l, "| web |") {
				return l
			}
		}
		t.Fatal("no row for policy web")
		return ""
	}
	got := row(run(true, &result.FindingsListed{MinSeverity: "HIGH"}))
	for _, want := range []string{"not read → 0 missing; 4/4 compliant", "| not listed |", "| 1 high at or above high |"} {
		if !strings.Contains(got, want) {
			t.Errorf("row %q lacks %q", got, want)
		}
	}
	got = row(run(false, nil))
	for _, want := range []string{"9 missing → 0 missing; 4/4 compliant", "| 3 critical |", "| 1 high |"} {
		if !strings.Contains(got, want) {
			t.Errorf("row %q lacks %q", got, want)
		}
	}
	es := report.Summarize(run(true, &result.FindingsListed{MinSeverity: "HIGH"}))
	if len(es) != 1 || !es[0].FixedNotListed || !strings.Contains(report.History("web", es), "| not listed |") {
		t.Errorf("history entry %+v", es)
	}
}

// A listing of the gate's findings that found none says "0 at or above"
// its severity: a "–" there would read as "Inspector was not checked".
func TestListedNothingRemainingSaysSo(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	v := &result.Verification{Verdict: result.StatusPassed,
		Inspector: &result.Inspector{Listed: &result.FindingsListed{MinSeverity: "CRITICAL"}, FixedBySeverity: map[string]int{}, RemainingBySeverity: map[string]int{}}}
	r := &result.Run{RunID: "1", StartedAt: t0, EndedAt: t0.Add(time.Hour), Status: result.StatusPassed, Policies: []result.Policy{{Name: "web", Status: result.StatusPassed,
		Targets: []result.Target{{AccountID: "111122223333", Region: "us-east-1", Status: result.StatusPassed, Phases: []result.Phase{{Name: "prod", Status: result.StatusPassed,
			Counts: result.Counts{Targeted: 4, Succeeded: 4}, StartedAt: t0, EndedAt: t0.Add(time.Hour), Verification: v}}}}}}}
	for _, l := range strings.Split(report.Run(r, report.Summary), "\n") {
		if strings.HasPrefix(l, "| web |") {
			if !strings.Contains(l, "| not listed | 0 at or above critical |") {
				t.Errorf("row %q", l)
			}
			return
		}
	}
	t.Fatal("no row for policy web")
}
