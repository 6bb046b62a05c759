package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/exitcode"
	"github.com/patchgate/patchgate/internal/lock"
	"github.com/patchgate/patchgate/internal/memnet"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

// sendPolicy patches one account and region: a staging ring of 4 and a
// production ring, so a test can see whether anything after a doubtful
// send goes out.
const sendPolicy = `apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: web}
spec:
  operatingSystem: AMAZON_LINUX_2023
  baseline: {approvalRules: [{classifications: [Security], approveAfterDays: 7}]}
  install: {executionTimeout: 24h}
  accounts: [{id: "111122223333"}]
  regions: [us-east-1]
  phases:
    - name: staging
      targets: {tags: {Environment: staging, App: web}}
      maxConcurrency: "100%"
      verify: {compliance: false}
    - name: production
      targets: {tags: {Environment: production, App: web}}
      maxConcurrency: "100%"
      verify: {compliance: false}
`

func sendScenario(staging, production int) *awssim.Scenario {
	sc := &awssim.Scenario{Accounts: []string{"111122223333"}, PatchDuration: 2 * time.Minute}
	sc.Groups = []awssim.Group{
		{Region: "us-east-1", Count: staging, Name: "stg", Tags: map[string]string{"Environment": "staging", "App": "web"}, Missing: 4},
		{Region: "us-east-1", Count: production, Name: "prd", Tags: map[string]string{"Environment": "production", "App": "web"}, Missing: 4},
	}
	return sc
}

// sendHarness is newHarness with sendOptions, on synctest's fake clock.
func sendHarness(t *testing.T, sc *awssim.Scenario) *harness {
	t.Helper()
	h := newHarness(t, sc)
	h.opt = sendOptions(t, h.ep, h.clock)
	return h
}

// sendOptions runs run 42 against the simulator at ep on clock c, without
// the evidence gate (the policies here do not ask for it). An endpoint
// memnet serves is reached over it.
func sendOptions(t *testing.T, ep string, c clock.Clock) Options {
	t.Helper()
	extra := []func(*config.LoadOptions) error{config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(awssim.AccessKeyFor("111122223333"), "s", ""))}
	if hc := memnet.ClientFor(ep); hc != nil {
		extra = append(extra, config.WithHTTPClient(hc))
	}
	base, err := awsapi.LoadConfig(context.Background(), awsapi.Options{Region: "us-east-1", Endpoint: ep, RetryMaxBackoff: 10 * time.Millisecond, Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	return Options{RunID: "42", Explicit: true, Clock: c, Logger: slog.New(slog.DiscardHandler), PollMin: 10 * time.Second, PollMax: time.Minute,
		Connect: testConnect(&awsapi.Factory{Base: base, SessionName: "patchgate-test"}, nil)}
}

// commandsPerInstance counts the accepted SendCommands that reached each
// instance.
func commandsPerInstance(s *awssim.Sim) map[string]int {
	n := map[string]int{}
	for _, r := range s.Sends() {
		for _, id := range r.InstanceIDs {
			n[id]++
		}
	}
	return n
}

// onceEach fails unless every instance in ids got exactly one command.
func onceEach(t *testing.T, s *awssim.Sim, want int) {
	t.Helper()
	got := commandsPerInstance(s)
	if len(got) != want {
		t.Errorf("%d instances got a command, want %d", len(got), want)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("instance %s got %d AWS-RunPatchBaseline commands, want 1", id, n)
		}
	}
}

func stagingCommand(t *testing.T, r *result.Run) result.Command {
	t.Helper()
	ph := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if len(ph.Waves) == 0 || len(ph.Waves[0].Commands) != 1 {
		t.Fatalf("staging waves %+v", ph.Waves)
	}
	return ph.Waves[0].Commands[0]
}

// A SendCommand whose response is lost, while SSM lists the new command
// only some time later: patchgate must find it rather than send again.
func TestLostResponseWithListingDelaySendsOnce(t *testing.T) {
	for _, delay := range []time.Duration{5 * time.Second, 30 * time.Second, 90 * time.Second} {
		t.Run(delay.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := sendHarness(t, sendScenario(4, 6))
				h.sim.SetListingDelay(delay)
				h.sim.DropResponse("ssm:SendCommand", 1)
				r := h.run(context.Background(), mustPolicy(t, sendPolicy))
				if r.Status != result.StatusPassed {
					t.Fatalf("status %s: %s", r.Status, r.Summary)
				}
				onceEach(t, h.sim, 10)
				if c := stagingCommand(t, r); !c.Reconciled || c.Resent || c.CommandID == "" {
					t.Fatalf("the lost send must be found and tracked: %+v", c)
				}
			})
		})
	}
}

