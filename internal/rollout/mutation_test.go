package rollout

// Tests written from `make mutate` survivors (issue #22): each pins one
// behaviour of the send path (sender.send, the reconcile window, lookAll)
// or of its arithmetic that no other test checked. They use an in-process
// fake of Commands and clock.Step, so nothing waits on the wall clock.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/policy"
)

// scriptedSSM is a Commands whose answers the test scripts. calls records
// every call in order ("send", "list", "invocations", "cancel").
type scriptedSSM struct {
	clk   *clock.Step
	calls []string
	// send answers the n-th SendCommand (from 1).
	send func(n int) (*ssm.SendCommandOutput, error)
	// list answers ListCommands; nil lists nothing.
	list func(in *ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error)
	// invs answers ListCommandInvocations; nil lists nothing.
	invs func(in *ssm.ListCommandInvocationsInput) (*ssm.ListCommandInvocationsOutput, error)
	// sendTimes is the clock at each SendCommand.
	sendTimes []time.Time
	// cancelFails names the commands CancelCommand refuses.
	cancelFails map[string]bool
}

// maxScriptedCalls bounds the calls one test may make: a loop that never
// ends (a mutated attempt counter) fails at once instead of spinning on the
// step clock until the test binary times out.
const maxScriptedCalls = 1000

func (f *scriptedSSM) call(op string) {
	if len(f.calls) >= maxScriptedCalls {
		panic("more than 1000 SSM calls: a send or look loop does not end")
	}
	f.calls = append(f.calls, op)
}

func (f *scriptedSSM) count(op string) int {
	n := 0
	for _, c := range f.calls {
		if c == op {
			n++
		}
	}
	return n
}

func (f *scriptedSSM) SendCommand(_ context.Context, _ *ssm.SendCommandInput, _ ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	f.call("send")
	f.sendTimes = append(f.sendTimes, f.clk.Now())
	return f.send(f.count("send"))
}

func (f *scriptedSSM) ListCommands(_ context.Context, in *ssm.ListCommandsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	f.call("list")
	if f.list == nil {
		return &ssm.ListCommandsOutput{}, nil
	}
	return f.list(in)
}

func (f *scriptedSSM) ListCommandInvocations(_ context.Context, in *ssm.ListCommandInvocationsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error) {
	f.call("invocations")
	if f.invs == nil {
		return &ssm.ListCommandInvocationsOutput{}, nil
	}
	return f.invs(in)
}

func (f *scriptedSSM) CancelCommand(_ context.Context, in *ssm.CancelCommandInput, _ ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error) {
	f.call("cancel")
	if f.cancelFails[aws.ToString(in.CommandId)] {
		return nil, errors.New("cancel refused")
	}
	return &ssm.CancelCommandOutput{}, nil
}

var mutStart = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func opErr(err error) error {
	return &smithy.OperationError{ServiceID: "SSM", OperationName: "SendCommand", Err: err}
}

var (
	errThrottled = opErr(&smithy.GenericAPIError{Code: "ThrottlingException", Fault: smithy.FaultClient})
	errRefused   = opErr(&smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}})
	errRejected  = opErr(&smithy.GenericAPIError{Code: "ValidationException", Fault: smithy.FaultClient})
	errAmbiguous = opErr(&smithy.GenericAPIError{Code: "InternalServerError", Fault: smithy.FaultServer})
	errListing   = errors.New("listing unavailable")
)

func sentOK(id string) (*ssm.SendCommandOutput, error) {
	return &ssm.SendCommandOutput{Command: &ssmtypes.Command{CommandId: aws.String(id)}}, nil
}

func newScripted(send func(n int) (*ssm.SendCommandOutput, error)) (*scriptedSSM, *sender) {
	clk := clock.NewStep(mutStart)
	f := &scriptedSSM{clk: clk, send: send}
	s := &sender{ssm: f, clock: clk, log: slog.New(slog.NewTextHandler(io.Discard, nil)), window: 3 * time.Minute, doc: DocumentName}
	return f, s
}

func sendIn() *ssm.SendCommandInput {
	return &ssm.SendCommandInput{Comment: aws.String("patchgate run-1 web w1 c1"), InstanceIds: []string{"i-1", "i-2"}, DocumentName: aws.String(DocumentName)}
}

