package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/backup"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/health"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/progress"
	"github.com/patchgate/patchgate/internal/result"
)

// Tests of the engine's bookkeeping that mutation testing showed
// unchecked: option defaults, how target, policy and run statuses are
// rolled up (a cancelled run is never reported milder than cancelled) and
// the words the run summary uses.

// An unset or negative option gets its documented default; a set one is
// kept (a poll interval of zero would spin on the API).
func TestOptionDefaults(t *testing.T) {
	c := clock.NewStep(simStart)
	for _, tc := range []struct {
		name string
		in   Options
		want Options
	}{
		{"zero", Options{}, Options{Parallel: 16, PollMin: 5 * time.Second, PollMax: 15 * time.Minute, CancelTimeout: 3 * time.Second, LockTTL: 12 * time.Hour}},
		{"negative", Options{Parallel: -1, PollMin: -1, PollMax: -1, CancelTimeout: -1, LockTTL: -1},
			Options{Parallel: 16, PollMin: 5 * time.Second, PollMax: 15 * time.Minute, CancelTimeout: 3 * time.Second, LockTTL: 12 * time.Hour}},
		{"set", Options{Parallel: 1, PollMin: time.Nanosecond, PollMax: 2 * time.Nanosecond, CancelTimeout: time.Nanosecond, LockTTL: time.Nanosecond, Clock: c},
			Options{Parallel: 1, PollMin: time.Nanosecond, PollMax: 2 * time.Nanosecond, CancelTimeout: time.Nanosecond, LockTTL: time.Nanosecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := New(tc.in).opt
			if got.Parallel != tc.want.Parallel || got.PollMin != tc.want.PollMin || got.PollMax != tc.want.PollMax ||
				got.CancelTimeout != tc.want.CancelTimeout || got.LockTTL != tc.want.LockTTL {
				t.Errorf("got Parallel %d PollMin %s PollMax %s CancelTimeout %s LockTTL %s, want %+v",
					got.Parallel, got.PollMin, got.PollMax, got.CancelTimeout, got.LockTTL, tc.want)
			}
			if got.Clock == nil || got.Logger == nil || got.Progress == nil {
				t.Errorf("Clock, Logger and Progress must never be nil: %+v", got)
			}
			if tc.in.Clock != nil && got.Clock != tc.in.Clock {
				t.Error("a given clock must be kept")
			}
		})
	}
}

// finish rolls targets up into policies and policies into the run: the
// worst status wins, the reason is the first target's with that status, and
// a cancelled run is at least cancelled whatever its parts say.
func TestFinishRollsUpStatuses(t *testing.T) {
	tg := func(acct string, s result.Status, reason string) result.Target {
		return result.Target{AccountID: acct, Region: "us-east-1", Status: s, Reason: reason}
	}
	for _, tc := range []struct {
		name        string
		cancelled   bool
		policies    []result.Policy
		wantRun     result.Status
		wantPolicy  []result.Status
		wantReason  []string
		wantSummary string
	}{
		{
			name:        "nothing to run",
			wantRun:     result.StatusSkipped,
			wantSummary: "no policies to run",
		},
		{
			name: "passed",
			policies: []result.Policy{{Name: "a", Targets: []result.Target{tg("1", result.StatusPassed, ""), tg("2", result.StatusPassed, "")}},
				{Name: "b", Targets: []result.Target{tg("1", result.StatusPassed, "")}}},
			wantRun: result.StatusPassed, wantPolicy: []result.Status{result.StatusPassed, result.StatusPassed}, wantReason: []string{"", ""},
			wantSummary: "Every gate passed (policies: 2 passed).",
		},
		{
			name: "the worst target and its reason, not a milder one's",
			policies: []result.Policy{{Name: "a", Targets: []result.Target{tg("1", result.StatusHalted, "held"), tg("2", result.StatusFailed, ""),
				tg("3", result.StatusFailed, "staging: 2 failed"), tg("4", result.StatusFailed, "second")}}},
			wantRun: result.StatusFailed, wantPolicy: []result.Status{result.StatusFailed}, wantReason: []string{"3/us-east-1: staging: 2 failed"},
			wantSummary: "A gate failed; later phases were not patched (policies: 1 failed).",
		},
		{
			name: "a policy without targets keeps its own status and reason",
			policies: []result.Policy{{Name: "a", Status: result.StatusRefused, Reason: "outside its window"},
				{Name: "b", Targets: []result.Target{tg("1", result.StatusPassed, "")}}},
			wantRun: result.StatusRefused, wantPolicy: []result.Status{result.StatusRefused, result.StatusPassed}, wantReason: []string{"outside its window", ""},
			wantSummary: "A policy was refused before anything was sent (policies: 1 passed, 1 refused).",
		},
		{
			name:      "cancelled outranks a milder status",
			cancelled: true,
			policies:  []result.Policy{{Name: "a", Targets: []result.Target{tg("1", result.StatusFailed, "x")}}},
			wantRun:   result.StatusCancelled, wantPolicy: []result.Status{result.StatusFailed}, wantReason: []string{"1/us-east-1: x"},
			wantSummary: "The run was cancelled; in-flight commands were cancelled (policies: 1 failed).",
		},
		{
			name:      "cancelled does not hide an error",
			cancelled: true,
			policies:  []result.Policy{{Name: "a", Targets: []result.Target{tg("1", result.StatusError, "boom")}}},
			wantRun:   result.StatusError, wantPolicy: []result.Status{result.StatusError}, wantReason: []string{"1/us-east-1: boom"},
			wantSummary: "patchgate could not complete the run (policies: 1 error).",
		},
		{
			name: "every status counted, in the summary's order",
			policies: []result.Policy{
				{Name: "1", Status: result.StatusSkipped}, {Name: "2", Status: result.StatusDryRun}, {Name: "3", Status: result.StatusHalted},
				{Name: "4", Status: result.StatusError}, {Name: "5", Status: result.StatusRefused}, {Name: "6", Status: result.StatusCancelled},
				{Name: "7", Status: result.StatusInconclusive}, {Name: "8", Status: result.StatusFailed}, {Name: "9", Status: result.StatusWaiting},
				{Name: "10", Status: result.StatusPassed}, {Name: "11", Status: result.StatusPassed},
			},
			wantRun: result.StatusError,
			wantSummary: "patchgate could not complete the run (policies: 2 passed, 1 waiting, 1 failed, 1 inconclusive, 1 cancelled, 1 refused, 1 error, " +
				"1 halted, 1 dry-run, 1 skipped).",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			e := New(Options{Clock: clock.NewStep(simStart)})
			e.run = &result.Run{Policies: tc.policies}
			e.finish(ctx)
			if e.run.Status != tc.wantRun || e.run.Summary != tc.wantSummary {
				t.Errorf("run %s %q, want %s %q", e.run.Status, e.run.Summary, tc.wantRun, tc.wantSummary)
			}
			for i, want := range tc.wantPolicy {
				if p := e.run.Policies[i]; p.Status != want || p.Reason != tc.wantReason[i] {
					t.Errorf("policy %s: %s %q, want %s %q", p.Name, p.Status, p.Reason, want, tc.wantReason[i])
				}
			}
			if !e.run.EndedAt.Equal(simStart) {
				t.Errorf("ended at %s, want the run's clock %s", e.run.EndedAt, simStart)
			}
		})
	}
}

