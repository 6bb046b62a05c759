package awssim

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"github.com/patchgate/patchgate/internal/clock"
)

func faultSim(t *testing.T) (*Sim, *ssm.Client, *clock.Step) {
	t.Helper()
	clk := clock.NewStep(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC))
	sc := &Scenario{Accounts: []string{"111122223333"}, Groups: []Group{{Region: "us-east-1", Count: 3, Name: "web", Tags: map[string]string{"App": "web"}}}}
	s := New(sc, clk)
	srv := httptest.NewServer(s) // the manual clock needs no bubble
	t.Cleanup(srv.Close)
	return s, ssm.NewFromConfig(Config(srv.URL, "111122223333", "us-east-1")), clk
}

func once(o *ssm.Options) { o.RetryMaxAttempts = 1 }

func sendTo(ids []string, comment string) *ssm.SendCommandInput {
	return &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPatchBaseline"), InstanceIds: ids, Comment: aws.String(comment),
		Parameters: map[string][]string{"Operation": {"Install"}}}
}

func ids(s *Sim) []string {
	var out []string
	for _, in := range s.Instances("111122223333", "us-east-1") {
		out = append(out, in.ID)
	}
	return out
}

// A new command is missing from both listings until the listing delay has
// passed, while its id is already known to the sender.
func TestListingDelayHidesNewCommands(t *testing.T) {
	s, c, clk := faultSim(t)
	ctx := context.Background()
	s.SetListingDelay(90 * time.Second)
	out, err := c.SendCommand(ctx, sendTo(ids(s), "c1"))
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Command.CommandId)
	since := aws.String(clk.Now().Add(-time.Minute).Format(time.RFC3339))
	list := func() (int, int) {
		lc, err := c.ListCommands(ctx, &ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{{Key: ssmtypes.CommandFilterKeyInvokedAfter, Value: since}}})
		if err != nil {
			t.Fatal(err)
		}
		li, err := c.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{InstanceId: aws.String(ids(s)[1]),
			Filters: []ssmtypes.CommandFilter{{Key: ssmtypes.CommandFilterKeyInvokedAfter, Value: since}}})
		if err != nil {
			t.Fatal(err)
		}
		return len(lc.Commands), len(li.CommandInvocations)
	}
	if n, m := list(); n != 0 || m != 0 {
		t.Fatalf("listed %d commands, %d invocations right after the send; want none", n, m)
	}
	var ice *ssmtypes.InvalidCommandId
	if _, err := c.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id)}, once); !errors.As(err, &ice) {
		t.Fatalf("by id before the delay: want InvalidCommandId, got %v", err)
	}
	clk.Advance(89 * time.Second)
	if n, _ := list(); n != 0 {
		t.Fatalf("listed at 89 s")
	}
	clk.Advance(time.Second)
	n, m := list()
	if n != 1 || m != 1 {
		t.Fatalf("at 90 s: %d commands, %d invocations of instance 2, want 1 and 1", n, m)
	}
}

// A truncated 2xx: the SDK reports a response it could not read, and the
// command exists all the same.
func TestTruncatedSendCommandTakesEffect(t *testing.T) {
	s, c, _ := faultSim(t)
	s.TruncateResponse("ssm:SendCommand", 1)
	_, err := c.SendCommand(context.Background(), sendTo(ids(s), "c1"), once)
	var de *smithy.DeserializationError
	if !errors.As(err, &de) {
		t.Fatalf("want a deserialization error, got %v", err)
	}
	if n := len(s.Sends()); n != 1 {
		t.Fatalf("%d commands created, want 1", n)
	}
	// The fault is used up: the next call answers whole.
	if _, err := c.SendCommand(context.Background(), sendTo(ids(s), "c2"), once); err != nil {
		t.Fatal(err)
	}
}

// A server error takes no effect.
func TestServerErrorTakesNoEffect(t *testing.T) {
	s, c, _ := faultSim(t)
	s.ServerError("ssm:SendCommand", 1)
	_, err := c.SendCommand(context.Background(), sendTo(ids(s), "c1"), once)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InternalServerError" || ae.ErrorFault() != smithy.FaultServer {
		t.Fatalf("want InternalServerError (server fault), got %v", err)
	}
	if n := len(s.Sends()); n != 0 {
		t.Fatalf("%d commands created, want 0", n)
	}
}

// Above its rate an operation answers ThrottlingException; the bucket
// refills with clock time.
func TestRateLimitThrottlesAboveTheRate(t *testing.T) {
	s, c, clk := faultSim(t)
	s.RateLimit("ssm:SendCommand", 2, 2)
	ctx := context.Background()
	ok, throttled := 0, 0
	for i := 0; i < 5; i++ {
		_, err := c.SendCommand(ctx, sendTo(ids(s)[:1], "c"), once)
		var ae smithy.APIError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException":
			throttled++
		default:
			t.Fatal(err)
		}
	}
	if ok != 2 || throttled != 3 || s.Throttled()["ssm:SendCommand"] != 3 || len(s.Sends()) != 2 {
		t.Fatalf("at once: %d accepted, %d throttled (sim counts %d), %d created; want 2, 3, 3, 2", ok, throttled, s.Throttled()["ssm:SendCommand"], len(s.Sends()))
	}
	clk.Advance(500 * time.Millisecond) // one token back
	if _, err := c.SendCommand(ctx, sendTo(ids(s)[:1], "c"), once); err != nil {
		t.Fatalf("after half a second at 2/s: %v", err)
	}
	if _, err := c.SendCommand(ctx, sendTo(ids(s)[:1], "c"), once); err == nil {
		t.Fatal("a second call in the same instant must be throttled")
	}
	s.RateLimit("ssm:SendCommand", 0, 0)
	if _, err := c.SendCommand(ctx, sendTo(ids(s)[:1], "c"), once); err != nil {
		t.Fatalf("limit removed: %v", err)
	}
}

// Connections to the closed endpoint are refused.
func TestClosedEndpointRefuses(t *testing.T) {
	ep, err := ClosedEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	c := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	if _, err := c.ListCommands(context.Background(), &ssm.ListCommandsInput{}, once); err == nil {
		t.Fatal("a closed endpoint answered")
	}
}
