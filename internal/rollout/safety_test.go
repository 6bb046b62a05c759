package rollout

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

// safePlace is onePlace with a backup before each wave, a health gate on
// staging and a six-hour soak.
func safePlace() string {
	src := strings.Replace(onePlace, "install: {executionTimeout: 24h}", "install: {executionTimeout: 24h, backup: {mode: snapshot, retainDays: 14}}", 1)
	return strings.Replace(src, "      WAVES\n      verify: {compliance: false}\n", "      soak: 6h\n      verify: {compliance: false, health: {alarms: [web-5xx]}}\n", 1)
}

func safeScenario(alarmAfter time.Duration, snapshotFails bool) *awssim.Scenario {
	sc := groups(awssim.Group{Count: 4, Name: "stg", Tags: map[string]string{"Environment": "staging"}},
		awssim.Group{Count: 1, Name: "nobackup", Tags: map[string]string{"Environment": "staging"}, SnapshotFails: snapshotFails},
		awssim.Group{Count: 5, Name: "prd", Tags: map[string]string{"Environment": "production"}})
	alarm := awssim.AlarmSpec{Account: "111122223333", Region: "us-east-1", Name: "web-5xx"}
	if alarmAfter > 0 {
		alarm.Changes = []awssim.AlarmChange{{After: alarmAfter, State: "ALARM", Reason: "Threshold Crossed: 5xx rate 7% > 1%"}}
	}
	sc.Alarms = []awssim.AlarmSpec{alarm}
	return sc
}

// TestAlarmDuringSoakStopsProduction: an alarm entering ALARM during
// staging's soak fails staging with the alarm's name and reason, and
// production is sent nowhere.
func TestAlarmDuringSoakStopsProduction(t *testing.T) {
	synctest.Test(t, testAlarmDuringSoakStopsProduction)
}

func testAlarmDuringSoakStopsProduction(t *testing.T) {
	h := newHarness(t, safeScenario(2*time.Hour, false))
	r := h.run(context.Background(), mustPolicy(t, safePlace()))
	stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if stg.Status != result.StatusFailed || stg.Reasons[0].Code != "health-alarm" || !strings.Contains(stg.Reasons[0].Message, "web-5xx") ||
		!strings.Contains(stg.Reasons[0].Message, "5xx rate") {
		t.Fatalf("staging %s %+v", stg.Status, stg.Reasons)
	}
	if n := sendsFor(h.sim, "production"); n != 0 {
		t.Fatalf("%d production sends after an alarm in staging's soak", n)
	}
	if prd := phaseOf(t, r, "111122223333", "us-east-1", "production"); prd.Status != result.StatusHalted {
		t.Fatalf("production %s", prd.Status)
	}
	// Without the alarm the same run passes: the gate is what stopped it.
	h2 := newHarness(t, safeScenario(0, false))
	if r2 := h2.run(context.Background(), mustPolicy(t, safePlace())); r2.Status != result.StatusPassed || sendsFor(h2.sim, "production") == 0 {
		t.Fatalf("without the alarm: %s (%s)", r2.Status, r2.Summary)
	}
}

// TestAlarmAlreadyFiringRefusesThePhase: an alarm in ALARM before the phase
// refuses it before anything is sent.
func TestAlarmAlreadyFiringRefusesThePhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := safeScenario(0, false)
		sc.Alarms[0].State, sc.Alarms[0].Reason = "ALARM", "already breaching"
		h := newHarness(t, sc)
		r := h.run(context.Background(), mustPolicy(t, safePlace()))
		stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
		if stg.Status != result.StatusFailed || stg.Reasons[0].Code != "health-alarm" || len(h.sim.Sends()) != 0 {
			t.Fatalf("staging %s %+v, %d sends", stg.Status, stg.Reasons, len(h.sim.Sends()))
		}
	})
}