// Every run status has its own sentence; one without (halted, running) is
// named as it is.
func TestSummaryWording(t *testing.T) {
	for s, want := range map[result.Status]string{
		result.StatusPassed:       "Every gate passed",
		result.StatusFailed:       "A gate failed; later phases were not patched",
		result.StatusInconclusive: "Evidence is missing for a gate; later phases were not patched",
		result.StatusCancelled:    "The run was cancelled; in-flight commands were cancelled",
		result.StatusRefused:      "A policy was refused before anything was sent",
		result.StatusError:        "patchgate could not complete the run",
		result.StatusDryRun:       "Dry run: nothing was sent",
		result.StatusSkipped:      "Nothing was due",
		result.StatusWaiting:      "A promoted phase is waiting for its source phase to become eligible; nothing is wrong",
		result.StatusHalted:       "halted",
	} {
		r := &result.Run{Status: s, Policies: []result.Policy{{Status: s}}}
		if got, w := summarize(r), want+" (policies: 1 "+string(s)+")."; got != w {
			t.Errorf("%s: %q, want %q", s, got, w)
		}
	}
}

// finishTarget gives a target the worst of its phases' statuses and that
// phase's first reason; phases never reached are cancelled; a cancelled
// run's target is at least cancelled; a target whose setup failed keeps its
// own status and reason.
func TestFinishTarget(t *testing.T) {
	p := &policy.Policy{}
	p.Spec.Phases = []policy.Phase{{Name: "staging"}, {Name: "canary"}, {Name: "production"}}
	ph := func(name string, s result.Status, reasons ...string) result.Phase {
		out := result.Phase{Name: name, Status: s}
		for _, r := range reasons {
			out.Reasons = append(out.Reasons, result.Reason{Code: "c", Message: r})
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		cancelled  bool
		status     result.Status
		reason     string
		scope      []int
		phases     []result.Phase
		wantStatus result.Status
		wantReason string
		wantPhases []result.Status
	}{
		{
			name: "every phase passed", status: result.StatusRunning, scope: []int{0, 1, 2},
			phases:     []result.Phase{ph("staging", result.StatusPassed), ph("canary", result.StatusPassed), ph("production", result.StatusPassed)},
			wantStatus: result.StatusPassed, wantPhases: []result.Status{result.StatusPassed, result.StatusPassed, result.StatusPassed},
		},
		{
			name: "the failed phase's first reason", status: result.StatusRunning, scope: []int{0, 1, 2},
			phases: []result.Phase{ph("staging", result.StatusPassed, "fine"), ph("canary", result.StatusFailed, "2 of 4 failed", "later"),
				ph("production", result.StatusHalted, "not sent")},
			wantStatus: result.StatusFailed, wantReason: "canary: 2 of 4 failed",
			wantPhases: []result.Status{result.StatusPassed, result.StatusFailed, result.StatusHalted},
		},
		{
			name: "a worst phase without reasons gives none; a later one with reasons does", status: result.StatusRunning, scope: []int{0, 1},
			phases:     []result.Phase{ph("staging", result.StatusInconclusive), ph("canary", result.StatusInconclusive, "no rescan")},
			wantStatus: result.StatusInconclusive, wantReason: "canary: no rescan",
			wantPhases: []result.Status{result.StatusInconclusive, result.StatusInconclusive},
		},
		{
			name: "phases never reached are cancelled", cancelled: true, status: result.StatusRunning, scope: []int{0, 2},
			phases:     []result.Phase{ph("staging", result.StatusPassed)},
			wantStatus: result.StatusCancelled, wantReason: "production: the run was cancelled before this phase",
			wantPhases: []result.Status{result.StatusPassed, result.StatusCancelled},
		},
		{
			name: "a cancelled run with every phase done is cancelled", cancelled: true, status: result.StatusRunning, scope: []int{0},
			phases:     []result.Phase{ph("staging", result.StatusPassed)},
			wantStatus: result.StatusCancelled, wantPhases: []result.Status{result.StatusPassed},
		},
		{
			name: "a cancelled run does not hide an error", cancelled: true, status: result.StatusRunning, scope: []int{0},
			phases:     []result.Phase{ph("staging", result.StatusError, "SSM refused")},
			wantStatus: result.StatusError, wantReason: "staging: SSM refused", wantPhases: []result.Status{result.StatusError},
		},
		{
			name: "halted before it started", status: result.StatusHalted, reason: "not sent: x", scope: []int{0},
			phases:     []result.Phase{ph("staging", result.StatusHalted, "not sent: another account-region")},
			wantStatus: result.StatusHalted, wantReason: "staging: not sent: another account-region", wantPhases: []result.Status{result.StatusHalted},
		},
		{
			name: "setup failed", status: result.StatusRefused, reason: "lock held", scope: []int{0, 1},
			wantStatus: result.StatusRefused, wantReason: "lock held",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			s := &slot{phases: tc.scope, res: &result.Target{Status: tc.status, Reason: tc.reason, Phases: tc.phases}}
			finishTarget(ctx, s, p)
			if s.res.Status != tc.wantStatus || s.res.Reason != tc.wantReason {
				t.Errorf("%s %q, want %s %q", s.res.Status, s.res.Reason, tc.wantStatus, tc.wantReason)
			}
			var got []result.Status
			for _, ph := range s.res.Phases {
				got = append(got, ph.Status)
			}
			if len(got) != len(tc.wantPhases) {
				t.Fatalf("phases %v, want %v", got, tc.wantPhases)
			}
			for i := range got {
				if got[i] != tc.wantPhases[i] {
					t.Errorf("phases %v, want %v", got, tc.wantPhases)
				}
			}
		})
	}
}

