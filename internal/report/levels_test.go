package report

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/result"
)

// goldenFile compares got with testdata/name; -update (the flag report_test
// defines for the same binary) rewrites it.
func goldenFile(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(got, "\n")
		for i := 0; i < len(wl) && i < len(gl); i++ {
			if wl[i] != gl[i] {
				t.Fatalf("%s differs at line %d (go test ./internal/report -update to accept):\nwant %s\ngot  %s", name, i+1, wl[i], gl[i])
			}
		}
		t.Fatalf("%s differs: %d lines, want %d", name, len(gl), len(wl))
	}
}

// edgeRun has one of everything a run report words differently: a forced
// window, run errors, a refused and a cancelled target, phases not reached,
// a policy with no targets, a phase over two targets (earliest start, latest
// end, worst status), pending reboots, every kind of finding and uncovered
// instances (and a phase with fixed findings only), inconclusive and cancelled instances (one column), every
// failure outcome, promotions exact, inexact and without replay, a
// promotion record, backups with restore commands, and commands sent,
// resumed, never sent and with a console link.
func edgeRun() *result.Run {
	at := func(h, m int) time.Time { return time.Date(2026, 11, 22, h, m, 0, 0, time.UTC) }
	pass := result.StatusPassed
	stagingA := result.Phase{Name: "staging", Status: pass, StartedAt: at(3, 0), EndedAt: at(3, 30),
		Counts: result.Counts{Targeted: 6, Succeeded: 2, Failed: 1, TimedOut: 1, Inconclusive: 1, Cancelled: 1},
		Verification: &result.Verification{Verdict: pass, Warnings: []string{"1 ACTIVE findings have no fix available"},
			Compliance: &result.Compliance{Instances: 2, Compliant: 1, Before: result.PatchCounts{Missing: 9}, After: result.PatchCounts{Missing: 1},
				PendingReboot: result.PendingReboot{Instances: 1, Patches: 3},
				NonCompliant:  []result.InstanceCompliance{{InstanceID: "i-2", Reason: "3 installed patches wait for a reboot", PendingReboot: 3, CVEs: []string{"CVE-1", "CVE-2"}}}},
			Inspector: &result.Inspector{FixedBySeverity: map[string]int{"HIGH": 1, "LOW": 2}, RemainingBySeverity: map[string]int{"MEDIUM": 1},
				Fixed:     []result.Finding{{InstanceID: "i-1", CVE: "CVE-9", Severity: "HIGH", Package: "openssl"}},
				Remaining: []result.Finding{{InstanceID: "i-1", CVE: "CVE-8", Severity: "MEDIUM", Package: "curl"}},
				NoFix:     []result.Finding{{InstanceID: "i-2", CVE: "CVE-7", Severity: "LOW"}},
				New:       []result.Finding{{InstanceID: "i-2", CVE: "CVE-6", Severity: "LOW"}},
				Uncovered: []result.Coverage{{InstanceID: "i-3"}}}},
		Waves: []result.Wave{{Index: 1, Instances: []result.Instance{
			{ID: "i-1", Outcome: result.OutcomeSucceeded}, {ID: "i-2", Outcome: result.OutcomeSucceeded},
			{ID: "i-3", Name: "web-3", Outcome: result.OutcomeOffline, SSMStatus: "", Error: "ConnectionLost"},
			{ID: "i-4", Outcome: result.OutcomeCancelled, SSMStatus: "Cancelled"},
			{ID: "i-5", Outcome: result.OutcomeInconclusive, SSMStatus: "InProgress"},
			{ID: "i-6", Outcome: result.OutcomeTimedOut, SSMStatus: "TimedOut", StatusDetails: "ExecutionTimedOut"},
			{ID: "i-7", Outcome: result.OutcomeFailed, SSMStatus: "Failed", StatusDetails: "Failed", Error: "E: dpkg | <b>"},
			{ID: "i-8", Outcome: result.OutcomePending},
		},
			Commands: []result.Command{
				{CommandID: "c-sent", Sent: true, Instances: 4, Status: "Success", MaxConcurrency: "50%", MaxErrors: "0",
					ConsoleURL: "https://us-east-1.console.aws.amazon.com/systems-manager/run-command/c-sent?region=us-east-1"},
				{CommandID: "c-resumed", Resumed: true, Instances: 2, Status: "InProgress"},
				{CommandID: "c-never", Instances: 2},
			},
			Backups: []result.Backup{{InstanceID: "i-1", Snapshots: []string{"snap-1"}}, {InstanceID: "i-7", Snapshots: []string{"snap-7"}, Restore: []string{"aws ec2 create-volume --snapshot-id snap-7"}}},
		}}}
	// The same phase in another target: started earlier, ended later, failed.
	stagingC := result.Phase{Name: "staging", Status: result.StatusFailed, StartedAt: at(2, 50), EndedAt: at(3, 40), Counts: result.Counts{Targeted: 1, Failed: 1},
		Reasons: []result.Reason{{Code: "success-threshold", Message: "0% succeeded, 100% required"}}}
	r := &result.Run{RunID: "edge-1", RunURL: "https://github.com/acme/infra/actions/runs/9", Status: result.StatusFailed, Summary: "A gate failed.",
		ForcedWindow: true, SnapshotID: "snap-guid", StartedAt: at(2, 45), EndedAt: at(5, 0), Errors: []string{"CloudWatch: <b>denied</b>"},
		Policies: []result.Policy{
			{Name: "alpha", Status: result.StatusFailed, Targets: []result.Target{
				{AccountID: "111", Region: "us-east-1", Status: pass, Phases: []result.Phase{stagingA,
					{Name: "production", Status: pass, StartedAt: at(4, 0), EndedAt: at(4, 0), Counts: result.Counts{Targeted: 3, Succeeded: 3}}}},
				{AccountID: "222", Region: "eu-west-1", Status: result.StatusRefused, Reason: "outside the schedule"},
				{AccountID: "333", Region: "us-east-1", Status: result.StatusCancelled, Reason: "interrupted", Phases: []result.Phase{stagingC,
					{Name: "production", Status: result.StatusHalted}}},
			}},
			{Name: "beta", Status: result.StatusError, Reason: "lock parameter unreadable"},
			{Name: "gamma", Status: pass, Targets: []result.Target{{AccountID: "444", Region: "us-west-2", Status: result.StatusError, Reason: "AccessDenied", Phases: []result.Phase{
				{Name: "canary", Status: pass, Record: "s3://b/records/gamma/canary.json", Counts: result.Counts{Targeted: 2, Succeeded: 2},
					Verification: &result.Verification{Verdict: pass, Inspector: &result.Inspector{FixedBySeverity: map[string]int{"CRITICAL": 1}, Fixed: []result.Finding{{InstanceID: "i-9", CVE: "CVE-5", Severity: "CRITICAL"}}}},
					Promotion:    &result.Promotion{From: "staging", SourceRun: "8", SourceURL: "https://github.com/acme/infra/actions/runs/8", SourceTime: at(1, 0), Mechanism: "BaselineOverride", Note: "approval cutoff 2026-11-20"}},
				{Name: "production", Status: result.StatusDryRun, Counts: result.Counts{Targeted: 5, Pending: 5},
					Promotion: &result.Promotion{From: "canary", SourceRun: "7", SourceTime: at(0, 30), Mechanism: "InstallOverrideList", Exact: true, Patches: 12}},
				{Name: "final", Status: result.StatusWaiting,
					Promotion: &result.Promotion{From: "production", SourceRun: "6", SourceTime: at(0, 10)}},
			}}}},
		}}
	return r
}

// TestRunLevelsGolden renders edgeRun at every detail level: each wording,
// count and column a reader relies on, fixed in testdata/edges.*.md.
func TestRunLevelsGolden(t *testing.T) {
	r := edgeRun()
	v := gather(r)
	for _, d := range []struct {
		d    detail
		name string
	}{{full, "full"}, {collapsed, "collapsed"}, {counts, "counts"}} {
		goldenFile(t, "edges."+d.name+".md", v.render(d.d, ""))
	}
	if Run(r, Summary) != v.render(full, "") || !strings.HasPrefix(Run(r, Comment), RunMarker("")+"\n") || !strings.HasPrefix(RunComment(r, "alpha"), RunMarker("alpha")+"\n") {
		t.Error("Run and RunComment do not render the full level with their marker")
	}
	noURL := edgeRun()
	noURL.RunURL = ""
	if md := gather(noURL).render(counts, ""); !strings.Contains(md, "Per-instance details are left out to fit; see the run's JSON result.\n") || strings.Contains(md, "workflow run") {
		t.Errorf("counts level without a run URL:\n%s", md)
	}
}