// SSM runs the command but its 200 response arrives cut off: the command
// is tracked, polled and counted like any other.
func TestTruncatedResponseIsTrackedAndCounted(t *testing.T) {
	synctest.Test(t, testTruncatedResponseIsTrackedAndCounted)
}

func testTruncatedResponseIsTrackedAndCounted(t *testing.T) {
	h := sendHarness(t, sendScenario(4, 6))
	h.sim.SetListingDelay(20 * time.Second)
	h.sim.TruncateResponse("ssm:SendCommand", 1)
	r := h.run(context.Background(), mustPolicy(t, sendPolicy))
	if r.Status != result.StatusPassed {
		t.Fatalf("status %s: %s", r.Status, r.Summary)
	}
	onceEach(t, h.sim, 10)
	stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if stg.Counts.Succeeded != 4 || stg.Counts.Targeted != 4 {
		t.Fatalf("the truncated send's instances must be counted: %+v", stg.Counts)
	}
	c := stagingCommand(t, r)
	if !c.Reconciled || c.CommandID != h.sim.Sends()[0].CommandID || c.Status != "Success" {
		t.Fatalf("command %+v, sent %s", c, h.sim.Sends()[0].CommandID)
	}
}

// A 500 that did not take effect: after a whole reconcile window without a
// trace, the command is sent again, once, and the report says so.
func TestNoTraceAfterTheWindowResendsOnce(t *testing.T) {
	synctest.Test(t, testNoTraceAfterTheWindowResendsOnce)
}

func testNoTraceAfterTheWindowResendsOnce(t *testing.T) {
	h := sendHarness(t, sendScenario(4, 6))
	h.sim.ServerError("ssm:SendCommand", 1)
	r := h.run(context.Background(), mustPolicy(t, sendPolicy))
	if r.Status != result.StatusPassed {
		t.Fatalf("status %s: %s", r.Status, r.Summary)
	}
	onceEach(t, h.sim, 10)
	c := stagingCommand(t, r)
	if !c.Resent || c.ResentAfterSeconds < DefaultReconcileWindow.Seconds() || c.Reconciled {
		t.Fatalf("want a resend after at least %s: %+v", DefaultReconcileWindow, c)
	}
	if n := h.sim.Calls()["ssm:SendCommand"]; n != 3 {
		t.Fatalf("%d SendCommand calls, want 3 (the failed one, its resend, production)", n)
	}
}

// When patchgate cannot tell whether a command was sent (its response was
// lost and SSM cannot be read), the chunk is unknown: its instances are
// inconclusive and named, nothing later is sent, and the intent stays open
// for the next run.
func TestUnknownSendStopsTheRun(t *testing.T) { synctest.Test(t, testUnknownSendStopsTheRun) }

func testUnknownSendStopsTheRun(t *testing.T) {
	h := sendHarness(t, sendScenario(4, 6))
	h.opt.ReconcileWindow = 10 * time.Minute
	h.sim.DropResponse("ssm:SendCommand", 1)
	connect := h.opt.Connect
	h.opt.Connect = func(ctx context.Context, accountID, roleARN, region string) (*Clients, error) {
		c, err := connect(ctx, accountID, roleARN, region)
		if err == nil {
			c.Commands = &unreadableAfterSend{Commands: c.Commands}
		}
		return c, err
	}
	r := h.run(context.Background(), mustPolicy(t, sendPolicy))
	if r.Status != result.StatusInconclusive {
		t.Fatalf("status %s: %s", r.Status, r.Summary)
	}
	stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if stg.Status != result.StatusInconclusive || len(stg.Reasons) == 0 || stg.Reasons[0].Code != "unknown-send" || len(stg.Reasons[0].Instances) != 4 {
		t.Fatalf("staging %s %+v", stg.Status, stg.Reasons)
	}
	if stg.Counts.Inconclusive != 4 || !stagingCommand(t, r).Unknown {
		t.Fatalf("counts %+v, command %+v", stg.Counts, stagingCommand(t, r))
	}
	for _, id := range stg.Reasons[0].Instances {
		if !strings.Contains(stg.Reasons[0].Message, id) {
			t.Fatalf("the reason must name %s: %s", id, stg.Reasons[0].Message)
		}
	}
	if prd := phaseOf(t, r, "111122223333", "us-east-1", "production"); prd.Status != result.StatusHalted {
		t.Fatalf("production %s: nothing may follow a doubtful send", prd.Status)
	}
	if n := len(h.sim.Sends()); n != 1 {
		t.Fatalf("%d commands reached SSM, want 1", n)
	}
	cl := ssm.NewFromConfig(awssim.Config(h.ep, "111122223333", "us-east-1"))
	in, err := lock.ReadIntent(context.Background(), cl, "web")
	if err != nil || in == nil || in.RunID != "42" || in.Phase != "staging" || in.Wave != 1 || in.Chunks != 1 || len(in.InstanceIDs) != 1 || len(in.InstanceIDs[0]) != 4 {
		t.Fatalf("the intent must stay open for the next run: %+v %v", in, err)
	}
}

