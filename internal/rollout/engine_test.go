package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/exitcode"
	"github.com/patchgate/patchgate/internal/lock"
	"github.com/patchgate/patchgate/internal/memnet"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

const testPolicy = `apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: web}
spec:
  operatingSystem: AMAZON_LINUX_2023
  baseline: {approvalRules: [{classifications: [Security], approveAfterDays: 7}]}
  install: {executionTimeout: 3h}
  accounts: [{id: "111122223333"}, {id: "444455556666", roleArn: "arn:aws:iam::444455556666:role/patchgate-target"}]
  regions: [us-east-1, eu-west-1]
  phases:
    - name: staging
      targets: {tags: {Environment: staging, App: web}}
      maxConcurrency: "50%"
      OFFLINE
      soak: 30m
    - name: production
      targets: {tags: {Environment: production, App: web}}
      maxConcurrency: "50%"
      maxErrors: "5%"
      successThreshold: "95%"
      OFFLINE
      waves: ["10%", "50%", "100%"]
`

func mustPolicy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	src = strings.ReplaceAll(src, "      OFFLINE\n", "")
	p, probs := policy.Parse("web.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatal(probs.Error())
	}
	return p
}

type fleet struct {
	staging, production int
	stagingBehavior     string
	prodBehavior        string
	offline             int // production instances with a lost agent
}

func scenario(f fleet) *awssim.Scenario {
	sc := &awssim.Scenario{Accounts: []string{"111122223333", "444455556666"}, PatchDuration: 40 * time.Minute}
	for _, a := range sc.Accounts {
		for _, r := range []string{"us-east-1", "eu-west-1"} {
			sc.Groups = append(sc.Groups,
				awssim.Group{Account: a, Region: r, Count: f.staging, Name: "stg", Tags: map[string]string{"Environment": "staging", "App": "web"}, Missing: 4, Behavior: f.stagingBehavior},
				awssim.Group{Account: a, Region: r, Count: f.production, Name: "prd", Tags: map[string]string{"Environment": "production", "App": "web"}, Missing: 4, Behavior: f.prodBehavior},
				awssim.Group{Account: a, Region: r, Count: f.offline, Name: "lost", Tags: map[string]string{"Environment": "production", "App": "web"}, Ping: "ConnectionLost"},
			)
		}
	}
	return sc
}

type harness struct {
	sim     *awssim.Sim
	ep      string
	clock   clock.Clock
	opt     Options
	factory *awsapi.Factory
}

// simStart is when a test's fleet is made: the bubble's fake clock is moved
// on to it, so that dates in results read as they would in a real run.
var simStart = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// newHarness serves a simulator of sc to the engine over an in-memory
// network, on synctest's fake clock: a test that uses it runs its body in
// synctest.Test, so that a 40-minute patch takes no wall time and a busy
// machine cannot make an instance time out.
func newHarness(t testing.TB, sc *awssim.Scenario) *harness {
	t.Helper()
	// Outside a bubble Wait panics ("goroutine is not in a bubble"): the
	// test must run its body in synctest.Test.
	synctest.Wait()
	time.Sleep(time.Until(simStart)) // the fake clock moves on to the start
	c := clock.Real{}                // the bubble's fake time
	s := awssim.New(sc, c)
	srv := memnet.Serve(s)
	t.Cleanup(srv.Close)
	ep := srv.URL
	base, err := awsapi.LoadConfig(context.Background(), awsapi.Options{Region: "us-east-1", Endpoint: ep, RetryMaxBackoff: 10 * time.Millisecond,
		Extra: []func(*config.LoadOptions) error{config.WithHTTPClient(srv.Client),
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(awssim.AccessKeyFor("111122223333"), "s", ""))}})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{sim: s, ep: ep, clock: c, factory: &awsapi.Factory{Base: base, SessionName: "patchgate-test"}}
	h.opt = Options{RunID: "42", RunURL: "https://github.com/acme/fleet/actions/runs/42", Explicit: true,
		Connect: testConnect(h.factory, c), Store: testStore(h.factory), Notifier: testNotifier(h.factory),
		Clock: c, Logger: slog.New(slog.DiscardHandler), PollMin: 30 * time.Second, PollMax: 2 * time.Minute}
	return h
}

func (h *harness) run(ctx context.Context, ps ...*policy.Policy) *result.Run {
	return New(h.opt).Run(ctx, ps)
}

