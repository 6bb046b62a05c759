package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/exitcode"
	"github.com/patchgate/patchgate/internal/lock"
	"github.com/patchgate/patchgate/internal/result"
)

// onePlace is a policy over one account and region, for verdict tests.
const onePlace = `apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: web}
spec:
  operatingSystem: AMAZON_LINUX_2023
  baseline: {approvalRules: [{classifications: [Security], approveAfterDays: 7}]}
  install: {executionTimeout: 24h}
  regions: [us-east-1]
  phases:
    - name: staging
      targets: {tags: {Environment: staging}}
      maxConcurrency: "50"
      maxErrors: "2"
      successThreshold: "90%"
      WAVES
      verify: {compliance: false}
    - name: production
      targets: {tags: {Environment: production}}
      verify: {compliance: false}
`

func groups(gs ...awssim.Group) *awssim.Scenario {
	for i := range gs {
		gs[i].Account, gs[i].Region = "111122223333", "us-east-1"
	}
	return &awssim.Scenario{Accounts: []string{"111122223333"}, PatchDuration: time.Minute, Groups: gs}
}

// TestMaxErrorsStopFailsThePhase is issue #15's false pass, through the
// simulator over HTTP: 1,000 instances, maxConcurrency 50, maxErrors 2,
// successThreshold 90%, compliance off. Three failures in the 19th command
// stop the wave with 50 instances unsent; 947 of 1,000 succeeded is above
// 90%, and the run used to report "Every gate passed" and send the next
// wave and phase.
func TestMaxErrorsStopFailsThePhase(t *testing.T) {
	for _, tc := range []struct {
		waves      string
		laterWaves int // commands of later waves that must never be sent
	}{{`waves: ["100%"]`, 0}, {`waves: ["95%", "100%"]`, 1}} {
		t.Run(tc.waves, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Instance ids follow the groups' order: ok-1..947, then the 3
				// failing ones, then 50 more, so the failures land in the 19th
				// command of 50.
				h := newHarness(t, groups(
					awssim.Group{Count: 947, Name: "ok", Tags: map[string]string{"Environment": "staging"}},
					awssim.Group{Count: 3, Name: "bad", Tags: map[string]string{"Environment": "staging"}, Behavior: "fail"},
					awssim.Group{Count: 50, Name: "late", Tags: map[string]string{"Environment": "staging"}},
					awssim.Group{Count: 5, Name: "prd", Tags: map[string]string{"Environment": "production"}},
				))
				r := h.run(context.Background(), mustPolicy(t, strings.Replace(onePlace, "WAVES", tc.waves, 1)))
				stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
				if r.Status != result.StatusFailed || stg.Status != result.StatusFailed || exitcode.ForStatus(r.Status) != exitcode.Failed {
					t.Fatalf("run %s, staging %s %+v: %s", r.Status, stg.Status, stg.Reasons, r.Summary)
				}
				if stg.Reasons[0].Code != "max-errors" || !strings.Contains(stg.Reasons[0].Message, "50 instances of the phase not sent") {
					t.Fatalf("reasons %+v", stg.Reasons)
				}
				if stg.Counts.Succeeded != 947 || stg.Counts.Failed != 3 || stg.Counts.Cancelled != 50 {
					t.Fatalf("counts %+v", stg.Counts)
				}
				if n := sendsFor(h.sim, "production"); n != 0 {
					t.Fatalf("%d commands sent to production after a failed staging", n)
				}
				if n := len(h.sim.Sends()); n != 19 {
					t.Fatalf("%d commands sent, want the 19 before the stop", n)
				}
				if strings.Contains(r.Summary, "passed") {
					t.Fatalf("summary %q", r.Summary)
				}
			})
		})
	}
}

// deniedSends answers every SendCommand as IAM would without ssm:SendCommand.
type deniedSends struct{ Commands }

func (deniedSends) SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient,
		Message: "User: arn:aws:sts::111122223333:assumed-role/patchgate/x is not authorized to perform: ssm:SendCommand"}
}

