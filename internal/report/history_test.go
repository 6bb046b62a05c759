package report_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/history"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

func TestSummarize(t *testing.T) {
	for _, name := range []string{"passed.json", "failed.json"} {
		r := loadRun(t, name)
		var attempted []result.Policy
		for _, p := range r.Policies {
			if p.Status != result.StatusSkipped {
				attempted = append(attempted, p)
			}
		}
		entries := report.Summarize(r)
		if len(entries) != len(attempted) || len(entries) == 0 {
			t.Fatalf("%s: %d entries for %d policies attempted", name, len(entries), len(attempted))
		}
		for i, e := range entries {
			p := attempted[i]
			one := *r
			one.Policies = []result.Policy{p}
			pct, ok := report.CompliancePercent(&one)
			if e.Policy != p.Name || e.Status != p.Status || e.RunID != r.RunID || (e.CompliancePercent != nil) != ok || (ok && *e.CompliancePercent != pct) {
				t.Errorf("%s/%s: %+v (compliance %v %v)", name, p.Name, e, pct, ok)
			}
			patched, fixed := 0, 0
			for _, tg := range p.Targets {
				for _, ph := range tg.Phases {
					patched += ph.Counts.Succeeded
					if v := ph.Verification; v != nil && v.Inspector != nil {
						fixed += len(v.Inspector.Fixed)
					}
				}
			}
			if e.Patched != patched || e.CVEsFixed != fixed {
				t.Errorf("%s/%s: patched %d fixed %d, want %d %d", name, p.Name, e.Patched, e.CVEsFixed, patched, fixed)
			}
		}
	}
}

func TestSummarizeLeavesOutPoliciesNotDue(t *testing.T) {
	r := &result.Run{RunID: "1", Policies: []result.Policy{{Name: "a", Status: result.StatusSkipped}, {Name: "b", Status: result.StatusRefused}}}
	if es := report.Summarize(r); len(es) != 1 || es[0].Policy != "b" || es[0].CompliancePercent != nil {
		t.Fatalf("%+v", es)
	}
}

// TestSummarizeCountsRemainingAtTheThreshold: findings below the policy's
// failOnSeverity are not "remaining above the threshold".
func TestSummarizeCountsRemainingAtTheThreshold(t *testing.T) {
	r := loadRun(t, "failed.json")
	var p *result.Policy
	for i := range r.Policies {
		if r.Policies[i].Plan != nil {
			p = &r.Policies[i]
			break
		}
	}
	if p == nil {
		t.Skip("no compiled plan in failed.json")
	}
	for i := range p.Plan.Stages {
		p.Plan.Stages[i].Inspector.Enabled, p.Plan.Stages[i].Inspector.FailOnSeverity = true, "CRITICAL"
	}
	ph := &p.Targets[0].Phases[0]
	ph.Verification = &result.Verification{Inspector: &result.Inspector{Remaining: []result.Finding{{CVE: "CVE-1", Severity: "CRITICAL"}, {CVE: "CVE-2", Severity: "HIGH"}, {CVE: "CVE-3", Severity: "CRITICAL"}}}}
	for _, tg := range p.Targets {
		for j := range tg.Phases {
			if &tg.Phases[j] != ph && tg.Phases[j].Verification != nil {
				tg.Phases[j].Verification.Inspector = nil
			}
		}
	}
	for _, e := range report.Summarize(&result.Run{RunID: "1", Policies: []result.Policy{*p}}) {
		if e.CVEsRemaining != 2 {
			t.Errorf("remaining at or above CRITICAL: %d, want 2", e.CVEsRemaining)
		}
	}
}

func historyEntries() []history.Entry {
	base := time.Date(2026, 9, 6, 3, 0, 0, 0, time.UTC)
	var es []history.Entry
	for i := range 12 {
		e := history.Entry{Policy: "web-fleet", RunID: fmt.Sprint(9000 + i), RunURL: fmt.Sprintf("https://github.com/acme/infra/actions/runs/%d", 9000+i),
			StartedAt: base.AddDate(0, 0, 7*i), Status: result.StatusPassed, Targeted: 270, Patched: 250 + i, CVEsFixed: 300 - 10*i, CVEsRemaining: 12 - i}
		pct := 91.0 + float64(i)*0.75
		e.CompliancePercent = &pct
		switch i {
		case 4: // refused: nothing verified, no point on the chart
			e.Status, e.CompliancePercent, e.Patched, e.CVEsFixed, e.CVEsRemaining = result.StatusRefused, nil, 0, 0, 0
		case 7:
			e.Status = result.StatusFailed
			low := 88.2
			e.CompliancePercent = &low
		}
		es = append(es, e)
	}
	return es
}

func TestHistoryGolden(t *testing.T) {
	golden(t, "history.md", report.History("web-fleet", historyEntries()))
}

func TestHistoryFewRuns(t *testing.T) {
	if got := report.History("web-fleet", nil); !strings.Contains(got, "No runs recorded yet") || strings.Contains(got, "mermaid") {
		t.Errorf("no runs:\n%s", got)
	}
	one := historyEntries()[:1]
	if got := report.History("web-fleet", one); !strings.Contains(got, "One verified run so far: 91.0%") || strings.Contains(got, "mermaid") {
		t.Errorf("one run:\n%s", got)
	}
}

// TestHistoryHostileRecord: a record read from a bucket cannot break the
// table, the chart or the link.
func TestHistoryHostileRecord(t *testing.T) {
	es := historyEntries()[:2]
	es[1].RunID = "1 | x\n## injected"
	es[1].RunURL = "https://evil.example/a)[click](javascript:alert(1)"
	es[0].RunURL = "javascript:alert(1)"
	got := report.History("web\"fleet", es)
	for _, bad := range []string{"javascript:", "\n## injected", "(https://evil", `"web"fleet`} {
		if strings.Contains(got, bad) {
			t.Errorf("rendered %q:\n%s", bad, got)
		}
	}
	if !strings.Contains(got, `1 \| x ## injected`) {
		t.Errorf("the run id should be one escaped cell:\n%s", got)
	}
}