func sendsFor(s *awssim.Sim, phase string) int {
	n := 0
	for _, r := range s.Sends() {
		if strings.Contains(r.Comment, "/"+phase+"/") {
			n++
		}
	}
	return n
}

func phaseOf(t testing.TB, r *result.Run, account, region, phase string) result.Phase {
	t.Helper()
	for _, tg := range r.Policies[0].Targets {
		if tg.AccountID == account && tg.Region == region {
			for _, ph := range tg.Phases {
				if ph.Name == phase {
					return ph
				}
			}
		}
	}
	t.Fatalf("no phase %s in %s/%s", phase, account, region)
	return result.Phase{}
}

func TestHappyPathAcrossAccountsAndRegions(t *testing.T) {
	synctest.Test(t, testHappyPathAcrossAccountsAndRegions)
}

func testHappyPathAcrossAccountsAndRegions(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 4, production: 40}))
	r := h.run(context.Background(), mustPolicy(t, testPolicy))
	if r.Status != result.StatusPassed {
		t.Fatalf("status %s: %s %+v", r.Status, r.Summary, r.Policies[0])
	}
	if len(r.Policies[0].Targets) != 4 {
		t.Fatalf("targets %d", len(r.Policies[0].Targets))
	}
	for _, tg := range r.Policies[0].Targets {
		if tg.Lock == nil || !tg.Lock.Held {
			t.Errorf("%s/%s ran without the lock", tg.AccountID, tg.Region)
		}
		prod := phaseOf(t, r, tg.AccountID, tg.Region, "production")
		if len(prod.Waves) != 3 || prod.Waves[0].Counts.Targeted != 4 || prod.Waves[1].Counts.Targeted != 16 || prod.Waves[2].Counts.Targeted != 20 {
			t.Errorf("waves of 10/50/100%% over 40: %+v", prod.Waves)
		}
		if prod.EndedAt.IsZero() || prod.EndedAt.Before(prod.StartedAt) {
			t.Errorf("production phase times %v..%v", prod.StartedAt, prod.EndedAt)
		}
		// Each wave ends after it starts (the patch takes clock time) and
		// within its phase: the JSON and the report's wave durations read it.
		for i, w := range prod.Waves {
			if !w.EndedAt.After(w.StartedAt) || w.EndedAt.After(prod.EndedAt) {
				t.Errorf("wave %d times %v..%v (phase ends %v)", i+1, w.StartedAt, w.EndedAt, prod.EndedAt)
			}
		}
		if prod.Counts.Succeeded != 40 || prod.SoakSeconds != 0 {
			t.Errorf("production counts %+v", prod.Counts)
		}
		if stg := phaseOf(t, r, tg.AccountID, tg.Region, "staging"); stg.SoakSeconds != 1800 {
			t.Errorf("staging soak %v", stg.SoakSeconds)
		}
	}
	// One SnapshotId for every command of the run.
	snap := map[string]bool{}
	for _, s := range h.sim.Sends() {
		snap[s.Parameters["SnapshotId"][0]] = true
		if s.Parameters["Operation"][0] != "Install" || s.Parameters["RebootOption"][0] != "RebootIfNeeded" {
			t.Errorf("parameters %v", s.Parameters)
		}
	}
	if len(snap) != 1 || !snap[r.SnapshotID] {
		t.Errorf("snapshot ids %v, run %s", snap, r.SnapshotID)
	}
	if got := sendsFor(h.sim, "staging"); got != 4 {
		t.Errorf("staging sends %d, want one per target", got)
	}
	if got := sendsFor(h.sim, "production"); got != 12 {
		t.Errorf("production sends %d, want 3 waves x 4 targets", got)
	}
	// Locks are released.
	for _, a := range []string{"111122223333", "444455556666"} {
		cl := ssm.NewFromConfig(awssim.Config(h.ep, a, "us-east-1"))
		if _, err := lock.Acquire(context.Background(), cl, "web", "other", "", time.Hour, time.Now()); err != nil {
			t.Errorf("lock not released in %s: %v", a, err)
		}
	}
}

func TestStagingFailureSendsNothingToProduction(t *testing.T) {
	synctest.Test(t, testStagingFailureSendsNothingToProduction)
}