// TestSnapshotFailureKeepsTheInstanceUnpatched: an instance whose backup
// failed is never sent a command, is held back with the reason and
// counts against the threshold; the others are backed up and patched.
func TestSnapshotFailureKeepsTheInstanceUnpatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, safeScenario(0, true))
		// waitFor: completed, so a snapshot that ends in error is known
		// before the wave is sent (pending would only report it).
		r := h.run(context.Background(), mustPolicy(t, strings.Replace(safePlace(), "retainDays: 14}", "retainDays: 14, waitFor: completed}", 1)))
		stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
		var held string
		for _, w := range stg.Waves {
			for _, in := range w.Instances {
				if strings.HasPrefix(in.Error, "not patched: its backup failed") {
					held = in.ID
				}
			}
		}
		if held == "" {
			t.Fatalf("no instance held back: %+v", stg.Waves)
		}
		for _, s := range h.sim.Sends() {
			for _, id := range s.InstanceIDs {
				if id == held {
					t.Fatalf("%s was sent a command though its backup failed", id)
				}
			}
		}
		// 4 of 5 is 80%, below staging's 90%: the held instance counts.
		if stg.Status != result.StatusFailed || stg.Counts.Succeeded != 4 || stg.Reasons[0].Code != "success-threshold" {
			t.Fatalf("staging %s %+v %+v", stg.Status, stg.Counts, stg.Reasons)
		}
		snaps := 0
		for _, w := range stg.Waves {
			for _, b := range w.Backups {
				snaps += len(b.Snapshots)
			}
		}
		if snaps == 0 {
			t.Fatal("the snapshots taken are not in the result")
		}
	})
}

// TestSecurityHubExportAfterThePhase: with reporting.securityHub, each
// failed instance is a Security Hub finding after the phase; a rerun of
// the same run updates them instead of adding more.
func TestSecurityHubExportAfterThePhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := groups(awssim.Group{Count: 18, Name: "stg", Tags: map[string]string{"Environment": "staging"}},
			awssim.Group{Count: 2, Name: "bad", Tags: map[string]string{"Environment": "staging"}, Behavior: "fail"},
			awssim.Group{Count: 3, Name: "prd", Tags: map[string]string{"Environment": "production"}})
		h := newHarness(t, sc)
		src := strings.Replace(onePlace, "  regions: [us-east-1]\n", "  regions: [us-east-1]\n  reporting: {securityHub: true}\n", 1)
		src = strings.Replace(src, "WAVES", "", 1)
		for run := 1; run <= 2; run++ {
			h.run(context.Background(), mustPolicy(t, src))
			got, _ := h.sim.SecurityHubFindings()
			if len(got) != 2 {
				t.Fatalf("run %d: %d findings, want one per failed instance (2)", run, len(got))
			}
		}
	})
}

// TestAFailingPreInstallHookFailsTheInstance: with install.hooks the
// command runs AWS-RunPatchBaselineWithHooks with the hook documents; an
// instance whose pre-install hook fails is failed with the hook named.
func TestAFailingPreInstallHookFailsTheInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := groups(awssim.Group{Count: 9, Name: "stg", Tags: map[string]string{"Environment": "staging"}},
			awssim.Group{Count: 1, Name: "busy", Tags: map[string]string{"Environment": "staging"}, PreInstallHookFails: true},
			awssim.Group{Count: 2, Name: "prd", Tags: map[string]string{"Environment": "production"}})
		sc.Documents = []string{"Acme-Drain"}
		h := newHarness(t, sc)
		src := strings.Replace(onePlace, "install: {executionTimeout: 24h}", "install: {executionTimeout: 24h, hooks: {preInstall: Acme-Drain}}", 1)
		r := h.run(context.Background(), mustPolicy(t, strings.Replace(src, "WAVES", "", 1)))
		for _, s := range h.sim.Sends() {
			if s.Parameters["PreInstallHookDocName"][0] != "Acme-Drain" || s.Parameters["PostInstallHookDocName"][0] != "AWS-Noop" {
				t.Fatalf("hook parameters %v", s.Parameters)
			}
		}
		stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
		found := false
		for _, w := range stg.Waves {
			for _, in := range w.Instances {
				if in.Outcome == result.OutcomeFailed {
					found = strings.Contains(in.Error, "Acme-Drain") && strings.Contains(strings.ToLower(in.Error), "pre-install")
					if !found {
						t.Fatalf("failed instance's reason %q does not name the hook", in.Error)
					}
				}
			}
		}
		if !found || stg.Counts.Failed != 1 {
			t.Fatalf("staging %s %+v", stg.Status, stg.Counts)
		}
	})
}

