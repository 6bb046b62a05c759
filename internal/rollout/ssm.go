package rollout

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/discover"
	"github.com/patchgate/patchgate/internal/result"
)

// Commands is the part of SSM Run Command the rollout uses.
type Commands interface {
	SendCommand(ctx context.Context, in *ssm.SendCommandInput, optFns ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	ListCommands(ctx context.Context, in *ssm.ListCommandsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
	ListCommandInvocations(ctx context.Context, in *ssm.ListCommandInvocationsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error)
	CancelCommand(ctx context.Context, in *ssm.CancelCommandInput, optFns ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error)
}

// Inventory is how the rollout finds a phase's instances.
type Inventory = discover.Inventory

// Calendars reads SSM Change Calendar states.
type Calendars interface {
	GetCalendarState(ctx context.Context, in *ssm.GetCalendarStateInput, optFns ...func(*ssm.Options)) (*ssm.GetCalendarStateOutput, error)
}

// DocumentName is the SSM document patchgate runs.
const DocumentName = "AWS-RunPatchBaseline"

// Instance is one managed instance from the inventory.
type Instance = discover.Instance

// noRetry turns the SDK's retries off for one call: SendCommand has no
// idempotency token, so a blind retry can patch a fleet twice.
func noRetry(o *ssm.Options) { o.RetryMaxAttempts = 1 }

// listRunCommands pages through AWS-RunPatchBaseline commands sent since
// `since` and returns those whose Comment starts with prefix, by Comment.
func listRunCommands(ctx context.Context, c Commands, doc string, since time.Time, prefix string) (map[string]ssmtypes.Command, error) {
	out := map[string]ssmtypes.Command{}
	p := ssm.NewListCommandsPaginator(c, &ssm.ListCommandsInput{
		MaxResults: aws.Int32(maxListPage),
		Filters:    patchCommandsSince(doc, since),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing commands with ssm:ListCommands: %w", err)
		}
		for _, cmd := range page.Commands {
			c := aws.ToString(cmd.Comment)
			if strings.HasPrefix(c, prefix) {
				// The newest wins should a comment appear twice (it cannot
				// unless someone sends by hand with our comment).
				if prev, ok := out[c]; !ok || aws.ToTime(cmd.RequestedDateTime).After(aws.ToTime(prev.RequestedDateTime)) {
					out[c] = cmd
				}
			}
		}
	}
	return out, nil
}

// commandStates returns the current state of the given commands. They
// are read by a filtered listing, fifty to a page, so that polling never
// costs a call per instance or per command; listed is how many commands
// that listing holds (the wave's sent so far). Fewer commands than its
// pages, a wave's last stragglers, are read by id: a call each.
func commandStates(ctx context.Context, c Commands, doc string, ids []string, since time.Time, listed int) (map[string]ssmtypes.Command, error) {
	out := make(map[string]ssmtypes.Command, len(ids))
	if len(ids) == 1 || len(ids) < (listed+maxListPage-1)/maxListPage {
		for _, id := range ids {
			page, err := c.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id)})
			if err != nil {
				return nil, fmt.Errorf("polling command %s with ssm:ListCommands: %w", id, err)
			}
			for _, cmd := range page.Commands {
				out[aws.ToString(cmd.CommandId)] = cmd
			}
		}
		return out, nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	p := ssm.NewListCommandsPaginator(c, &ssm.ListCommandsInput{
		MaxResults: aws.Int32(maxListPage),
		Filters:    patchCommandsSince(doc, since),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("polling commands with ssm:ListCommands: %w", err)
		}
		for _, cmd := range page.Commands {
			if id := aws.ToString(cmd.CommandId); want[id] {
				out[id] = cmd
			}
		}
	}
	return out, nil
}

// maxListPage is the largest page ListCommands returns.
const maxListPage = 50

// invocations reads every invocation of a command, with plugin details.
func invocations(ctx context.Context, c Commands, commandID string) ([]ssmtypes.CommandInvocation, error) {
	var out []ssmtypes.CommandInvocation
	p := ssm.NewListCommandInvocationsPaginator(c, &ssm.ListCommandInvocationsInput{
		CommandId: aws.String(commandID), Details: true, MaxResults: aws.Int32(50),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading invocations of command %s with ssm:ListCommandInvocations: %w", commandID, err)
		}
		out = append(out, page.CommandInvocations...)
	}
	return out, nil
}

// invocationResult turns one invocation into an instance outcome.
func invocationResult(inv ssmtypes.CommandInvocation) result.Instance {
	status, details := string(inv.Status), aws.ToString(inv.StatusDetails)
	o, _ := Outcome(status, details)
	r := result.Instance{ID: aws.ToString(inv.InstanceId), Name: aws.ToString(inv.InstanceName), Outcome: o, SSMStatus: status, StatusDetails: details}
	var output []string
	for _, pl := range inv.CommandPlugins {
		if t := aws.ToTime(pl.ResponseFinishDateTime); t.After(r.PatchEndedAt) {
			r.PatchEndedAt = t
		}
		if s := aws.ToString(pl.Output); s != "" {
			output = append(output, s)
		}
	}
	if o != result.OutcomeSucceeded && len(output) > 0 {
		r.Error = excerpt(strings.Join(output, "\n"), 400)
	}
	if o == result.OutcomePending {
		// Still running when we stopped looking: not a success.
		r.Outcome = result.OutcomeInconclusive
		r.Error = "invocation still " + details + " when the wave ended"
	}
	return r
}

// cancel asks SSM to cancel commands, best effort. It runs on its own short
// deadline because it is typically called after the run's context is done.
func cancel(c Commands, ids []string, timeout time.Duration) []error {
	ctx, done := context.WithTimeout(context.Background(), timeout)
	defer done()
	var errs []error
	for _, id := range ids {
		if _, err := c.CancelCommand(ctx, &ssm.CancelCommandInput{CommandId: aws.String(id)}); err != nil {
			errs = append(errs, fmt.Errorf("cancelling command %s: %w", id, err))
		}
	}
	return errs
}

// backoff is an exponential delay with full jitter, capped.
func backoff(attempt int, base, capd time.Duration) time.Duration {
	d := base << min(attempt-1, 16)
	if d > capd || d <= 0 {
		d = capd
	}
	return time.Duration(rand64(int64(d)) + 1)
}

func rand64(n int64) int64 { return rand.Int64N(n) }

// patchCommandsSince filters listings to commands of the patch document
// doc (AWS-RunPatchBaseline, or its hooks variant) sent since `since`.
func patchCommandsSince(doc string, since time.Time) []ssmtypes.CommandFilter {
	return []ssmtypes.CommandFilter{
		{Key: ssmtypes.CommandFilterKeyInvokedAfter, Value: aws.String(since.UTC().Format(time.RFC3339))},
		{Key: ssmtypes.CommandFilterKeyDocumentName, Value: aws.String(doc)},
	}
}