// cancelOn cancels the run when a log record's message starts with prefix.
type cancelOn struct {
	slog.Handler
	prefix string
	cancel context.CancelFunc
}

func (c cancelOn) Enabled(context.Context, slog.Level) bool { return true }
func (c cancelOn) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, c.prefix) {
		c.cancel()
	}
	return nil
}
func (c cancelOn) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c cancelOn) WithGroup(string) slog.Handler      { return c }

// TestCancelDuringSoakIsNotAPass: a phase whose soak was cut short did not
// finish; it never reads as passed, and the run says cancelled.
func TestCancelDuringSoakIsNotAPass(t *testing.T) { synctest.Test(t, testCancelDuringSoakIsNotAPass) }

func testCancelDuringSoakIsNotAPass(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 2, production: 4}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.opt.Logger = slog.New(cancelOn{prefix: "soaking", cancel: cancel})
	src := strings.Replace(testPolicy, "regions: [us-east-1, eu-west-1]", "regions: [us-east-1]", 1)
	src = strings.Replace(src, `accounts: [{id: "111122223333"}, {id: "444455556666", roleArn: "arn:aws:iam::444455556666:role/patchgate-target"}]`, `accounts: [{id: "111122223333"}]`, 1)
	r := h.run(ctx, mustPolicy(t, src))
	stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if r.Status != result.StatusCancelled || stg.Status != result.StatusCancelled || stg.Reasons[0].Code != "cancelled" ||
		!strings.Contains(stg.Reasons[0].Message, "during the soak") {
		t.Fatalf("run %s, staging %s %+v", r.Status, stg.Status, stg.Reasons)
	}
	if sendsFor(h.sim, "production") != 0 {
		t.Fatal("production sent after a cancelled soak")
	}
}

// TestInconclusiveStagingHaltsProduction: evidence missing in staging (no
// Inspector rescan) is not a pass; production is never sent.
func TestInconclusiveStagingHaltsProduction(t *testing.T) {
	synctest.Test(t, testInconclusiveStagingHaltsProduction)
}

func testInconclusiveStagingHaltsProduction(t *testing.T) {
	sc := groups(awssim.Group{Count: 2, Name: "stg", Tags: map[string]string{"Environment": "staging"}, Missing: 2, Coverage: "STALE_INVENTORY"},
		awssim.Group{Count: 2, Name: "prd", Tags: map[string]string{"Environment": "production"}, Missing: 2})
	h := newHarness(t, sc)
	src := strings.Replace(onePlace, "WAVES\n      verify: {compliance: false}", "verify: {inspector: {enabled: true, rescanTimeout: 30m}}", 1)
	r := h.run(context.Background(), mustPolicy(t, src))
	stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if stg.Status != result.StatusInconclusive || r.Status != result.StatusInconclusive || exitcode.ForStatus(r.Status) != exitcode.Inconclusive {
		t.Fatalf("run %s, staging %s %+v", r.Status, stg.Status, stg.Reasons)
	}
	if sendsFor(h.sim, "production") != 0 {
		t.Fatal("production sent after an inconclusive staging")
	}
}

// TestPendingRebootRule: under RebootIfNeeded an instance whose reboot did
// not happen fails the gate (pendingReboot: fail by default); with
// pendingReboot: warn it passes and the result says how many patches wait.
func TestPendingRebootRule(t *testing.T) {
	for _, tc := range []struct {
		rule string
		want result.Status
	}{{"", result.StatusFailed}, {"pendingReboot: warn, ", result.StatusPassed}} {
		t.Run(tc.rule, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, groups(awssim.Group{Count: 3, Name: "stg", Tags: map[string]string{"Environment": "staging"}, Missing: 4, NoRebootHappens: true}))
				src := strings.Replace(onePlace, "WAVES\n      verify: {compliance: false}", "", 1)
				src = strings.Replace(src, "install: {", "install: {"+tc.rule, 1)
				r := h.run(context.Background(), mustPolicy(t, src))
				stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
				if stg.Status != tc.want {
					t.Fatalf("staging %s %+v", stg.Status, stg.Reasons)
				}
				pr := stg.Verification.Compliance.PendingReboot
				if pr.Instances != 3 || pr.Patches != 12 {
					t.Fatalf("pending reboot %+v", pr)
				}
				want := "12 patches await a reboot on 3 instances"
				found := false
				for _, rs := range stg.Reasons {
					found = found || strings.Contains(rs.Message, want)
				}
				if !found {
					t.Fatalf("no %q in %+v", want, stg.Reasons)
				}
			})
		})
	}
}