func testStagingFailureSendsNothingToProduction(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 4, production: 20, stagingBehavior: "fail"}))
	r := h.run(context.Background(), mustPolicy(t, testPolicy))
	if r.Status != result.StatusFailed || exitcode.ForStatus(r.Status) != exitcode.Failed {
		t.Fatalf("status %s", r.Status)
	}
	if n := sendsFor(h.sim, "production"); n != 0 {
		t.Fatalf("%d production commands after a failed staging ring", n)
	}
	prod := phaseOf(t, r, "111122223333", "us-east-1", "production")
	if prod.Status != result.StatusHalted || !strings.Contains(prod.Reasons[0].Message, "phase staging did not pass in 111122223333/us-east-1: failed (success-threshold)") {
		t.Fatalf("production %+v", prod)
	}
	stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if stg.Reasons[0].Code != "success-threshold" || stg.Counts.Failed == 0 {
		t.Fatalf("staging %+v", stg)
	}
	var withErr int
	for _, w := range stg.Waves {
		for _, in := range w.Instances {
			if in.Outcome == result.OutcomeFailed && strings.Contains(in.Error, "conflicts") {
				withErr++
			}
		}
	}
	if withErr == 0 {
		t.Fatal("failed instances must carry an error excerpt")
	}
}

func TestThrottlingStillCompletes(t *testing.T) { synctest.Test(t, testThrottlingStillCompletes) }

func testThrottlingStillCompletes(t *testing.T) {
	sc := scenario(fleet{staging: 3, production: 30})
	sc.ThrottleRate = 0.3
	h := newHarness(t, sc)
	r := h.run(context.Background(), mustPolicy(t, testPolicy))
	if r.Status != result.StatusPassed {
		t.Fatalf("status %s: %s %+v", r.Status, r.Summary, r.Policies[0].Targets)
	}
	if n := sendsFor(h.sim, "staging") + sendsFor(h.sim, "production"); n != 16 {
		t.Fatalf("sends %d, want exactly 16 despite throttling", n)
	}
}

func TestOfflineInstances(t *testing.T) {
	for _, tc := range []struct {
		offline string
		want    result.Status
	}{{"fail", result.StatusFailed}, {"skip", result.StatusPassed}} {
		t.Run(tc.offline, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, scenario(fleet{staging: 2, production: 20, offline: 3}))
				src := strings.ReplaceAll(testPolicy, "      OFFLINE\n", "      offline: "+tc.offline+"\n")
				r := h.run(context.Background(), mustPolicy(t, src))
				prod := phaseOf(t, r, "111122223333", "eu-west-1", "production")
				if r.Status != tc.want || prod.Counts.Targeted != 23 {
					t.Fatalf("status %s, counts %+v", r.Status, prod.Counts)
				}
				// 3 offline of 23 leave 20 sendable, short of the 22 that 95%
				// needs: the phase fails before anything is sent.
				if tc.offline == "fail" && (prod.Counts.Offline != 3 || prod.Reasons[0].Code != "preflight-threshold" || sendsFor(h.sim, "production") != 0) {
					t.Fatalf("offline must count against the threshold, before sending: %+v %+v, %d production sends", prod.Counts, prod.Reasons, sendsFor(h.sim, "production"))
				}
				if tc.offline == "skip" && prod.Counts.Skipped != 3 {
					t.Fatalf("skipped %+v", prod.Counts)
				}
				// Offline instances are never sent a command.
				for _, s := range h.sim.Sends() {
					if len(s.InstanceIDs) > 0 && strings.HasPrefix(instanceName(h.sim, s, s.InstanceIDs[0]), "lost") {
						t.Fatalf("command sent to an offline instance")
					}
				}
			})
		})
	}
}

func instanceName(s *awssim.Sim, r awssim.SendRecord, id string) string {
	for _, in := range s.Instances(r.Account, r.Region) {
		if in.ID == id {
			return in.Name
		}
	}
	return ""
}

func TestRebootMidPatchIsNotAFailure(t *testing.T) { synctest.Test(t, testRebootMidPatchIsNotAFailure) }

func testRebootMidPatchIsNotAFailure(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 2, production: 10, stagingBehavior: "reboot", prodBehavior: "reboot"}))
	r := h.run(context.Background(), mustPolicy(t, testPolicy))
	if r.Status != result.StatusPassed {
		t.Fatalf("status %s: %s", r.Status, r.Summary)
	}
}

