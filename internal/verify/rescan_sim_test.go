package verify

// The rescan wait against the simulator's realistic fleet model, over the
// real SDK clients on synctest's fake clock: each instance's inventory
// passes fall 30 minutes apart at a phase of its own, with jitter, so a
// patch is rescanned 0-36 minutes after it ends. What a user waits for is
// the gate's end after the last rescan (the next phase starts then), and
// what it pays is ListCoverage calls.

import (
	"context"
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/memnet"
	"github.com/patchgate/patchgate/internal/result"
)

// rescanRun is one phase's wait measured: when its last rescan happened,
// when the gate ended, and the ListCoverage calls it made.
type rescanRun struct {
	res        *result.Verification
	began      time.Time // the wait, a second after the last patch
	lastRescan time.Time
	ended      time.Time
	calls      int
}

func (r rescanRun) lag() time.Duration { return r.ended.Sub(r.lastRescan) }

// waitOnRealisticFleet patches every instance of groups at once (Install
// through SendCommand, 50 ids a call), waits on the fake clock until the
// last patch has ended, as the phase gate does, then runs the gate's
// verification with settings s over the real SDK clients. tweak changes
// the realistic model first. Run inside synctest.Test.
func waitOnRealisticFleet(t *testing.T, tweak func(*awssim.Realism), s Settings, groups ...awssim.Group) rescanRun {
	t.Helper()
	synctest.Wait()
	time.Sleep(time.Until(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC))) // the fake clock moves on to a date of its own
	r := awssim.Realistic(7)
	// Every install succeeds and leaves nothing missing: only the wait is
	// under test. No rate limits: the calls are counted, not retried.
	r.FailureShare, r.TimeoutShare, r.UndeliverableShare, r.FindingsMean, r.OtherCommandsPerHour = -1, -1, -1, -1, -1
	r.RateLimits = map[string]float64{"ssm:SendCommand": -1, "ssm:DescribeInstancePatchStates": -1, "inspector2:ListCoverage": -1, "inspector2:ListFindings": -1}
	if tweak != nil {
		tweak(r)
	}
	for i := range groups {
		groups[i].Region = "us-east-1"
		if groups[i].Name == "" {
			groups[i].Name = fmt.Sprintf("g%d", i)
		}
	}
	sim := awssim.New(&awssim.Scenario{Accounts: []string{"111122223333"}, Realism: r, Groups: groups}, clock.Real{})
	srv := memnet.Serve(sim)
	t.Cleanup(srv.Close)
	cfg := awssim.Config(srv.URL, "111122223333", "us-east-1")
	ctx := context.Background()
	fleet := sim.Instances("111122223333", "us-east-1")
	var ids []string
	for _, in := range fleet {
		ids = append(ids, in.ID)
	}
	client := ssm.NewFromConfig(cfg)
	runStarted := time.Now()
	var lastPatch time.Time
	for start := 0; start < len(ids); start += 50 {
		out, err := client.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPatchBaseline"), InstanceIds: ids[start:min(start+50, len(ids))],
			Parameters: map[string][]string{"Operation": {"Install"}, "RebootOption": {"RebootIfNeeded"}}, MaxConcurrency: aws.String("100%"), MaxErrors: aws.String("100%")})
		if err != nil {
			t.Fatal(err)
		}
		_, end, ok := sim.CommandSpan(aws.ToString(out.Command.CommandId))
		if !ok {
			t.Fatalf("command %s never ends", aws.ToString(out.Command.CommandId))
		}
		if end.After(lastPatch) {
			lastPatch = end
		}
	}
	time.Sleep(time.Until(lastPatch.Add(time.Second)))
	v := &Verifier{SSM: client, Inspector: inspector2.NewFromConfig(cfg), Clock: clock.Real{}}
	var instances []result.Instance
	for _, id := range ids {
		instances = append(instances, result.Instance{ID: id, Outcome: result.OutcomeSucceeded})
	}
	before := sim.Calls()["inspector2:ListCoverage"]
	s.Compliance, s.Inspector = true, true
	res, err := v.After(ctx, s, runStarted, &Snapshot{Taken: runStarted}, instances)
	if err != nil {
		t.Fatal(err)
	}
	run := rescanRun{res: res, began: lastPatch.Add(time.Second), ended: time.Now(), calls: sim.Calls()["inspector2:ListCoverage"] - before}
	for _, in := range fleet {
		if at, ok := in.RescanAfterPatch(); ok && at.After(run.lastRescan) {
			run.lastRescan = at
		}
	}
	t.Logf("%d instances: last patch %s, last rescan %s later, gate %s after it, %d ListCoverage calls",
		len(ids), lastPatch.Sub(runStarted), run.lastRescan.Sub(lastPatch), run.lag(), run.calls)
	return run
}