// unreadableAfterSend is SSM whose listings fail once a command was sent
// (an outage of the read side, or a role without ssm:List* rights).
type unreadableAfterSend struct {
	Commands
	sent atomic.Bool
}

func (u *unreadableAfterSend) SendCommand(ctx context.Context, in *ssm.SendCommandInput, optFns ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	u.sent.Store(true)
	return u.Commands.SendCommand(ctx, in, optFns...)
}

var errUnreadable = &smithy.GenericAPIError{Code: "InternalServerError", Message: "listing unavailable", Fault: smithy.FaultServer}

func (u *unreadableAfterSend) ListCommands(ctx context.Context, in *ssm.ListCommandsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	if u.sent.Load() {
		return nil, errUnreadable
	}
	return u.Commands.ListCommands(ctx, in, optFns...)
}

func (u *unreadableAfterSend) ListCommandInvocations(ctx context.Context, in *ssm.ListCommandInvocationsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error) {
	if u.sent.Load() {
		return nil, errUnreadable
	}
	return u.Commands.ListCommandInvocations(ctx, in, optFns...)
}

// An open intent that a later attempt of the run finds is reconciled
// before anything is sent: found, it is resumed, never sent again.
func TestOpenIntentIsReconciledOnResume(t *testing.T) {
	synctest.Test(t, testOpenIntentIsReconciledOnResume)
}