func TestLostSendCommandResponseSendsOnce(t *testing.T) {
	synctest.Test(t, testLostSendCommandResponseSendsOnce)
}

func testLostSendCommandResponseSendsOnce(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 2, production: 10}))
	h.sim.DropResponse("ssm:SendCommand", 3)
	r := h.run(context.Background(), mustPolicy(t, testPolicy))
	if r.Status != result.StatusPassed {
		t.Fatalf("status %s: %s", r.Status, r.Summary)
	}
	seen := map[string]int{}
	for _, s := range h.sim.Sends() {
		seen[s.Account+s.Region+s.Comment]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
	if len(seen) != 16 {
		t.Errorf("%d distinct commands, want 16", len(seen))
	}
}

func TestResumeSendsNothingTwice(t *testing.T) { synctest.Test(t, testResumeSendsNothingTwice) }

func testResumeSendsNothingTwice(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 2, production: 10}))
	// A first attempt of run 42 that got as far as staging.
	stagingOnly := strings.Replace(testPolicy, "    - name: production", "    - name: production-never", 1)
	stagingOnly = stagingOnly[:strings.Index(stagingOnly, "    - name: production-never")]
	first := h.run(context.Background(), mustPolicy(t, stagingOnly))
	if first.Status != result.StatusPassed || sendsFor(h.sim, "staging") != 4 {
		t.Fatalf("first attempt: %s, %d staging sends", first.Status, sendsFor(h.sim, "staging"))
	}
	second := h.run(context.Background(), mustPolicy(t, testPolicy))
	if second.Status != result.StatusPassed {
		t.Fatalf("second attempt: %s %s", second.Status, second.Summary)
	}
	if n := sendsFor(h.sim, "staging"); n != 4 {
		t.Fatalf("staging sent again on resume: %d sends", n)
	}
	stg := phaseOf(t, second, "444455556666", "us-east-1", "staging")
	if !stg.Waves[0].Resumed || !stg.Waves[0].Commands[0].Resumed {
		t.Fatalf("resumed wave not marked: %+v", stg.Waves[0])
	}
	if second.SnapshotID != first.SnapshotID {
		t.Fatalf("a resumed run must keep the SnapshotId: %s vs %s", second.SnapshotID, first.SnapshotID)
	}
	// A third attempt finds everything done and sends nothing.
	before := len(h.sim.Sends())
	if third := h.run(context.Background(), mustPolicy(t, testPolicy)); third.Status != result.StatusPassed || len(h.sim.Sends()) != before {
		t.Fatalf("third attempt: %s, %d new sends", third.Status, len(h.sim.Sends())-before)
	}
}

func TestHeldLockRefusesTheRun(t *testing.T) { synctest.Test(t, testHeldLockRefusesTheRun) }

func testHeldLockRefusesTheRun(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 2, production: 4}))
	cl := ssm.NewFromConfig(awssim.Config(h.ep, "111122223333", "us-east-1"))
	held, err := lock.Acquire(context.Background(), cl, "web", "7", "https://github.com/acme/fleet/actions/runs/7", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := h.run(context.Background(), mustPolicy(t, testPolicy))
	var refused *result.Target
	for i, tg := range r.Policies[0].Targets {
		if tg.AccountID == "111122223333" && tg.Region == "us-east-1" {
			refused = &r.Policies[0].Targets[i]
		}
	}
	if refused.Status != result.StatusRefused || !strings.Contains(refused.Reason, "runs/7") || !strings.Contains(refused.Reason, held.Info.LockID) {
		t.Fatalf("refused target: %+v", refused)
	}
	if r.Status != result.StatusRefused {
		t.Fatalf("run status %s", r.Status)
	}
	for _, s := range h.sim.Sends() {
		if s.Account == "111122223333" && s.Region == "us-east-1" {
			t.Fatal("a locked target was patched")
		}
	}
}

func TestConcurrentLocksHaveOneWinner(t *testing.T) {
	synctest.Test(t, testConcurrentLocksHaveOneWinner)
}

func testConcurrentLocksHaveOneWinner(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 1}))
	cl := ssm.NewFromConfig(awssim.Config(h.ep, "111122223333", "us-east-1"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := lock.Acquire(context.Background(), cl, "web", fmt.Sprint("run-", i), "", time.Hour, time.Now()); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d winners", wins)
	}
}