// TestRescanWaitEndsPromptly: the gate ends within rescanPollTail of the
// last rescan, at a bounded number of ListCoverage calls: for a few
// instances listed by id (one call a poll), and for a large phase listed
// by tag (one pass of 200 a page, then the few still waiting by id). The
// old pace waited for the median delay of the instances already rescanned
// and, past it, ever longer: 3 to 13 minutes late on these fleets.
func TestRescanWaitEndsPromptly(t *testing.T) {
	// Every patch takes 20 minutes: they end together, and their rescans
	// spread over the following inventory interval by each instance's
	// own phase.
	together := func(r *awssim.Realism) {
		r.PatchMin, r.PatchMax, r.SlowShare, r.RebootShare = 20*time.Minute, 20*time.Minute, -1, -1
	}
	for _, tc := range []struct {
		name     string
		tweak    func(*awssim.Realism)
		count    int
		tags     map[string]string
		maxCalls int
	}{
		// Six instances, one call a poll: the windows of their predicted
		// rescans, every 2 minutes through the last.
		{"a few instances by id, patched together", together, 6, nil, 8},
		// Patch times spread (lognormal, a few slow): most were rescanned
		// before the wait; the last patches' rescans are waited for.
		{"a few instances by id", nil, 6, nil, 8},
		// 2,000 instances: one pass is 10 calls (the floor), then the few
		// still waiting by id.
		{"a large phase by tag", nil, 2000, map[string]string{"App": "web"}, 10 + 5},
		// All 2,000 wait at the first poll: each later poll by tag, for
		// the scans since the previous one, costs a share of a pass.
		{"a large phase by tag, patched together", together, 2000, map[string]string{"App": "web"}, 40},
	} {
		for seed := int64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("%s, seed %d", tc.name, seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					tweak := func(r *awssim.Realism) {
						r.Seed = seed
						if tc.tweak != nil {
							tc.tweak(r)
						}
					}
					run := waitOnRealisticFleet(t, tweak, Settings{FailOnSeverity: "HIGH", RescanTimeout: 2 * time.Hour, Tags: tc.tags},
						awssim.Group{Count: tc.count, Tags: map[string]string{"App": "web"}})
					if run.res.Verdict != result.StatusPassed || len(run.res.Inspector.Uncovered) != 0 || len(run.res.Inspector.Evidence) != tc.count {
						t.Fatalf("verdict %s, %d uncovered of %d, reasons %+v", run.res.Verdict, len(run.res.Inspector.Uncovered), len(run.res.Inspector.Evidence), run.res.Reasons)
					}
					if lag := run.lag(); lag < 0 || lag > rescanPollTail {
						t.Errorf("the gate ended %s after the last rescan, want within %s", lag, rescanPollTail)
					}
					if floor := int(math.Ceil(float64(tc.count) / 200)); run.calls < floor || run.calls > tc.maxCalls {
						t.Errorf("%d ListCoverage calls, want %d..%d", run.calls, floor, tc.maxCalls)
					}
				})
			})
		}
	}
}