// SendCommand is attempted a bounded number of times, and how many depends
// on why it failed: throttling sendAttempts times, a refused connection
// three times, a rejection once; each retry waits a backoff first, and an
// accepted send ends at once with its id.
func TestSendAttemptsByCause(t *testing.T) {
	for _, tc := range []struct {
		name      string
		send      func(n int) (*ssm.SendCommandOutput, error)
		wantSends int
		wantID    string
		wantErr   string
	}{
		{"throttled every time", func(int) (*ssm.SendCommandOutput, error) { return nil, errThrottled }, sendAttempts, "", "failed 10 times"},
		{"throttled twice then accepted", func(n int) (*ssm.SendCommandOutput, error) {
			if n <= 2 {
				return nil, errThrottled
			}
			return sentOK("cmd-3")
		}, 3, "cmd-3", ""},
		{"throttled nine times then accepted", func(n int) (*ssm.SendCommandOutput, error) {
			if n < sendAttempts {
				return nil, errThrottled
			}
			return sentOK("cmd-10")
		}, sendAttempts, "cmd-10", ""},
		{"connection refused", func(int) (*ssm.SendCommandOutput, error) { return nil, errRefused }, 3, "", "ssm:SendCommand"},
		{"refused twice then accepted", func(n int) (*ssm.SendCommandOutput, error) {
			if n <= 2 {
				return nil, errRefused
			}
			return sentOK("cmd-r")
		}, 3, "cmd-r", ""},
		{"rejected", func(int) (*ssm.SendCommandOutput, error) { return nil, errRejected }, 1, "", "ValidationException"},
		{"accepted", func(int) (*ssm.SendCommandOutput, error) { return sentOK("cmd-1") }, 1, "cmd-1", ""},
		{"answered without an id", func(int) (*ssm.SendCommandOutput, error) {
			return &ssm.SendCommandOutput{Command: &ssmtypes.Command{}}, nil
		}, 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, s := newScripted(tc.send)
			if tc.name == "answered without an id" {
				// An empty answer is ambiguous: it is looked for, not
				// blindly resent. Listing finds it.
				f.list = func(*ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error) {
					return &ssm.ListCommandsOutput{Commands: []ssmtypes.Command{{CommandId: aws.String("cmd-seen"), Comment: sendIn().Comment}}}, nil
				}
				tc.wantSends, tc.wantID = 1, "cmd-seen"
			}
			res, err := s.send(context.Background(), sendIn())
			if got := f.count("send"); got != tc.wantSends {
				t.Fatalf("SendCommand called %d times, want %d", got, tc.wantSends)
			}
			if res.id != tc.wantID {
				t.Fatalf("id %q, want %q", res.id, tc.wantID)
			}
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			// A retry after a refusal or throttling always waits (at least
			// 1ns, at most 20s): never a tight loop, never a long stall.
			for i := 1; i < len(f.sendTimes); i++ {
				gap := f.sendTimes[i].Sub(f.sendTimes[i-1])
				if gap <= 0 || gap > 20*time.Second {
					t.Fatalf("send %d came %v after the previous one, want (0, 20s]", i+1, gap)
				}
			}
			if tc.name != "answered without an id" && f.count("list")+f.count("invocations") != 0 {
				t.Fatalf("a send that was not ambiguous looked for its command: %v", f.calls)
			}
		})
	}
}

// An ambiguous send (a 5xx) is looked for before anything else; found, it
// is tracked as reconciled and never sent again.
func TestAmbiguousSendFoundIsNotResent(t *testing.T) {
	f, s := newScripted(func(int) (*ssm.SendCommandOutput, error) { return nil, errAmbiguous })
	looks := 0
	f.list = func(in *ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error) {
		looks++
		if looks < 3 { // eventually consistent: missing from the first two listings
			return &ssm.ListCommandsOutput{}, nil
		}
		return &ssm.ListCommandsOutput{Commands: []ssmtypes.Command{
			{CommandId: aws.String("cmd-other"), Comment: aws.String("patchgate run-1 web w1 c10")},
			{CommandId: aws.String("cmd-amb"), Comment: sendIn().Comment},
		}}, nil
	}
	res, err := s.send(context.Background(), sendIn())
	if err != nil {
		t.Fatal(err)
	}
	if res.id != "cmd-amb" || !res.reconciled || res.resent || res.unknown != "" {
		t.Fatalf("result %+v, want cmd-amb reconciled", res)
	}
	if got := f.count("send"); got != 1 {
		t.Fatalf("SendCommand called %d times, want 1", got)
	}
	if f.calls[0] != "send" || f.calls[1] != "list" {
		t.Fatalf("calls %v: the ambiguous send must be followed by a look", f.calls)
	}
	// Found within the window: the looks stopped at once.
	if el := f.clk.Now().Sub(mutStart); el >= s.window {
		t.Fatalf("reconciling took %v of clock, want less than the window", el)
	}
}