// calendarsAnswer is a Calendars with a fixed answer.
type calendarsAnswer struct {
	out *ssm.GetCalendarStateOutput
	err error
}

func (c calendarsAnswer) GetCalendarState(context.Context, *ssm.GetCalendarStateInput, ...func(*ssm.Options)) (*ssm.GetCalendarStateOutput, error) {
	return c.out, c.err
}

// setupTarget hands the run's clock to the backup and health checkers that
// have none (a test or a resumed run must not wait on the wall clock) and
// keeps one they have; a closed change calendar refuses the target, says
// until when, and is passed only with --force-window; a calendar that
// cannot be read is an error.
func TestSetupTarget(t *testing.T) {
	own := clock.NewStep(mutStart)
	for _, tc := range []struct {
		name       string
		cal        calendarsAnswer
		force      bool
		checkClock clock.Clock
		status     result.Status
		reason     string
	}{
		{name: "checkers get the run's clock", cal: calendarsAnswer{out: &ssm.GetCalendarStateOutput{State: ssmtypes.CalendarStateOpen}}, status: result.StatusRunning},
		{name: "a checker's own clock is kept", cal: calendarsAnswer{out: &ssm.GetCalendarStateOutput{State: ssmtypes.CalendarStateOpen}}, checkClock: own, status: result.StatusRunning},
		{name: "closed", cal: calendarsAnswer{out: &ssm.GetCalendarStateOutput{State: ssmtypes.CalendarStateClosed, NextTransitionTime: aws.String("2026-03-02T00:00:00Z")}},
			status: result.StatusRefused, reason: "change calendar prod-freeze is CLOSED until 2026-03-02T00:00:00Z; pass --force-window to patch anyway"},
		{name: "closed with no end", cal: calendarsAnswer{out: &ssm.GetCalendarStateOutput{State: ssmtypes.CalendarStateClosed}},
			status: result.StatusRefused, reason: "change calendar prod-freeze is CLOSED; pass --force-window to patch anyway"},
		{name: "closed, forced", cal: calendarsAnswer{out: &ssm.GetCalendarStateOutput{State: ssmtypes.CalendarStateClosed}}, force: true, status: result.StatusRunning},
		{name: "unreadable", cal: calendarsAnswer{err: errRejected}, status: result.StatusError,
			reason: "reading change calendars prod-freeze with ssm:GetCalendarState: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := clock.NewStep(simStart)
			cl := &Clients{AccountID: "111122223333", Calendars: tc.cal, Backups: &backup.Backups{Clock: tc.checkClock}, Health: &health.Reader{Clock: tc.checkClock}}
			e := New(Options{RunID: "7", DryRun: true, ForceWindow: tc.force, Clock: run,
				Connect: func(context.Context, string, string, string) (*Clients, error) { return cl, nil }})
			p := &policy.Policy{}
			p.Metadata.Name = "web"
			p.Spec.Schedule = &policy.Schedule{ChangeCalendars: []string{"prod-freeze"}}
			res := &result.Target{Status: result.StatusRunning}
			tg, release := e.setupTarget(context.Background(), p, &policy.Rollout{}, policy.Account{}, "us-east-1", res)
			if res.Status != tc.status || !strings.HasPrefix(res.Reason, tc.reason) || (tc.reason == "" && res.Reason != "") {
				t.Fatalf("%s %q, want %s %q", res.Status, res.Reason, tc.status, tc.reason)
			}
			if (tg != nil) != (tc.status == result.StatusRunning) || (tg != nil) != (release != nil) {
				t.Fatalf("target %v release %v", tg != nil, release != nil)
			}
			if res.AccountID != "111122223333" {
				t.Errorf("account %q, want the connection's", res.AccountID)
			}
			want := clock.Clock(run)
			if tc.checkClock != nil {
				want = tc.checkClock
			}
			if cl.Backups.Clock != want || cl.Health.Clock != want {
				t.Errorf("backup clock %v, health clock %v, want %v", cl.Backups.Clock, cl.Health.Clock, want)
			}
		})
	}
}