// TestAPreflightRefusalSendsNothing: offline instances that already make the
// threshold unreachable stop the phase before any command.
func TestAPreflightRefusalSendsNothing(t *testing.T) {
	synctest.Test(t, testAPreflightRefusalSendsNothing)
}

func testAPreflightRefusalSendsNothing(t *testing.T) {
	h := newHarness(t, groups(awssim.Group{Count: 10, Name: "stg", Tags: map[string]string{"Environment": "staging"}},
		awssim.Group{Count: 2, Name: "lost", Tags: map[string]string{"Environment": "staging"}, Ping: "ConnectionLost"}))
	r := h.run(context.Background(), mustPolicy(t, strings.Replace(onePlace, "WAVES", "offline: fail", 1)))
	stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if stg.Status != result.StatusFailed || stg.Reasons[0].Code != "preflight-threshold" || len(h.sim.Sends()) != 0 {
		t.Fatalf("staging %s %+v, %d sends", stg.Status, stg.Reasons, len(h.sim.Sends()))
	}
	if !strings.Contains(stg.Reasons[0].Message, fmt.Sprintf("needs %d of %d", 11, 12)) {
		t.Fatalf("%q", stg.Reasons[0].Message)
	}
}

// TestStagingIsABarrierAcrossAccountRegions: staging fails in one
// account-region of four; production is sent nowhere, and each halted
// production says where staging did not pass.
func TestStagingIsABarrierAcrossAccountRegions(t *testing.T) {
	synctest.Test(t, testStagingIsABarrierAcrossAccountRegions)
}

func testStagingIsABarrierAcrossAccountRegions(t *testing.T) {
	sc := scenario(fleet{staging: 2, production: 10})
	for i, g := range sc.Groups {
		if g.Account == "444455556666" && g.Region == "eu-west-1" && g.Name == "stg" {
			sc.Groups[i].Behavior = "fail"
		}
	}
	h := newHarness(t, sc)
	r := h.run(context.Background(), mustPolicy(t, testPolicy))
	if r.Status != result.StatusFailed {
		t.Fatalf("run %s: %s", r.Status, r.Summary)
	}
	if n := sendsFor(h.sim, "production"); n != 0 {
		t.Fatalf("%d production commands after staging failed in one account-region", n)
	}
	if n := sendsFor(h.sim, "staging"); n != 4 {
		t.Fatalf("staging sends %d, want one per account-region", n)
	}
	for _, tg := range r.Policies[0].Targets {
		prod := phaseOf(t, r, tg.AccountID, tg.Region, "production")
		if prod.Status != result.StatusHalted || !strings.Contains(prod.Reasons[0].Message, "444455556666/eu-west-1: failed") {
			t.Errorf("%s/%s production %s %+v", tg.AccountID, tg.Region, prod.Status, prod.Reasons)
		}
		if tg.Status == result.StatusPassed {
			t.Errorf("%s/%s reads passed though its production was held back", tg.AccountID, tg.Region)
		}
	}
}

// TestOneTargetThatCannotStartStopsThePolicy: a lock held in one
// account-region (another run of the policy) refuses that target and
// sends nothing anywhere.
func TestOneTargetThatCannotStartStopsThePolicy(t *testing.T) {
	synctest.Test(t, testOneTargetThatCannotStartStopsThePolicy)
}