// An ambiguous send with no trace in either listing is sent again only
// after a look made once the whole window has passed, and only once.
func TestAmbiguousSendAbsentIsResentAfterTheWindow(t *testing.T) {
	f, s := newScripted(func(n int) (*ssm.SendCommandOutput, error) {
		if n == 1 {
			return nil, errAmbiguous
		}
		return sentOK("cmd-2")
	})
	var lastLook time.Time
	f.list = func(*ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error) {
		lastLook = f.clk.Now()
		return &ssm.ListCommandsOutput{}, nil
	}
	res, err := s.send(context.Background(), sendIn())
	if err != nil {
		t.Fatal(err)
	}
	if got := f.count("send"); got != 2 {
		t.Fatalf("SendCommand called %d times, want 2 (calls %v)", got, f.calls)
	}
	if res.id != "cmd-2" || !res.resent || res.reconciled {
		t.Fatalf("result %+v, want cmd-2 resent", res)
	}
	if res.resentAfter < s.window {
		t.Fatalf("resent after %v, want at least the window %v", res.resentAfter, s.window)
	}
	// The deciding look is soon after the window's end, not long past it.
	if res.resentAfter > s.window+time.Minute {
		t.Fatalf("resent after %v, want the deciding look soon after the %v window", res.resentAfter, s.window)
	}
	if d := lastLook.Sub(mutStart); d < s.window {
		t.Fatalf("last look %v after the send, before the window's end", d)
	}
	if f.sendTimes[1].Sub(f.sendTimes[0]) < s.window {
		t.Fatalf("resent %v after the first send, inside the window", f.sendTimes[1].Sub(f.sendTimes[0]))
	}
	// Each look reads the invocations of an instance too: SSM lists them
	// separately and one may show before the command does.
	if f.count("invocations") == 0 {
		t.Fatal("no look read the instances' invocations")
	}
}

// When SSM cannot be read after an ambiguous send, the send is unknown:
// never resent, and given up after two windows.
func TestAmbiguousSendUnreadableIsUnknown(t *testing.T) {
	f, s := newScripted(func(int) (*ssm.SendCommandOutput, error) { return nil, errAmbiguous })
	f.list = func(*ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error) { return nil, errListing }
	res, err := s.send(context.Background(), sendIn())
	if err != nil {
		t.Fatal(err)
	}
	if got := f.count("send"); got != 1 {
		t.Fatalf("SendCommand called %d times, want 1", got)
	}
	if res.unknown == "" || res.id != "" || res.resent {
		t.Fatalf("result %+v, want unknown", res)
	}
	for _, want := range []string{"i-1, i-2", "listing unavailable", "3m0s"} {
		if !strings.Contains(res.unknown, want) {
			t.Errorf("unknown %q does not mention %q", res.unknown, want)
		}
	}
	// After the window failed looks come a second apart, so the first
	// look at or past two windows is exactly at two windows: it gives up
	// there.
	if el := f.clk.Now().Sub(mutStart); el != 2*s.window {
		t.Fatalf("gave up after %v of clock, want at two windows (%v)", el, 2*s.window)
	}
}

// A look that fails after the window has passed proves nothing: only a
// successful look after the window is a proof of absence.
func TestReconcileFailedLookAfterWindowIsNotAbsence(t *testing.T) {
	f, s := newScripted(nil)
	f.list = func(*ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error) {
		if f.clk.Now().Sub(mutStart) >= s.window {
			return nil, errListing
		}
		return &ssm.ListCommandsOutput{}, nil
	}
	cmd, absent, err := s.reconcile(context.Background(), "c", []string{"i-1"}, mutStart)
	if cmd != nil || absent || !errors.Is(err, errListing) {
		t.Fatalf("cmd %v absent %v err %v, want not absent with the listing error", cmd, absent, err)
	}
}