// A target that cannot connect says which account, or that it is the
// credentials' own.
func TestSetupTargetConnectError(t *testing.T) {
	for _, tc := range []struct{ account, want string }{
		{"", "connecting to account (of the credentials): no route"},
		{"444455556666", "connecting to account 444455556666: no route"},
	} {
		e := New(Options{Clock: clock.NewStep(simStart), Connect: func(context.Context, string, string, string) (*Clients, error) {
			return nil, errors.New("no route")
		}})
		res := &result.Target{Status: result.StatusRunning}
		if tg, _ := e.setupTarget(context.Background(), &policy.Policy{}, &policy.Rollout{}, policy.Account{ID: tc.account}, "us-east-1", res); tg != nil ||
			res.Status != result.StatusError || res.Reason != tc.want {
			t.Errorf("%s %q, want error %q", res.Status, res.Reason, tc.want)
		}
	}
}

// A resumed run installs the patch set of its first attempt: the
// SnapshotId of an earlier command of the run is adopted; a command
// without one (or with an empty one) changes nothing.
func TestAdoptSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string][]string
		want   string
	}{
		{"adopted", map[string][]string{"SnapshotId": {"snap-1"}}, "snap-1"},
		{"empty", map[string][]string{"SnapshotId": {""}}, "mine"},
		{"none", map[string][]string{"Operation": {"Install"}}, "mine"},
		{"two values is not a snapshot id", map[string][]string{"SnapshotId": {"a", "b"}}, "mine"},
	} {
		e := New(Options{Clock: clock.NewStep(simStart)})
		e.run, e.snapshotID = &result.Run{SnapshotID: "mine"}, "mine"
		e.adoptSnapshot(map[string]ssmtypes.Command{"c": {Parameters: tc.params}})
		if e.snapshot() != tc.want || e.run.SnapshotID != tc.want {
			t.Errorf("%s: snapshot %q, run %q, want %q", tc.name, e.snapshot(), e.run.SnapshotID, tc.want)
		}
	}
}

// A soak waits between phases only: never after the last phase, never in
// a dry run (nothing was sent), only after a phase that passed, and only
// when the phase has one.
func TestSoakOnlyBetweenPhasesThatPassed(t *testing.T) {
	twoPhases := strings.Replace(onePlace, "      WAVES\n", "      soak: 6h\n", 1)
	for _, tc := range []struct {
		name    string
		pol     string
		dryRun  bool
		bad     int
		status  result.Status
		soaked  float64 // staging's SoakSeconds
		longest time.Duration
	}{
		{"between phases", twoPhases, false, 0, result.StatusPassed, 6 * 3600, 7 * time.Hour},
		{"not after the last phase", strings.Replace(oneWavePolicy("100%", "0"), "      verify:", "      soak: 6h\n      verify:", 1), false, 0, result.StatusPassed, 0, time.Hour},
		{"not in a dry run", twoPhases, true, 0, result.StatusDryRun, 0, time.Hour},
		{"not after a failed phase", twoPhases, false, 5, result.StatusFailed, 0, time.Hour},
		{"none configured", strings.Replace(onePlace, "      WAVES\n", "", 1), false, 0, result.StatusPassed, 0, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stg := map[string]string{"Environment": "staging"}
				h := newHarness(t, groups(awssim.Group{Count: 20 - tc.bad, Name: "ok", Tags: stg}, awssim.Group{Count: tc.bad, Name: "zbad", Tags: stg, Behavior: "fail"},
					awssim.Group{Count: 2, Name: "prd", Tags: map[string]string{"Environment": "production"}}))
				h.opt.DryRun = tc.dryRun
				var logs strings.Builder // slog's handler serialises writes
				h.opt.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				r := h.run(context.Background(), mustPolicy(t, tc.pol))
				if got := strings.Contains(logs.String(), "soaking before the next phase"); got != (tc.soaked > 0) {
					t.Errorf("logged a soak: %v, want %v", got, tc.soaked > 0)
				}
				if r.Status != tc.status {
					t.Fatalf("%s: %s", r.Status, r.Summary)
				}
				if got := phaseOf(t, r, "111122223333", "us-east-1", "staging").SoakSeconds; got != tc.soaked {
					t.Errorf("staging soaked %v s, want %v", got, tc.soaked)
				}
				if d := r.EndedAt.Sub(r.StartedAt); d > tc.longest {
					t.Errorf("the run took %s of clock, want at most %s", d, tc.longest)
				}
			})
		})
	}
}