func testOpenIntentIsReconciledOnResume(t *testing.T) {
	h := sendHarness(t, sendScenario(4, 6))
	h.sim.SetListingDelay(2 * time.Minute)
	cl := ssm.NewFromConfig(awssim.Config(h.ep, "111122223333", "us-east-1"))
	ctx := context.Background()
	ids := []string{}
	for _, in := range h.sim.Instances("111122223333", "us-east-1")[:4] {
		ids = append(ids, in.ID)
	}
	// What a crashed first attempt left: a command SSM does not list yet,
	// its intent, and its lock.
	comment := Comment("42", "web", "staging", 1, 1)
	if err := lock.PutIntent(ctx, cl, lock.Intent{RunID: "42", Policy: "web", Phase: "staging", Wave: 1, Chunks: 1,
		Digest: lock.Digest(ids), InstanceIDs: [][]string{ids}, At: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	out, err := cl.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(DocumentName), InstanceIds: ids, Comment: aws.String(comment),
		Parameters: map[string][]string{"Operation": {"Install"}, "SnapshotId": {"11111111-2222-3333-4444-555555555555"}, "RebootOption": {"RebootIfNeeded"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := h.run(ctx, mustPolicy(t, sendPolicy))
	if r.Status != result.StatusPassed {
		t.Fatalf("status %s: %s", r.Status, r.Summary)
	}
	onceEach(t, h.sim, 10)
	if c := stagingCommand(t, r); !c.Resumed || c.CommandID != aws.ToString(out.Command.CommandId) {
		t.Fatalf("the open intent's command must be resumed: %+v", c)
	}
	if r.SnapshotID != "11111111-2222-3333-4444-555555555555" {
		t.Fatalf("a resumed run keeps the first attempt's SnapshotId, got %s", r.SnapshotID)
	}
	if in, err := lock.ReadIntent(ctx, cl, "web"); in != nil || err != nil {
		t.Fatalf("the intent must be cleared after the run: %+v %v", in, err)
	}
}

// SSM throttles SendCommand above a rate: the run completes, one command
// per instance, and the client-side limit keeps most sends under the rate.
func TestThrottledSendCommandSendsOnceAndCompletes(t *testing.T) {
	synctest.Test(t, testThrottledSendCommandSendsOnceAndCompletes)
}

func testThrottledSendCommandSendsOnceAndCompletes(t *testing.T) {
	h := sendHarness(t, sendScenario(4, 400))
	h.sim.RateLimit("ssm:SendCommand", 1, 1)
	r := h.run(context.Background(), mustPolicy(t, sendPolicy))
	if r.Status != result.StatusPassed {
		t.Fatalf("status %s: %s", r.Status, r.Summary)
	}
	onceEach(t, h.sim, 404)
	if n := len(h.sim.Sends()); n != 9 {
		t.Fatalf("%d commands, want 9 (1 staging + 8 chunks of 50)", n)
	}
	t.Logf("SendCommand calls %d, throttled %d", h.sim.Calls()["ssm:SendCommand"], h.sim.Throttled()["ssm:SendCommand"])
}

// classifySend decides whether a resend can duplicate a command; it reads
// error types, never their text.
func TestClassifySend(t *testing.T) {
	op := func(err error) error {
		return &smithy.OperationError{ServiceID: "SSM", OperationName: "SendCommand", Err: err}
	}
	for _, tc := range []struct {
		name string
		err  error
		want sendKind
	}{
		{"throttled", op(&smithy.GenericAPIError{Code: "ThrottlingException", Fault: smithy.FaultClient}), notSent},
		{"refused", op(&smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}}), notSent},
		{"dns", op(&smithyhttp.RequestSendError{Err: &net.DNSError{Err: "no such host", Name: "ssm.example", IsNotFound: true}}), notSent},
		{"validation", op(&smithy.GenericAPIError{Code: "ValidationException", Fault: smithy.FaultClient}), rejected},
		{"invalid instance", op(&smithy.GenericAPIError{Code: "InvalidInstanceId", Fault: smithy.FaultClient}), rejected},
		{"params", op(&smithy.InvalidParamsError{Context: "SendCommandInput"}), rejected},
		{"server error", op(&smithy.GenericAPIError{Code: "InternalServerError", Fault: smithy.FaultServer}), maybeSent},
		{"unknown fault", op(&smithy.GenericAPIError{Code: "Weird"}), maybeSent},
		{"truncated 2xx", op(&smithy.DeserializationError{Err: io.ErrUnexpectedEOF}), maybeSent},
		{"unparseable 2xx", op(&smithy.DeserializationError{Err: errors.New("invalid character '<'")}), maybeSent},
		{"reset mid-response", op(&smithyhttp.RequestSendError{Err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}}), maybeSent},
		{"closed mid-response", op(io.ErrUnexpectedEOF), maybeSent},
		{"timeout", op(context.DeadlineExceeded), maybeSent},
		{"anything else", op(fmt.Errorf("something new")), maybeSent},
	} {
		if got := classifySend(tc.err); got != tc.want {
			t.Errorf("%s: %v classified %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}

// fakeClock advances only when slept on.
type fakeClock struct{ now time.Time }

func (f *fakeClock) Now() time.Time { return f.now }
func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		f.now = f.now.Add(d)
	}
	return ctx.Err()
}

// The send limit is a token bucket on the run's clock: a burst goes at
// once, the rest at the rate.
func TestSendLimitPacesOnTheRunClock(t *testing.T) {
	var ls sendLimits
	l := ls.get("111122223333", "us-east-1", 3, 5)
	if ls.get("111122223333", "us-east-1", 3, 5) != l || ls.get("111122223333", "eu-west-1", 3, 5) == l {
		t.Fatal("one limit per account and region")
	}
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	start := clk.now
	for i := 0; i < 35; i++ {
		if err := l.wait(context.Background(), clk); err != nil {
			t.Fatal(err)
		}
	}
	// 5 at once, then 30 at 3 a second.
	if got := clk.now.Sub(start); got != 10*time.Second {
		t.Fatalf("35 sends took %s of clock time, want 10s", got)
	}
	if ls.get("a", "r", -1, 0) != nil {
		t.Fatal("a negative rate means no limit")
	}
}

// An endpoint where nothing listens ends the run as an error (exit 2) that
// names the endpoint and the operation, after a few quick attempts.
func TestRefusedEndpointIsAnErrorNamingIt(t *testing.T) {
	synctest.Test(t, testRefusedEndpointIsAnErrorNamingIt)
}

func testRefusedEndpointIsAnErrorNamingIt(t *testing.T) {
	ep, err := awssim.ClosedEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	opt := sendOptions(t, ep, clock.Real{})
	r := New(opt).Run(context.Background(), []*policy.Policy{mustPolicy(t, sendPolicy)})
	if r.Status != result.StatusError || exitcode.ForStatus(r.Status) != exitcode.Usage {
		t.Fatalf("status %s (exit %d), want error (exit %d)", r.Status, exitcode.ForStatus(r.Status), exitcode.Usage)
	}
	why := r.Policies[0].Targets[0].Reason
	for _, want := range []string{ep, "sts:GetCallerIdentity", "cannot reach"} {
		if !strings.Contains(why, want) {
			t.Errorf("reason %q does not say %q", why, want)
		}
	}
}

// noIntents is Parameter Store refusing the send intent (a role without
// ssm:PutParameter on /patchgate/intents/*).
type noIntents struct{ lock.ParameterStore }

func (n noIntents) PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	if strings.HasPrefix(aws.ToString(in.Name), lock.IntentPrefix) {
		return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform ssm:PutParameter", Fault: smithy.FaultClient}
	}
	return n.ParameterStore.PutParameter(ctx, in, optFns...)
}

// Without its write-ahead record a wave is not sent.
func TestNoIntentNoSend(t *testing.T) { synctest.Test(t, testNoIntentNoSend) }

func testNoIntentNoSend(t *testing.T) {
	h := sendHarness(t, sendScenario(4, 6))
	connect := h.opt.Connect
	h.opt.Connect = func(ctx context.Context, accountID, roleARN, region string) (*Clients, error) {
		c, err := connect(ctx, accountID, roleARN, region)
		if err == nil {
			c.Params = noIntents{c.Params}
		}
		return c, err
	}
	r := h.run(context.Background(), mustPolicy(t, sendPolicy))
	stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if r.Status != result.StatusError || stg.Status != result.StatusError || stg.Reasons[0].Code != "send-intent" ||
		!strings.Contains(stg.Reasons[0].Message, lock.IntentName("web")) {
		t.Fatalf("run %s, staging %s %+v", r.Status, stg.Status, stg.Reasons)
	}
	if n := h.sim.Calls()["ssm:SendCommand"]; n != 0 {
		t.Fatalf("%d SendCommands without an intent", n)
	}
}

// A crash in the middle of a wave of three chunks, one of them sent and not
// yet listed: the resume looks for all three at once, resumes the one that
// ran and sends the two that did not, each once.
func TestOpenIntentOfAWaveResumesWhatRanAndSendsTheRest(t *testing.T) {
	synctest.Test(t, testOpenIntentOfAWaveResumesWhatRanAndSendsTheRest)
}

func testOpenIntentOfAWaveResumesWhatRanAndSendsTheRest(t *testing.T) {
	h := sendHarness(t, sendScenario(120, 6))
	h.sim.SetListingDelay(2 * time.Minute)
	cl := ssm.NewFromConfig(awssim.Config(h.ep, "111122223333", "us-east-1"))
	ctx := context.Background()
	var ids []string
	for _, in := range h.sim.Instances("111122223333", "us-east-1")[:120] {
		ids = append(ids, in.ID)
	}
	chunks := Chunks(ids)
	if err := lock.PutIntent(ctx, cl, lock.Intent{RunID: "42", Policy: "web", Phase: "staging", Wave: 1, Chunks: len(chunks),
		Digest: lock.Digest(ids), InstanceIDs: chunks, At: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	out, err := cl.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(DocumentName), InstanceIds: chunks[1],
		Comment: aws.String(Comment("42", "web", "staging", 1, 2)), Parameters: map[string][]string{"Operation": {"Install"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := h.run(ctx, mustPolicy(t, sendPolicy))
	if r.Status != result.StatusPassed {
		t.Fatalf("status %s: %s", r.Status, r.Summary)
	}
	onceEach(t, h.sim, 126)
	stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
	if c := stg.Waves[0].Commands; len(c) != 3 || c[0].Resumed || !c[1].Resumed || c[1].CommandID != aws.ToString(out.Command.CommandId) || c[2].Resumed {
		t.Fatalf("commands %+v", c)
	}
}