// Looks back off 2s, 4s, 8s, ... capped at 30s and never past the window's
// end (the last sleep is cut to 10s so a look lands on it): the clock
// reads of the listings are fixed.
func TestReconcileLookSchedule(t *testing.T) {
	f, s := newScripted(nil)
	s.window = 100 * time.Second
	var at []time.Duration
	f.list = func(*ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error) {
		at = append(at, f.clk.Now().Sub(mutStart))
		return &ssm.ListCommandsOutput{}, nil
	}
	_, absent, err := s.reconcile(context.Background(), "c", nil, mutStart)
	if err != nil || !absent {
		t.Fatalf("absent %v err %v, want absent", absent, err)
	}
	want := []time.Duration{0, 2 * time.Second, 6 * time.Second, 14 * time.Second, 30 * time.Second, 60 * time.Second, 90 * time.Second, 100 * time.Second}
	if len(at) != len(want) {
		t.Fatalf("looks at %v, want %v", at, want)
	}
	for i := range want {
		if at[i] != want[i] {
			t.Fatalf("looks at %v, want %v", at, want)
		}
	}
}

// lookAll finds a command by its instance's invocations when the command
// listing does not show it yet, with the command's own record when SSM has
// it, and rotates through the instances look by look.
func TestLookAllByInvocation(t *testing.T) {
	f, s := newScripted(nil)
	var asked []string
	f.invs = func(in *ssm.ListCommandInvocationsInput) (*ssm.ListCommandInvocationsOutput, error) {
		asked = append(asked, aws.ToString(in.InstanceId))
		return &ssm.ListCommandInvocationsOutput{CommandInvocations: []ssmtypes.CommandInvocation{
			{CommandId: aws.String("cmd-x"), Comment: aws.String("someone else's")},
			{CommandId: aws.String("cmd-b"), Comment: aws.String("pg w1 c2"), InstanceId: in.InstanceId},
		}}, nil
	}
	f.list = func(in *ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error) {
		if aws.ToString(in.CommandId) == "cmd-b" {
			return &ssm.ListCommandsOutput{Commands: []ssmtypes.Command{{CommandId: aws.String("cmd-b"), Comment: aws.String("pg w1 c2"),
				Parameters: map[string][]string{"SnapshotId": {"snap"}}}}}, nil
		}
		// The listing by filter shows the first chunk only.
		return &ssm.ListCommandsOutput{Commands: []ssmtypes.Command{{CommandId: aws.String("cmd-a"), Comment: aws.String("pg w1 c1")}}}, nil
	}
	pend := []pendingSend{{comment: "pg w1 c1", ids: []string{"i-a"}}, {comment: "pg w1 c2", ids: []string{"i-1", "i-2", "i-3"}}}
	for look, wantID := range []string{"i-1", "i-2", "i-3", "i-1"} {
		found := map[string]ssmtypes.Command{}
		if err := s.lookAll(context.Background(), pend, look, mutStart, found); err != nil {
			t.Fatal(err)
		}
		if asked[look] != wantID {
			t.Fatalf("look %d read the invocations of %s, want %s", look, asked[look], wantID)
		}
		if len(found) != 2 || aws.ToString(found["pg w1 c1"].CommandId) != "cmd-a" || aws.ToString(found["pg w1 c2"].CommandId) != "cmd-b" {
			t.Fatalf("found %v", found)
		}
		if found["pg w1 c2"].Parameters["SnapshotId"] == nil {
			t.Fatal("the command found by invocation is not the command's own record")
		}
		if _, ok := found["someone else's"]; ok {
			t.Fatal("an unrelated command was taken for ours")
		}
	}
	// When everything is found by the listing, no invocations are read.
	asked = nil
	found := map[string]ssmtypes.Command{}
	if err := s.lookAll(context.Background(), pend[:1], 0, mutStart, found); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 0 {
		t.Fatalf("read invocations of %v though the listing found every command", asked)
	}
}