// TestRescanThatNeverComes: an instance Inspector stopped scanning
// (STALE_INVENTORY: its last scan long before the patch) is waited for
// until rescanTimeout and no longer; the gate is inconclusive, never
// passed, and names it. The polls for it thin out once its rescan is
// overdue: the calls stay bounded over the two hours.
func TestRescanThatNeverComes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		run := waitOnRealisticFleet(t, nil, Settings{FailOnSeverity: "HIGH", RescanTimeout: 2 * time.Hour},
			awssim.Group{Count: 5, Name: "web", Tags: map[string]string{"App": "web"}},
			awssim.Group{Count: 1, Name: "stale", Tags: map[string]string{"App": "web"}, Coverage: "STALE_INVENTORY"})
		in := run.res.Inspector
		if run.res.Verdict != result.StatusInconclusive || len(in.Uncovered) != 1 || in.Uncovered[0].InstanceID != "i-00000000000000006" || len(in.Evidence) != 6 {
			t.Fatalf("verdict %s, uncovered %+v, reasons %+v", run.res.Verdict, in.Uncovered, run.res.Reasons)
		}
		if len(run.res.Reasons) != 1 || run.res.Reasons[0].Code != "no-rescan" {
			t.Fatalf("reasons %+v, want no-rescan", run.res.Reasons)
		}
		if u := in.Uncovered[0]; u.Reason != "STALE_INVENTORY" {
			t.Errorf("the stale instance reported %+v, want its reason STALE_INVENTORY", u)
		}
		if waited := run.ended.Sub(run.began); waited < 2*time.Hour || waited > 2*time.Hour+time.Second {
			t.Errorf("waited %s, want the 2h rescanTimeout", waited)
		}
		if run.calls > 30 {
			t.Errorf("%d ListCoverage calls in the 2 hours, want at most 30", run.calls)
		}
	})
}

// TestRescanWaitLearnsTheCadence: a fleet whose inventory runs every 60
// minutes, not the default 30. The windows predicted from 30 minutes
// miss, so the wait falls back to regular polling, and learns the
// interval from the previous scan and rescan of the instances it sees.
func TestRescanWaitLearnsTheCadence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		run := waitOnRealisticFleet(t, func(r *awssim.Realism) { r.InventoryInterval, r.InventoryJitter = time.Hour, 6*time.Minute },
			Settings{FailOnSeverity: "HIGH", RescanTimeout: 3 * time.Hour, Tags: map[string]string{"App": "web"}},
			awssim.Group{Count: 400, Tags: map[string]string{"App": "web"}})
		if run.res.Verdict != result.StatusPassed || len(run.res.Inspector.Uncovered) != 0 {
			t.Fatalf("verdict %s, reasons %+v", run.res.Verdict, run.res.Reasons)
		}
		if lag := run.lag(); lag < 0 || lag > rescanPollTail {
			t.Errorf("the gate ended %s after the last rescan, want within %s", lag, rescanPollTail)
		}
		if run.calls > 2+20 {
			t.Errorf("%d ListCoverage calls, want at most 22", run.calls)
		}
	})
}

// TestRescanWaitTakesTheSlack: when another account-region is expected to
// end the phase later (Settings.Slack), the looks are spaced by that
// slack: fewer calls, and the gate still ends within the slack of the
// last rescan.
func TestRescanWaitTakesTheSlack(t *testing.T) {
	together := func(r *awssim.Realism) {
		r.Seed = 3
		r.PatchMin, r.PatchMax, r.SlowShare, r.RebootShare = 20*time.Minute, 20*time.Minute, -1, -1
	}
	var runs [2]rescanRun
	for i, slack := range []time.Duration{0, 12 * time.Minute} {
		synctest.Test(t, func(t *testing.T) {
			s := Settings{FailOnSeverity: "HIGH", RescanTimeout: 2 * time.Hour}
			if slack > 0 {
				s.Slack = func() time.Duration { return slack }
			}
			runs[i] = waitOnRealisticFleet(t, together, s, awssim.Group{Count: 6, Tags: map[string]string{"App": "web"}})
			if runs[i].res.Verdict != result.StatusPassed {
				t.Fatalf("verdict %s %+v", runs[i].res.Verdict, runs[i].res.Reasons)
			}
			if lag := runs[i].lag(); lag < 0 || lag > max(slack, rescanPollTail) {
				t.Errorf("slack %s: the gate ended %s after the last rescan, want within %s", slack, lag, max(slack, rescanPollTail))
			}
		})
	}
	if runs[1].calls >= runs[0].calls {
		t.Errorf("with 12 minutes of slack %d ListCoverage calls, without %d: want fewer", runs[1].calls, runs[0].calls)
	}
}