func testOneTargetThatCannotStartStopsThePolicy(t *testing.T) {
	h := newHarness(t, scenario(fleet{staging: 2, production: 4}))
	cl := ssm.NewFromConfig(awssim.Config(h.ep, "444455556666", "eu-west-1"))
	if _, err := lock.Acquire(context.Background(), cl, "web", "other-run", "", time.Hour, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r := h.run(context.Background(), mustPolicy(t, testPolicy))
	if len(h.sim.Sends()) != 0 {
		t.Fatalf("%d commands sent while one account-region was refused", len(h.sim.Sends()))
	}
	if r.Status != result.StatusRefused {
		t.Fatalf("run %s: %s", r.Status, r.Summary)
	}
	stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if stg.Status != result.StatusHalted || !strings.Contains(stg.Reasons[0].Message, "444455556666/eu-west-1 is refused") {
		t.Fatalf("staging %s %+v", stg.Status, stg.Reasons)
	}
}

// deniedPolls answers ListCommands by id (polling) as IAM would without
// ssm:ListCommands; the resume listing at the start still works.
type deniedPolls struct{ Commands }

func (d deniedPolls) ListCommands(ctx context.Context, in *ssm.ListCommandsInput, o ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	if in.CommandId == nil {
		return d.Commands.ListCommands(ctx, in, o...)
	}
	return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient, Message: "not authorized to perform: ssm:ListCommands"}
}

// TestDeniedCallIsAConfigurationError: a call AWS denies is exit 2 with the
// IAM action named. A denied SendCommand is not "0 of 4 instances
// succeeded" (exit 1); a denied poll ends the phase at once (not hours of
// "will retry") and cancels the command it can no longer follow.
func TestDeniedCallIsAConfigurationError(t *testing.T) {
	for _, tc := range []struct {
		name, action string
		wrap         func(Commands) Commands
		cancels      int
	}{
		{"SendCommand", "ssm:SendCommand", func(c Commands) Commands { return deniedSends{c} }, 0},
		{"ListCommands", "ssm:ListCommands", func(c Commands) Commands { return deniedPolls{c} }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, groups(awssim.Group{Count: 4, Name: "stg", Tags: map[string]string{"Environment": "staging"}},
					awssim.Group{Count: 4, Name: "prd", Tags: map[string]string{"Environment": "production"}}))
				wrapCommands(h, tc.wrap)
				r := h.run(context.Background(), mustPolicy(t, strings.Replace(onePlace, "WAVES", "", 1)))
				stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
				if r.Status != result.StatusError || exitcode.ForStatus(r.Status) != exitcode.Usage {
					t.Fatalf("run %s (exit %d): %+v", r.Status, exitcode.ForStatus(r.Status), stg.Reasons)
				}
				if stg.Reasons[0].Code != "aws-access-denied" || !strings.Contains(stg.Reasons[0].Message, tc.action) {
					t.Fatalf("reasons %+v", stg.Reasons)
				}
				if ph := phaseOf(t, r, "111122223333", "us-east-1", "production"); ph.Status != result.StatusHalted || sendsFor(h.sim, "production") != 0 {
					t.Fatalf("production %s, %d sends", ph.Status, sendsFor(h.sim, "production"))
				}
				if n := h.sim.Calls()["ssm:CancelCommand"]; n != tc.cancels {
					t.Fatalf("cancels %d, want %d", n, tc.cancels)
				}
			})
		})
	}
}

// wrapCommands makes every account-region's Run Command client wrap's.
func wrapCommands(h *harness, wrap func(Commands) Commands) {
	connect := h.opt.Connect
	h.opt.Connect = func(ctx context.Context, account, role, region string) (*Clients, error) {
		c, err := connect(ctx, account, role, region)
		if err == nil {
			c.Commands = wrap(c.Commands)
		}
		return c, err
	}
}