// The listing's prefix is the longest common prefix of the pending
// comments, so one listing serves all of them.
func TestLookAllListsByCommonPrefix(t *testing.T) {
	f, s := newScripted(nil)
	f.list = func(*ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error) {
		return &ssm.ListCommandsOutput{Commands: []ssmtypes.Command{
			{CommandId: aws.String("1"), Comment: aws.String("run w1 c1")},
			{CommandId: aws.String("2"), Comment: aws.String("run w1 c2")},
			{CommandId: aws.String("3"), Comment: aws.String("run w2 c1")},
		}}, nil
	}
	found := map[string]ssmtypes.Command{}
	pend := []pendingSend{{comment: "run w1 c1"}, {comment: "run w1 c2"}, {comment: "run w2 c1"}}
	if err := s.lookAll(context.Background(), pend, 0, mutStart, found); err != nil {
		t.Fatal(err)
	}
	if len(found) != 3 {
		t.Fatalf("found %d of 3 commands with one listing: %v", len(found), found)
	}
}

// backoff: full jitter in [1ns, min(base<<(attempt-1), cap)].
func TestBackoffBounds(t *testing.T) {
	for _, tc := range []struct {
		attempt   int
		base, cap time.Duration
		max       time.Duration
	}{
		{1, time.Second, 20 * time.Second, time.Second},
		{2, time.Second, 20 * time.Second, 2 * time.Second},
		{3, time.Second, 20 * time.Second, 4 * time.Second},
		{5, time.Second, 20 * time.Second, 16 * time.Second},
		{6, time.Second, 20 * time.Second, 20 * time.Second},
		{100, time.Second, 20 * time.Second, 20 * time.Second},
		// base<<2 overflows to 0: capped, not zero.
		{3, 1 << 62, time.Second, time.Second},
		{1, 2 * time.Second, 2 * time.Second, 2 * time.Second},
		// A 1ns delay: jitter can only draw 0, and the result is still 1ns.
		{1, 1, 1, 1},
	} {
		var top time.Duration
		for range 2000 {
			d := backoff(tc.attempt, tc.base, tc.cap)
			if d < 1 || d > tc.max {
				t.Fatalf("backoff(%d, %v, %v) = %v, want in [1ns, %v]", tc.attempt, tc.base, tc.cap, d, tc.max)
			}
			top = max(top, d)
		}
		// Full jitter reaches near the top: 2000 draws all below half of
		// it would happen with probability 2^-2000.
		if top <= tc.max/2 {
			t.Fatalf("backoff(%d, %v, %v) never exceeded %v in 2000 draws", tc.attempt, tc.base, tc.cap, tc.max/2)
		}
	}
}

func TestBackoffFixed(t *testing.T) {
	for _, tc := range []struct {
		step int
		want time.Duration
	}{
		{0, 2 * time.Second}, {1, 4 * time.Second}, {2, 8 * time.Second}, {3, 16 * time.Second},
		{4, 30 * time.Second}, {16, 30 * time.Second}, {17, 30 * time.Second}, {1000, 30 * time.Second},
	} {
		if got := backoffFixed(tc.step, 2*time.Second, 30*time.Second); got != tc.want {
			t.Errorf("backoffFixed(%d) = %v, want %v", tc.step, got, tc.want)
		}
	}
	if got := backoffFixed(0, 30*time.Second, 30*time.Second); got != 30*time.Second {
		t.Errorf("backoffFixed at the cap = %v", got)
	}
	if got := backoffFixed(2, 1<<62, time.Minute); got != time.Minute {
		t.Errorf("overflowing backoffFixed = %v, want the cap", got)
	}
}

// concurrencyPlan: a count is split into commands of at most 50 instances
// (SSM's limit per SendCommand), all the commands together never running
// more than the count; a percentage goes to every command as it is.
func TestConcurrencyPlan(t *testing.T) {
	for _, tc := range []struct {
		mc       policy.Percent
		chunks   int
		per      string
		inflight int
	}{
		{policy.Percent{Value: 10, IsPercent: true}, 4, "10%", 4},
		{policy.Percent{Value: 0}, 3, "1", 1},
		{policy.Percent{Value: 1}, 3, "1", 1},
		{policy.Percent{Value: 30}, 3, "30", 1},
		{policy.Percent{Value: 49}, 3, "49", 1},
		{policy.Percent{Value: 50}, 3, "50", 1},
		{policy.Percent{Value: 51}, 3, "50", 1},
		{policy.Percent{Value: 100}, 3, "50", 2},
		{policy.Percent{Value: 149}, 3, "50", 2},
		{policy.Percent{Value: 150}, 3, "50", 3},
	} {
		per, inflight := concurrencyPlan(tc.mc, tc.chunks)
		if per != tc.per || inflight != tc.inflight {
			t.Errorf("concurrencyPlan(%v, %d) = %q, %d; want %q, %d", tc.mc, tc.chunks, per, inflight, tc.per, tc.inflight)
		}
	}
}