// endedPhases is a Progress that keeps each PhaseEnded in order.
type endedPhases struct {
	noProgress
	ended []string
}

func (e *endedPhases) PhaseEnded(k progress.Key, status string, _ int) {
	e.ended = append(e.ended, k.Account+"/"+k.Phase+"="+status)
}

// stopAt gives phase `from` and every later one, in each account-region
// whose scope has them, the status and reason; a phase after a waiting one
// says it waits for that phase; earlier phases are left alone.
func TestStopAt(t *testing.T) {
	p := &policy.Policy{}
	p.Metadata.Name = "web"
	p.Spec.Phases = []policy.Phase{{Name: "staging"}, {Name: "canary"}, {Name: "production"}}
	for _, tc := range []struct {
		status result.Status
		want   []string // phases of slot a, then b, as "name=status: message"
	}{
		{result.StatusWaiting, []string{"canary=waiting: waits for x", "production=waiting: waits for phase canary, which is waiting: waits for x",
			"production=waiting: waits for phase canary, which is waiting: waits for x"}},
		{result.StatusHalted, []string{"canary=halted: waits for x", "production=halted: waits for x", "production=halted: waits for x"}},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			rec := &endedPhases{}
			a := &slot{phases: []int{0, 1, 2}, region: "us-east-1", res: &result.Target{AccountID: "a"}}
			b := &slot{phases: []int{0, 2}, region: "us-east-1", res: &result.Target{AccountID: "b"}}
			published := 0
			pr := &policyRun{e: New(Options{Progress: rec}), p: p, publish: func(*slot) { published++ }}
			pr.stopAt([]*slot{a, b}, 1, tc.status, "code", "waits for x")
			var got []string
			for _, s := range []*slot{a, b} {
				for _, ph := range s.res.Phases {
					if len(ph.Reasons) != 1 || ph.Reasons[0].Code != "code" {
						t.Errorf("reasons %+v", ph.Reasons)
					}
					got = append(got, fmt.Sprintf("%s=%s: %s", ph.Name, ph.Status, ph.Reasons[0].Message))
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("phases\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if want := []string{"a/canary=" + string(tc.status), "a/production=" + string(tc.status), "b/production=" + string(tc.status)}; strings.Join(rec.ended, ",") != strings.Join(want, ",") {
				t.Errorf("PhaseEnded %v, want %v", rec.ended, want)
			}
			if published != 2 {
				t.Errorf("published %d slots, want 2", published)
			}
		})
	}
}

// A policy outside its window or inside a freeze sends nothing: refused
// when it was asked for by name (exit non-zero, with how to override),
// skipped on a scheduled sweep, patched with --force-window (and the run
// says it was forced).
func TestWindowClosed(t *testing.T) {
	freeze := "  schedule: {cron: \"0 3 * * *\", duration: 4h, timezone: UTC, freezes: [{from: \"2026-11-20\", to: \"2026-11-30\", reason: holidays}]}\n"
	outside := "  schedule: {cron: \"0 12 * * 6\", duration: 1h, timezone: UTC}\n"
	for _, tc := range []struct {
		name            string
		schedule        string
		explicit, force bool
		status          result.Status
		reason          string
	}{
		{"freeze, asked for", freeze, true, false, result.StatusRefused,
			"inside the freeze 2026-11-20..2026-11-30 (holidays); pass --force-window to patch anyway (the report records it)"},
		{"freeze, sweep", freeze, false, false, result.StatusSkipped, "inside the freeze 2026-11-20..2026-11-30 (holidays)"},
		{"outside, sweep", outside, false, false, result.StatusSkipped,
			"outside the schedule \"0 12 * * 6\" (UTC); next window opens 2026-11-28T12:00:00Z"},
		{"freeze, forced", freeze, true, true, result.StatusPassed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, groups(awssim.Group{Count: 2, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
				h.opt.Explicit, h.opt.ForceWindow = tc.explicit, tc.force
				pol := strings.Replace(oneWavePolicy("100%", "0"), "  regions: [us-east-1]\n", "  regions: [us-east-1]\n"+tc.schedule, 1)
				r := h.run(context.Background(), mustPolicy(t, pol))
				p := r.Policies[0]
				if r.Status != tc.status || p.Status != tc.status || p.Reason != tc.reason {
					t.Fatalf("run %s, policy %s %q; want %s %q", r.Status, p.Status, p.Reason, tc.status, tc.reason)
				}
				if n := len(h.sim.Sends()); (n > 0) != tc.force {
					t.Errorf("%d commands sent", n)
				}
				if r.ForcedWindow != tc.force {
					t.Errorf("the run says forced %v, want %v", r.ForcedWindow, tc.force)
				}
			})
		})
	}
}