func TestCancellationStopsPromptly(t *testing.T) { synctest.Test(t, testCancellationStopsPromptly) }

func testCancellationStopsPromptly(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 3, production: 5, stagingBehavior: "hang"}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *result.Run)
	go func() { done <- h.run(ctx, mustPolicy(t, testPolicy)) }()
	// Every staging command is sent within the first minutes of the run
	// (clock time); the hour is the loop's deadline.
	for deadline := time.Now().Add(time.Hour); sendsFor(h.sim, "staging") < 4; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("%d staging commands sent after an hour, want 4", sendsFor(h.sim, "staging"))
		}
	}
	cancel()
	var r *result.Run
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the run did not stop within 5 s of the signal")
	}
	if r.Status != result.StatusCancelled || exitcode.ForStatus(r.Status) != exitcode.Cancelled {
		t.Fatalf("status %s", r.Status)
	}
	if n := h.sim.Calls()["ssm:CancelCommand"]; n < 4 {
		t.Fatalf("CancelCommand called %d times, want every in-flight command", n)
	}
	if sendsFor(h.sim, "production") != 0 {
		t.Fatal("production patched after cancellation")
	}
	cl := ssm.NewFromConfig(awssim.Config(h.ep, "111122223333", "us-east-1"))
	if _, err := lock.Acquire(context.Background(), cl, "web", "next", "", time.Hour, time.Now()); err != nil {
		t.Fatalf("lock not released after cancellation: %v", err)
	}
}

func TestExecutionDeadlineCancelsAndTimesOut(t *testing.T) {
	synctest.Test(t, testExecutionDeadlineCancelsAndTimesOut)
}

func testExecutionDeadlineCancelsAndTimesOut(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 2, production: 2, stagingBehavior: "hang"}))
	r := h.run(context.Background(), mustPolicy(t, testPolicy))
	stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if r.Status != result.StatusFailed || stg.Counts.TimedOut != 2 {
		t.Fatalf("status %s, staging %+v", r.Status, stg.Counts)
	}
	if h.sim.Calls()["ssm:CancelCommand"] < 4 {
		t.Fatal("commands past the deadline must be cancelled")
	}
}

func TestDryRunSendsNothing(t *testing.T) { synctest.Test(t, testDryRunSendsNothing) }

func testDryRunSendsNothing(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 2, production: 120}))
	h.opt.DryRun = true
	r := h.run(context.Background(), mustPolicy(t, testPolicy))
	if r.Status != result.StatusDryRun || len(h.sim.Sends()) != 0 || h.sim.Calls()["ssm:PutParameter"] != 0 {
		t.Fatalf("status %s, sends %d", r.Status, len(h.sim.Sends()))
	}
	prod := phaseOf(t, r, "111122223333", "us-east-1", "production")
	last := prod.Waves[2]
	// 100% wave of 120: 60 instances in two commands of at most 50.
	if len(last.Commands) != 2 || last.Commands[0].Instances != 50 || last.Commands[0].Comment != "patchgate run=42 web/production/w3/c1" {
		t.Fatalf("planned commands %+v", last.Commands)
	}
}

// API calls per instance must not grow with the fleet: polling is by
// command, not by instance.
func TestAPICallsPerInstanceStayFlat(t *testing.T) { synctest.Test(t, testAPICallsPerInstanceStayFlat) }

func testAPICallsPerInstanceStayFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet-size comparison")
	}
	perInstance := func(n int) float64 {
		sc := &awssim.Scenario{Accounts: []string{"111122223333"}, PatchDuration: 40 * time.Minute, Groups: []awssim.Group{
			{Region: "us-east-1", Count: n / 10, Name: "stg", Tags: map[string]string{"Environment": "staging", "App": "web"}},
			{Region: "us-east-1", Count: n - n/10, Name: "prd", Tags: map[string]string{"Environment": "production", "App": "web"}},
		}}
		h := newHarness(t, sc)
		src := strings.Replace(testPolicy, `accounts: [{id: "111122223333"}, {id: "444455556666", roleArn: "arn:aws:iam::444455556666:role/patchgate-target"}]`, `accounts: [{id: "111122223333"}]`, 1)
		src = strings.Replace(src, "regions: [us-east-1, eu-west-1]", "regions: [us-east-1]", 1)
		r := h.run(context.Background(), mustPolicy(t, src))
		if r.Status != result.StatusPassed {
			t.Fatalf("%d instances: %s %s", n, r.Status, r.Summary)
		}
		total := 0
		for op, c := range h.sim.Calls() {
			if strings.HasPrefix(op, "ssm:") {
				total += c
			}
		}
		return float64(total) / float64(n)
	}
	small, large := perInstance(100), perInstance(5000)
	t.Logf("SSM calls per instance: %.3f at 100, %.3f at 5,000", small, large)
	if large > small {
		t.Fatalf("calls per instance grew with the fleet: %.3f -> %.3f", small, large)
	}
	if large > 0.15 {
		t.Fatalf("%.3f calls per instance at 5,000 instances", large)
	}
}

