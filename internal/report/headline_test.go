package report_test

import (
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

func phase(name string, s result.Status, c result.Counts, v *result.Verification) result.Phase {
	return result.Phase{Name: name, Status: s, Counts: c, Verification: v}
}

// TestHeadlinesCannotMislead: the compliance figure covers every instance
// the run targeted, says its scope, names what was not reached, and a
// pending reboot reaches the headline; a cancelled phase never shows a
// success mark.
func TestHeadlinesCannotMislead(t *testing.T) {
	verified := func(n, compliant int, pending result.PendingReboot) *result.Verification {
		return &result.Verification{Verdict: result.StatusPassed, Compliance: &result.Compliance{Instances: n, Compliant: compliant, PendingReboot: pending}}
	}
	run := func(s result.Status, phases ...result.Phase) *result.Run {
		return &result.Run{RunID: "7", Status: s, Policies: []result.Policy{{Name: "web", Status: s, Targets: []result.Target{{AccountID: "1", Region: "r", Status: s, Phases: phases}}}}}
	}
	for _, tc := range []struct {
		name      string
		r         *result.Run
		want      []string
		notWanted []string
	}{
		{"cancelled during staging's soak: production never reached",
			run(result.StatusCancelled,
				phase("staging", result.StatusCancelled, result.Counts{Targeted: 4, Succeeded: 4}, verified(4, 4, result.PendingReboot{})),
				phase("production", result.StatusCancelled, result.Counts{}, nil)),
			[]string{"🛑 Cancelled", "(4 of 4 targeted instances verified compliant)", "not reached: web/production", "🛑 cancelled"},
			[]string{"✅"}},
		{"pending reboots under warn reach the headline",
			run(result.StatusPassed, phase("staging", result.StatusPassed, result.Counts{Targeted: 24, Succeeded: 24}, verified(24, 24, result.PendingReboot{Instances: 24, Patches: 48}))),
			[]string{"✅ Patched and verified", "⚠️ 48 patches await a reboot on 24 instances"}, nil},
		{"failed instances count against compliance",
			run(result.StatusFailed, phase("staging", result.StatusFailed, result.Counts{Targeted: 10, Succeeded: 8, Failed: 2}, verified(8, 8, result.PendingReboot{}))),
			[]string{"Compliance after patching: 80.0%", "(8 of 10 targeted"}, []string{"100.0%"}},
		{"no verification asked: not called verified",
			run(result.StatusPassed, phase("staging", result.StatusPassed, result.Counts{Targeted: 10, Succeeded: 10}, nil)),
			[]string{"no phase asked for verification"}, []string{"Patched and verified", "Compliance after patching"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, kind := range []report.Kind{report.Summary, report.Comment} {
				out := report.Run(tc.r, kind)
				head := strings.SplitN(out, "### Why", 2)[0]
				for _, w := range tc.want {
					if !strings.Contains(head, w) {
						t.Errorf("%v: no %q in\n%s", kind, w, head)
					}
				}
				for _, w := range tc.notWanted {
					if strings.Contains(head, w) {
						t.Errorf("%v: %q in\n%s", kind, w, head)
					}
				}
			}
		})
	}
}

// TestPromotionIsShown: a promoted phase says where its patch set came
// from, linked to the source run, and how it was replayed; a phase that
// wrote a record names it.
func TestPromotionIsShown(t *testing.T) {
	src := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	r := &result.Run{RunID: "2", Status: result.StatusPassed, Policies: []result.Policy{{Name: "payments", Status: result.StatusPassed, Targets: []result.Target{{
		AccountID: "444455556666", Region: "us-east-1", Status: result.StatusPassed, Phases: []result.Phase{{Name: "production", Status: result.StatusPassed,
			Counts: result.Counts{Targeted: 5, Succeeded: 5}, Record: "patchgate/records/payments/production/abc/0000000001.json",
			Promotion: &result.Promotion{From: "staging", Record: "k", SourceRun: "1", SourceURL: "https://github.com/acme/infra/actions/runs/1",
				SourceTime: src, Mechanism: "InstallOverrideList", Exact: true, Patches: 7}}}}}}}}
	out := report.Run(r, report.Summary)
	for _, want := range []string{"promoted from staging of run [1](https://github.com/acme/infra/actions/runs/1) (2026-11-22 04:00 UTC, exactly its 7 patches, with InstallOverrideList)",
		"promotion record `patchgate/records/payments/production/abc/0000000001.json`"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

// TestPlanShowsRings: the plan comment says each ring's scope and whether a
// promoted phase may run, and from when.
func TestPlanShowsRings(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 40, 0, 0, time.UTC)
	p := &plan.Plan{Base: "main", Policies: []plan.PolicyPlan{{PolicyDiff: plan.PolicyDiff{Name: "payments", Status: plan.Changed,
		Changes: []plan.FieldChange{{Field: "production: minAge", From: "96h", To: "72h"}}},
		Rings: []plan.RingPhase{{Phase: "staging", Accounts: []string{"111122223333"}, Regions: []string{"us-east-1"}},
			{Phase: "production", Accounts: []string{"444455556666"}, Regions: []string{"us-east-1"}, From: "staging", MinAge: "72h", MaxAge: "336h", Replay: true,
				Checked: true, State: "no record of the source phase", EligibleAt: at}}}}}
	out := report.Plan(p, report.Comment, "")
	for _, want := range []string{"Rings:", "staging in 111122223333 (us-east-1)",
		"production in 444455556666 (us-east-1): promoted from staging passed 72h to 336h ago, replaying its patch set; waits: no record of the source phase; eligible from 2026-12-03 09:40 UTC"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}