// The run-end notification lists each account-region's status, with its
// reason when it has one.
func TestRunEndNotificationListsTargets(t *testing.T) {
	for _, tc := range []struct {
		name     string
		behavior string
		want     string
	}{
		{"passed", "", "patchgate run 42 of web: passed\n111122223333/us-east-1: passed"},
		{"failed", "fail", "patchgate run 42 of web: failed\n111122223333/us-east-1: failed (staging: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, groups(awssim.Group{Count: 2, Name: "stg", Tags: map[string]string{"Environment": "staging"}, Behavior: tc.behavior}))
				src := strings.Replace(oneWavePolicy("100%", "0"), "  regions: [us-east-1]\n", "  regions: [us-east-1]\n  reporting: {sns: \"arn:aws:sns:us-east-1:111122223333:patching\"}\n", 1)
				h.run(context.Background(), mustPolicy(t, src))
				var end string
				for _, m := range h.sim.Published() {
					if strings.Contains(m.Attributes["patchgate.event"], "run-end") {
						end = m.Message
					}
				}
				if !strings.Contains(end, tc.want) || (tc.behavior == "" && strings.Contains(end, "passed (")) {
					t.Errorf("run-end message %q, want %q", end, tc.want)
				}
			})
		})
	}
}

// A later phase is never patched when no earlier phase patched anything:
// nothing was proven. Staging with no Online instance (skipped), or with
// every instance offline and skipped, halts production unsent; staging that
// patched some instance proves it.
func TestUnprovenLaterPhaseIsHalted(t *testing.T) {
	for _, tc := range []struct {
		name       string
		stg        []awssim.Group
		production result.Status
		sends      int
	}{
		{"staging has no instance", nil, result.StatusHalted, 0},
		{"staging all offline, skipped", []awssim.Group{{Count: 2, Name: "stg", Tags: map[string]string{"Environment": "staging"}, Ping: "ConnectionLost"}}, result.StatusHalted, 0},
		{"staging patched", []awssim.Group{{Count: 2, Name: "stg", Tags: map[string]string{"Environment": "staging"}}}, result.StatusPassed, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gs := append(tc.stg, awssim.Group{Count: 3, Name: "prd", Tags: map[string]string{"Environment": "production"}})
				h := newHarness(t, groups(gs...))
				r := h.run(context.Background(), mustPolicy(t, strings.Replace(onePlace, "      WAVES\n", "      offline: skip\n", 1)))
				prd := phaseOf(t, r, "111122223333", "us-east-1", "production")
				if prd.Status != tc.production || len(h.sim.Sends()) != tc.sends {
					t.Fatalf("production %s %+v, %d commands; want %s, %d", prd.Status, prd.Reasons, len(h.sim.Sends()), tc.production, tc.sends)
				}
				if tc.production == result.StatusHalted && (len(prd.Reasons) == 0 || prd.Reasons[0].Code != "unproven") {
					t.Errorf("reasons %+v, want unproven", prd.Reasons)
				}
			})
		})
	}
}

// An alarm during staging's soak fails staging and halts the phases after
// it, each once: the target holds exactly staging (failed, its reason the
// alarm) then production (halted, naming the soak).
func TestSoakAlarmHaltsOnlyLaterPhases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, safeScenario(2*time.Hour, false))
		r := h.run(context.Background(), mustPolicy(t, safePlace()))
		var got []string
		for _, tg := range r.Policies[0].Targets {
			for _, ph := range tg.Phases {
				got = append(got, ph.Name+"="+string(ph.Status)+"/"+ph.Reasons[0].Code)
			}
		}
		if want := "staging=failed/health-alarm,production=halted/halted"; strings.Join(got, ",") != want {
			t.Fatalf("phases %v, want %s", got, want)
		}
		prd := phaseOf(t, r, "111122223333", "us-east-1", "production")
		if !strings.HasPrefix(prd.Reasons[0].Message, "not sent: phase staging failed during its soak in 111122223333/us-east-1: ") {
			t.Errorf("production's reason %q", prd.Reasons[0].Message)
		}
	})
}

// cancellingInventory cancels the run when the phase's instances are
// listed, and fails the listing as the SDK would.
type cancellingInventory struct {
	Inventory
	cancel context.CancelFunc
}

func (c cancellingInventory) DescribeInstanceInformation(ctx context.Context, _ *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	c.cancel()
	return nil, ctx.Err()
}

// A phase whose inventory read fails because the run was cancelled is
// cancelled, not an error of patchgate's; one that fails on its own is an
// error naming the read.
func TestInventoryFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool
		status result.Status
		code   string
	}{{"cancelled", true, result.StatusCancelled, "cancelled"}, {"refused", false, result.StatusError, "inventory"}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, groups(awssim.Group{Count: 2, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				connect := h.opt.Connect
				h.opt.Connect = func(ctx context.Context, account, role, region string) (*Clients, error) {
					c, err := connect(ctx, account, role, region)
					if err == nil {
						if tc.cancel {
							c.Inventory = cancellingInventory{c.Inventory, cancel}
						} else {
							c.Inventory = refusedInventory{}
						}
					}
					return c, err
				}
				r := h.run(ctx, mustPolicy(t, oneWavePolicy("100%", "0")))
				stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
				if stg.Status != tc.status || len(stg.Reasons) == 0 || !strings.HasPrefix(stg.Reasons[0].Code, tc.code) {
					t.Fatalf("staging %s %+v, want %s %s", stg.Status, stg.Reasons, tc.status, tc.code)
				}
				if len(h.sim.Sends()) != 0 {
					t.Errorf("%d commands sent", len(h.sim.Sends()))
				}
			})
		})
	}
}

// refusedInventory answers every listing with a rejection.
type refusedInventory struct{}

func (refusedInventory) DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	return nil, errRejected
}