// perRound's edges (pace_test.go has the common cases): a count above
// the instances is all of them, a zero count still one.
func TestPerRoundEdges(t *testing.T) {
	for _, tc := range []struct {
		mc   policy.Percent
		n    int
		want int
	}{
		{policy.Percent{Value: 10}, 10, 10},
		{policy.Percent{Value: 11}, 10, 10},
		{policy.Percent{Value: 9}, 10, 9},
		{policy.Percent{Value: 0}, 10, 1},
		{policy.Percent{Value: 0, IsPercent: true}, 10, 1},
	} {
		if got := perRound(tc.mc, tc.n); got != tc.want {
			t.Errorf("perRound(%v, %d) = %d, want %d", tc.mc, tc.n, got, tc.want)
		}
	}
}

// A command seen only by an invocation, which SSM does not yet list by id,
// is tracked from the invocation's own fields.
func TestLookAllInvocationOnly(t *testing.T) {
	f, s := newScripted(nil)
	requested := mutStart.Add(time.Second)
	f.invs = func(in *ssm.ListCommandInvocationsInput) (*ssm.ListCommandInvocationsOutput, error) {
		return &ssm.ListCommandInvocationsOutput{CommandInvocations: []ssmtypes.CommandInvocation{
			{CommandId: aws.String("cmd-b"), Comment: aws.String("pg c2"), DocumentName: aws.String(DocumentName), RequestedDateTime: &requested},
		}}, nil
	}
	found := map[string]ssmtypes.Command{}
	if err := s.lookAll(context.Background(), []pendingSend{{comment: "pg c2", ids: []string{"i-1"}}}, 0, mutStart, found); err != nil {
		t.Fatal(err)
	}
	c, ok := found["pg c2"]
	if !ok || aws.ToString(c.CommandId) != "cmd-b" || aws.ToString(c.Comment) != "pg c2" ||
		aws.ToString(c.DocumentName) != DocumentName || !aws.ToTime(c.RequestedDateTime).Equal(requested) {
		t.Fatalf("found %+v", found)
	}
}

// cancel tries every command and reports exactly the ones it could not
// cancel, by id.
func TestCancelReportsEachFailure(t *testing.T) {
	f, _ := newScripted(nil)
	f.cancelFails = map[string]bool{"c2": true}
	errs := cancel(f, []string{"c1", "c2", "c3"}, time.Second)
	if f.count("cancel") != 3 {
		t.Fatalf("CancelCommand called %d times, want 3", f.count("cancel"))
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "c2") {
		t.Fatalf("errors %v, want one naming c2", errs)
	}
	if errs := cancel(f, []string{"c1", "c3"}, time.Second); len(errs) != 0 {
		t.Fatalf("errors %v cancelling commands SSM accepted", errs)
	}
}

// lookAll reads the invocations of the first pending send that has
// instances, skipping one whose instances are not known.
func TestLookAllSkipsSendsWithoutInstances(t *testing.T) {
	f, s := newScripted(nil)
	var asked []string
	f.invs = func(in *ssm.ListCommandInvocationsInput) (*ssm.ListCommandInvocationsOutput, error) {
		asked = append(asked, aws.ToString(in.InstanceId))
		return &ssm.ListCommandInvocationsOutput{}, nil
	}
	pend := []pendingSend{{comment: "pg c1"}, {comment: "pg c2", ids: []string{"i-9"}}}
	if err := s.lookAll(context.Background(), pend, 0, mutStart, map[string]ssmtypes.Command{}); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != "i-9" {
		t.Fatalf("read the invocations of %v, want i-9", asked)
	}
}