// A command whose counts prove every invocation succeeded is not listed
// invocation by invocation when the compliance check will read every
// instance's patch state; any other command is, and so is every command of
// a phase that does not check compliance.
func TestOutcomesFromCountsOnlyWhenCorroborated(t *testing.T) {
	oneRegion := func(src string) string {
		src = strings.Replace(src, `accounts: [{id: "111122223333"}, {id: "444455556666", roleArn: "arn:aws:iam::444455556666:role/patchgate-target"}]`, `accounts: [{id: "111122223333"}]`, 1)
		return strings.Replace(src, "regions: [us-east-1, eu-west-1]", "regions: [us-east-1]", 1)
	}
	sc := func(failing int) *awssim.Scenario {
		s := &awssim.Scenario{Accounts: []string{"111122223333"}, PatchDuration: 40 * time.Minute, Groups: []awssim.Group{
			{Region: "us-east-1", Count: 4, Name: "stg", Tags: map[string]string{"Environment": "staging", "App": "web"}, Missing: 2},
			{Region: "us-east-1", Count: 40, Name: "prd", Tags: map[string]string{"Environment": "production", "App": "web"}, Missing: 2},
		}}
		if failing > 0 {
			s.Groups = append(s.Groups, awssim.Group{Region: "us-east-1", Count: failing, Name: "bad", Tags: map[string]string{"Environment": "production", "App": "web"}, Missing: 2, Behavior: "fail"})
		}
		return s
	}
	noCompliance := strings.Replace(testPolicy, "      soak: 30m\n", "      soak: 30m\n      verify: {compliance: false}\n", 1)
	noCompliance = strings.Replace(noCompliance, `      waves: ["10%", "50%", "100%"]`+"\n", `      waves: ["10%", "50%", "100%"]`+"\n      verify: {compliance: false}\n", 1)
	for _, tc := range []struct {
		name        string
		policy      string
		failing     int
		wantListed  int // invocation listings, one of which times the first invocations for the pacer
		wantFromCts int
	}{
		{"all succeed, compliance checked", testPolicy, 0, 1, 4},
		{"one fails, compliance checked", testPolicy, 1, 2, 3},
		{"compliance not checked", noCompliance, 0, 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, sc(tc.failing))
				r := h.run(context.Background(), mustPolicy(t, oneRegion(tc.policy)))
				listed, fromCounts := h.sim.Calls()["ssm:ListCommandInvocations"], 0
				var succeeded, failed int
				for _, ph := range r.Policies[0].Targets[0].Phases {
					for _, w := range ph.Waves {
						for _, c := range w.Commands {
							if c.FromCounts {
								fromCounts++
							}
						}
						for _, in := range w.Instances {
							switch in.Outcome {
							case result.OutcomeSucceeded:
								succeeded++
								if in.SSMStatus != "Success" {
									t.Errorf("%s succeeded with SSM status %q", in.ID, in.SSMStatus)
								}
							case result.OutcomeFailed:
								failed++
								if in.Error == "" {
									t.Errorf("%s failed without the invocation's output", in.ID)
								}
							}
						}
					}
				}
				if listed != tc.wantListed || fromCounts != tc.wantFromCts {
					t.Errorf("invocation listings %d, commands from counts %d; want %d and %d", listed, fromCounts, tc.wantListed, tc.wantFromCts)
				}
				if failed != tc.failing || (tc.failing == 0 && (r.Status != result.StatusPassed || succeeded != 44)) {
					t.Errorf("status %s, %d succeeded, %d failed: %s", r.Status, succeeded, failed, r.Summary)
				}
			})
		})
	}
}