// TestNotificationsOncePerRun: reporting.sns sends run start, the failed
// phase and run end; running the same run again (a resumed job) sends
// none of them twice.
func TestNotificationsOncePerRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := groups(awssim.Group{Count: 3, Name: "stg", Tags: map[string]string{"Environment": "staging"}, Behavior: "fail"},
			awssim.Group{Count: 2, Name: "prd", Tags: map[string]string{"Environment": "production"}})
		h := newHarness(t, sc)
		src := strings.Replace(onePlace, "  regions: [us-east-1]\n", "  regions: [us-east-1]\n  reporting: {sns: \"arn:aws:sns:us-east-1:111122223333:patching\"}\n", 1)
		p := mustPolicy(t, strings.Replace(src, "WAVES", "", 1))
		h.run(context.Background(), p)
		kinds := func() []string {
			var out []string
			for _, m := range h.sim.Published() {
				out = append(out, m.Attributes["patchgate.event"])
			}
			return out
		}
		first := kinds()
		if len(first) != 3 {
			t.Fatalf("messages %v (%+v), want run start, phase failure and run end", first, h.sim.Published())
		}
		h.run(context.Background(), p)
		if got := kinds(); len(got) != 3 {
			t.Fatalf("a rerun of the same run sent again: %v", got)
		}
	})
}

// TestRestoreCommandsForAFailedInstance: an instance that failed to patch
// after its backup carries the commands that restore it, and the run
// summary lists them.
func TestRestoreCommandsForAFailedInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := safeScenario(0, false)
		sc.Groups[1].Behavior = "fail" // the "nobackup" group, backed up fine here
		h := newHarness(t, sc)
		r := h.run(context.Background(), mustPolicy(t, safePlace()))
		var restore []string
		for _, w := range phaseOf(t, r, "111122223333", "us-east-1", "staging").Waves {
			for _, b := range w.Backups {
				restore = append(restore, b.Restore...)
			}
		}
		if len(restore) < 2 || !strings.HasPrefix(restore[0], "aws ec2 create-volume --region us-east-1 ") {
			t.Fatalf("restore %q", restore)
		}
		if out := report.Run(r, report.Summary); !strings.Contains(out, "create-replace-root-volume-task") {
			t.Fatalf("the summary does not list the restore commands")
		}
	})
}

// TestAlarmDuringAWaveStopsIt: with during: waves, an alarm entering ALARM
// while a wave's commands run cancels them, fails the phase with the
// alarm, and sends nothing later.
func TestAlarmDuringAWaveStopsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := safeScenario(20*time.Minute, false)
		sc.PatchDuration = 2 * time.Hour
		h := newHarness(t, sc)
		src := strings.Replace(safePlace(), "health: {alarms: [web-5xx]}", "health: {alarms: [web-5xx], during: waves}", 1)
		r := h.run(context.Background(), mustPolicy(t, src))
		stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
		if stg.Status != result.StatusFailed || stg.Reasons[0].Code != "health-alarm" || !strings.Contains(stg.Reasons[0].Message, "web-5xx") {
			t.Fatalf("staging %s %+v", stg.Status, stg.Reasons)
		}
		if h.sim.Calls()["ssm:CancelCommand"] == 0 || sendsFor(h.sim, "production") != 0 {
			t.Fatalf("cancels %d, production sends %d", h.sim.Calls()["ssm:CancelCommand"], sendsFor(h.sim, "production"))
		}
		if stg.EndedAt.Sub(stg.StartedAt) > time.Hour {
			t.Fatalf("the wave ran to its end (%s) instead of stopping at the alarm", stg.EndedAt.Sub(stg.StartedAt))
		}
	})
}