// A phase whose instances are all offline, and counted (offline: fail),
// fails before anything is sent, even after a phase that proved nothing:
// it is neither skipped nor halted as unproven, and it holds no empty
// preflight wave.
func TestPhaseOfOfflineInstancesFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, groups(awssim.Group{Count: 3, Name: "prd", Tags: map[string]string{"Environment": "production"}, Ping: "ConnectionLost"}))
		r := h.run(context.Background(), mustPolicy(t, strings.Replace(onePlace, "      WAVES\n", "", 1)))
		prd := phaseOf(t, r, "111122223333", "us-east-1", "production")
		if prd.Status != result.StatusFailed || len(h.sim.Sends()) != 0 || prd.Counts.Offline != 3 {
			t.Fatalf("production %s %+v %+v, %d sends", prd.Status, prd.Reasons, prd.Counts, len(h.sim.Sends()))
		}
		for _, w := range prd.Waves {
			if len(w.Instances) == 0 {
				t.Errorf("an empty wave %q", w.Share)
			}
		}
	})
}

// The progress line's instance count is a phase's Online and offline
// instances together.
func TestPhaseStartedCountsOffline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stg := map[string]string{"Environment": "staging"}
		h := newHarness(t, groups(awssim.Group{Count: 4, Name: "stg", Tags: stg}, awssim.Group{Count: 2, Name: "lost", Tags: stg, Ping: "ConnectionLost"}))
		rec := newRecorder()
		h.opt.Progress = rec
		h.run(context.Background(), mustPolicy(t, strings.Replace(oneWavePolicy("100%", "0"), "      verify:", "      offline: skip\n      verify:", 1)))
		if n := rec.started[progress.Key{Policy: "web", Phase: "staging", Account: "111122223333", Region: "us-east-1"}]; n != 6 {
			t.Errorf("staging started with %d instances, want 4 Online and 2 offline", n)
		}
	})
}

// Each wave's backups are tagged with that wave's number.
func TestBackupsTaggedWithTheirWave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, groups(awssim.Group{Count: 4, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
		pol := strings.Replace(oneWavePolicy("100%", "0"), "install: {executionTimeout: 24h}",
			"install: {executionTimeout: 24h, backup: {mode: snapshot, retainDays: 14}}", 1)
		pol = strings.Replace(pol, "      verify:", "      waves: [\"50%\", \"100%\"]\n      verify:", 1)
		r := h.run(context.Background(), mustPolicy(t, pol))
		if r.Status != result.StatusPassed {
			t.Fatalf("%s: %s", r.Status, r.Summary)
		}
		byWave := map[string]int{}
		for _, s := range h.sim.Snapshots() {
			byWave[s.Tags[backup.TagWave]]++
		}
		if byWave["1"] == 0 || byWave["2"] == 0 || len(byWave) != 2 {
			t.Errorf("snapshots by wave tag %v, want waves 1 and 2", byWave)
		}
	})
}

// Across a phase's waves the progress tallies keep the earlier waves'
// failures (failed, timed out, inconclusive alike), and a wave that does
// not pass halts the next ones, numbered in order.
func TestLaterWavesTalliesAndHalt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stg := map[string]string{"Environment": "staging"}
		// Sorted ids follow the groups: the first wave (50%) holds the
		// failed and the undelivered instance.
		h := newHarness(t, groups(awssim.Group{Count: 1, Name: "a-bad", Tags: stg, Behavior: "fail"},
			awssim.Group{Count: 1, Name: "b-gone", Tags: stg, Behavior: "offline"}, awssim.Group{Count: 6, Name: "c-ok", Tags: stg}))
		rec := newRecorder()
		h.opt.Progress = rec
		pol := strings.Replace(oneWavePolicy("100%", "10"), "      verify:", "      successThreshold: \"50%\"\n      waves: [\"50%\", \"100%\"]\n      verify:", 1)
		r := h.run(context.Background(), mustPolicy(t, pol))
		k := progress.Key{Policy: "web", Phase: "staging", Account: "111122223333", Region: "us-east-1"}
		if got := rec.polled[k]; got != [3]int{6, 2, 0} {
			t.Errorf("last tallies %v (run %s), want 6 succeeded, 2 failed across both waves", got, r.Status)
		}

		// The same fleet at a 100% threshold: wave 1 fails, wave 2 is halted.
		h2 := newHarness(t, groups(awssim.Group{Count: 1, Name: "a-bad", Tags: stg, Behavior: "fail"}, awssim.Group{Count: 5, Name: "c-ok", Tags: stg}))
		pol2 := strings.Replace(oneWavePolicy("100%", "10"), "      verify:", "      waves: [\"50%\", \"100%\"]\n      verify:", 1)
		ph := phaseOf(t, h2.run(context.Background(), mustPolicy(t, pol2)), "111122223333", "us-east-1", "staging")
		if len(ph.Waves) != 2 || ph.Waves[1].Index != 2 || ph.Waves[1].Status != result.StatusHalted {
			t.Fatalf("waves %+v", ph.Waves)
		}
	})
}

// Waves are cut by their cumulative shares (policy.WaveEnds), an empty one
// dropped: two instances over 10%, 50%, 100% are two waves, the 100% wave
// adding none. The verification a phase carries states the
// gate's verdict.
func TestWaveCutsAndVerdict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, scenario(fleet{staging: 2, production: 2}))
		r := h.run(context.Background(), mustPolicy(t, testPolicy))
		if r.Status != result.StatusPassed {
			t.Fatalf("%s: %s", r.Status, r.Summary)
		}
		prd := phaseOf(t, r, "111122223333", "us-east-1", "production")
		var shares []string
		for _, w := range prd.Waves {
			shares = append(shares, w.Share)
			if len(w.Instances) == 0 {
				t.Errorf("empty wave %s", w.Share)
			}
		}
		if strings.Join(shares, ",") != "10%,50%" {
			t.Errorf("waves %v, want 10%% and 50%%", shares)
		}
		verified := 0
		for _, tg := range r.Policies[0].Targets {
			for _, ph := range tg.Phases {
				if ph.Verification != nil {
					verified++
					if ph.Verification.Verdict != ph.Status {
						t.Errorf("%s/%s %s: verification says %q", tg.AccountID, ph.Name, ph.Status, ph.Verification.Verdict)
					}
				}
			}
		}
		if verified == 0 {
			t.Fatal("no phase was verified")
		}
	})
}

// fixedVerifier answers every phase with a verification of its own
// verdict.
type fixedVerifier struct{ verdict result.Status }

func (fixedVerifier) Before(context.Context, Scope, []string) (any, error) { return nil, nil }
func (f fixedVerifier) After(context.Context, Scope, any, []result.Instance) (*result.Verification, error) {
	return &result.Verification{Verdict: f.verdict}, nil
}

// The verification a phase carries states the gate's verdict, whatever
// the verifier wrote there: the JSON never disagrees with itself.
func TestVerificationCarriesTheGatesVerdict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, groups(awssim.Group{Count: 2, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
		connect := h.opt.Connect
		h.opt.Connect = func(ctx context.Context, account, role, region string) (*Clients, error) {
			c, err := connect(ctx, account, role, region)
			if err == nil {
				c.Verifier = fixedVerifier{verdict: "made-up"}
			}
			return c, err
		}
		r := h.run(context.Background(), mustPolicy(t, strings.Replace(oneWavePolicy("100%", "0"), "verify: {compliance: false}", "verify: {compliance: true}", 1)))
		stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
		if stg.Verification == nil || stg.Verification.Verdict != stg.Status || stg.Status == "" {
			t.Fatalf("staging %s, verification %+v", stg.Status, stg.Verification)
		}
	})
}

// A promoted phase reports how many patches of its own operating system
// the source record replays.
func TestPromotionCountsTheReplayedPatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ringsScenario())
		h.opt.ForceWindow = true
		p := ringsPolicy(t, nil)
		h.opt.RunID = "1"
		if r1 := h.run(context.Background(), p); r1.Status != result.StatusWaiting {
			t.Fatalf("run 1: %s (%s)", r1.Status, r1.Summary)
		}
		time.Sleep(73 * time.Hour)
		h.opt.RunID = "2"
		r2 := h.run(context.Background(), p)
		prd := targetPhase(t, r2, prodA, "production")
		if prd.Promotion == nil || prd.Promotion.Patches == 0 {
			t.Fatalf("production %s, promotion %+v: want the source's patch count", prd.Status, prd.Promotion)
		}
	})
}

// A promoted phase that would replay its source's patch set with
// InstallOverrideList is refused, nothing sent, when install.hooks is set:
// AWS-RunPatchBaselineWithHooks takes no override list.
func TestReplayWithHooksIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := ringsScenario()
		sc.Documents = []string{"Acme-Drain"}
		h := newHarness(t, sc)
		h.opt.ForceWindow = true
		p := ringsPolicy(t, map[string]string{"    executionTimeout: 4h\n": "    executionTimeout: 4h\n    hooks: {preInstall: Acme-Drain}\n"})
		h.opt.RunID = "1"
		h.run(context.Background(), p)
		time.Sleep(73 * time.Hour)
		h.opt.RunID = "2"
		r2 := h.run(context.Background(), p)
		prd := targetPhase(t, r2, prodA, "production")
		if prd.Status != result.StatusError || len(prd.Reasons) == 0 || !strings.Contains(prd.Reasons[0].Message, "does not take: drop the hooks") {
			t.Fatalf("production %s %+v", prd.Status, prd.Reasons)
		}
		if n := len(sendsTo(h.sim, prodA)); n != 0 {
			t.Errorf("%d commands sent to production", n)
		}
	})
}

// A failed phase's promotion record says it failed, and why: the first
// failing account-region's reason.
func TestFailedRecordSaysWhy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := ringsScenario()
		sc.Groups[0].Behavior = "fail"
		h := newHarness(t, sc)
		h.opt.ForceWindow = true
		r := h.run(context.Background(), ringsPolicy(t, nil))
		stg := targetPhase(t, r, stagingAcct, "staging")
		data, ok := h.sim.Object("acme-patchgate-records", stg.Record)
		if !ok {
			t.Fatalf("no record at %q", stg.Record)
		}
		var rec struct{ Verdict, Reason string }
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Verdict != "failed" || !strings.HasPrefix(rec.Reason, stagingAcct+"/us-east-1: ") || rec.Reason != stagingAcct+"/us-east-1: "+stg.Reasons[0].Message {
			t.Fatalf("record %+v, staging reasons %+v", rec, stg.Reasons)
		}
	})
}
