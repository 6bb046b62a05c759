package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/sync/errgroup"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/rollout"
	"github.com/patchgate/patchgate/internal/verify"
)

// The competent script is what a careful engineer writes with the SDK in
// an afternoon, the reference patchgate must beat by a wide margin. Per
// account-region (all in parallel) and per phase, in the policy's order:
//
//  1. list the phase's instances: DescribeInstanceInformation with the
//     phase's tag filters, 50 a page, keeping those whose agent is Online;
//  2. per wave (the policy's cuts of that list): SendCommand with explicit
//     ids, 50 at a time, with the phase's MaxConcurrency and MaxErrors;
//  3. every 60 s, ListCommands for each of the wave's commands still
//     running (filtered by CommandId) until each is terminal; a wave whose
//     failed invocations exceed the phase's MaxErrors stops the rollout;
//  4. after the phase's waves, DescribeInstancePatchStates 50 ids a call:
//     more instances with missing or failed patches than MaxErrors allows
//     fails the phase;
//  5. wait Inspector's 30-minute inventory cadence plus 10 minutes of
//     margin for the rescans, then ListFindings for the phase's instances
//     whose patch states are clean (resourceId filters hold at most 10
//     ids), ACTIVE, a fix available, at or above the phase's severity, 100
//     a page: any finding fails the phase;
//  6. soak, then the next phase.
//
// It trusts the listings (no reconciliation, no lock, no evidence kept),
// so it is cheaper per instance than a tool that must never send twice.
type scriptRun struct{ *reference }

// scriptPoll is the script's polling interval, and scriptRescanWait how
// long it gives Inspector to rescan (its documented inventory cadence).
const (
	scriptPoll       = 60 * time.Second
	scriptRescanWait = 40 * time.Minute // the 30 min cadence, its jitter and a margin
	findingIDBatch   = 10               // ListFindings: at most 10 entries per filter
)

func runScript(ctx context.Context, factory *awsapi.Factory, pol *policy.Policy) (*scriptRun, error) {
	plan, err := policy.Compile(pol)
	if err != nil {
		return nil, fmt.Errorf("compiling the benchmark policy for the script: %w", err)
	}
	s := &scriptRun{newReference()}
	g, ctx := errgroup.WithContext(ctx)
	for _, acct := range pol.Spec.Accounts {
		for _, region := range pol.Spec.Regions {
			g.Go(func() error {
				cfg, _, err := factory.Config(ctx, acct.ID, acct.RoleArn, region)
				if err != nil {
					return err
				}
				key := [2]string{acct.ID, region}
				return s.target(ctx, ssm.NewFromConfig(cfg), inspector2.NewFromConfig(cfg), plan, key)
			})
		}
	}
	return s, g.Wait()
}

func (s *scriptRun) target(ctx context.Context, c *ssm.Client, insp *inspector2.Client, plan *policy.Rollout, key [2]string) error {
	for i := range plan.Stages {
		st := &plan.Stages[i]
		ids, err := listOnline(ctx, c, st.Targets.Tags)
		if err != nil {
			return err
		}
		limit := st.ErrorLimit(len(ids))
		failed, done := 0, 0
		var lastEnd time.Time
		for _, end := range st.WaveEnds(len(ids)) {
			if end == done {
				continue
			}
			f, err := s.wave(ctx, c, st, key, ids[done:end])
			if err != nil {
				return err
			}
			failed += f
			done = end
			lastEnd = time.Now()
			if failed > limit {
				s.fail(key, st.Name, fmt.Sprintf("%d invocations failed, MaxErrors allows %d", failed, limit))
				return nil
			}
		}
		if len(ids) == 0 {
			continue
		}
		patched := ids
		if st.Compliance {
			bad, err := noncompliant(ctx, c, ids)
			if err != nil {
				return err
			}
			if len(bad) > limit {
				s.fail(key, st.Name, fmt.Sprintf("%d instances still miss patches, MaxErrors allows %d", len(bad), limit))
				return nil
			}
			// A failed install is already counted; its findings are not
			// the patch's doing.
			patched = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return bad[id] })
		}
		if st.Inspector.Enabled {
			wait := time.Until(lastEnd.Add(scriptRescanWait))
			time.Sleep(wait)
			// Counted as work, like patchgate's wait for the rescans, though
			// the rescans may come sooner: this favours the script's
			// overhead, never patchgate's.
			s.waited(key, wait)
			n, err := blockingFindings(ctx, insp, st.Inspector, patched)
			if err != nil {
				return err
			}
			if n > 0 {
				s.fail(key, st.Name, fmt.Sprintf("%d findings at or above %s with a fix remain", n, st.Inspector.FailOnSeverity))
				return nil
			}
		}
		if st.Soak > 0 {
			time.Sleep(st.Soak)
			s.waited(key, st.Soak)
		}
	}
	return nil
}

// listOnline pages through the instances with the tags, keeping those
// whose agent is Online.
func listOnline(ctx context.Context, c *ssm.Client, tags map[string]string) ([]string, error) {
	var filters []ssmtypes.InstanceInformationStringFilter
	for k, v := range tags {
		filters = append(filters, ssmtypes.InstanceInformationStringFilter{Key: aws.String("tag:" + k), Values: []string{v}})
	}
	var ids []string
	p := ssm.NewDescribeInstanceInformationPaginator(c, &ssm.DescribeInstanceInformationInput{Filters: filters, MaxResults: aws.Int32(50)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing instances with ssm:DescribeInstanceInformation: %w", err)
		}
		for _, in := range page.InstanceInformationList {
			if in.PingStatus == ssmtypes.PingStatusOnline {
				ids = append(ids, aws.ToString(in.InstanceId))
			}
		}
	}
	return ids, nil
}

// wave sends to ids and polls each command until it ends; it returns how
// many invocations failed (errors and delivery timeouts).
func (s *scriptRun) wave(ctx context.Context, c *ssm.Client, st *policy.Stage, key [2]string, ids []string) (int, error) {
	pending := map[string]bool{}
	var sent []string
	for _, chunk := range rollout.Chunks(ids) {
		out, err := c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(rollout.DocumentName), InstanceIds: chunk,
			Parameters:     map[string][]string{"Operation": {"Install"}, "RebootOption": {"RebootIfNeeded"}},
			MaxConcurrency: aws.String(st.MaxConcurrency.String()), MaxErrors: aws.String(st.MaxErrors.String())})
		if err != nil {
			return 0, fmt.Errorf("script: SendCommand: %w", err)
		}
		id := aws.ToString(out.Command.CommandId)
		pending[id] = true
		sent = append(sent, id)
		s.sentCommand(key, id)
	}
	failed := 0
	for len(pending) > 0 {
		time.Sleep(scriptPoll)
		// In the order sent, as a script walks its list: each call takes
		// simulated time, so a map's random order would change which
		// commands a round sees ended, and the figures from run to run.
		for _, id := range sent {
			if !pending[id] {
				continue
			}
			out, err := c.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id)})
			if err != nil {
				return 0, fmt.Errorf("script: ListCommands %s: %w", id, err)
			}
			if len(out.Commands) == 0 {
				continue // not listed yet: SSM's listings lag a send
			}
			cmd := out.Commands[0]
			switch cmd.Status {
			case ssmtypes.CommandStatusPending, ssmtypes.CommandStatusInProgress, ssmtypes.CommandStatusCancelling:
				continue
			}
			delete(pending, id)
			failed += int(cmd.ErrorCount + cmd.DeliveryTimedOutCount)
			s.addPatched(int(cmd.CompletedCount - cmd.ErrorCount - cmd.DeliveryTimedOutCount))
		}
	}
	return failed, nil
}

// noncompliant reads patch states 50 ids a call and returns the instances
// with missing or failed patches.
func noncompliant(ctx context.Context, c *ssm.Client, ids []string) (map[string]bool, error) {
	bad := map[string]bool{}
	for _, chunk := range rollout.Chunks(ids) {
		out, err := c.DescribeInstancePatchStates(ctx, &ssm.DescribeInstancePatchStatesInput{InstanceIds: chunk, MaxResults: aws.Int32(50)})
		if err != nil {
			return nil, fmt.Errorf("script: DescribeInstancePatchStates: %w", err)
		}
		for _, ps := range out.InstancePatchStates {
			if ps.MissingCount > 0 || ps.FailedCount > 0 {
				bad[aws.ToString(ps.InstanceId)] = true
			}
		}
	}
	return bad, nil
}

// blockingFindings lists, 10 instances at a time, the findings the gate
// fails on and counts them.
func blockingFindings(ctx context.Context, c *inspector2.Client, gate policy.Inspection, ids []string) (int, error) {
	eq := func(vs ...string) []insptypes.StringFilter {
		out := make([]insptypes.StringFilter, len(vs))
		for i, v := range vs {
			out[i] = insptypes.StringFilter{Comparison: insptypes.StringComparisonEquals, Value: aws.String(v)}
		}
		return out
	}
	var sev []string
	for _, s := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED"} {
		if verify.AtLeast(s, gate.FailOnSeverity) {
			sev = append(sev, s)
		}
	}
	n := 0
	for start := 0; start < len(ids); start += findingIDBatch {
		fc := &insptypes.FilterCriteria{ResourceId: eq(ids[start:min(start+findingIDBatch, len(ids))]...),
			FindingStatus: eq("ACTIVE"), FixAvailable: eq("YES", "PARTIAL"), Severity: eq(sev...)}
		p := inspector2.NewListFindingsPaginator(c, &inspector2.ListFindingsInput{FilterCriteria: fc, MaxResults: aws.Int32(100)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return 0, fmt.Errorf("script: ListFindings: %w", err)
			}
			n += len(page.Findings)
		}
	}
	return n, nil
}
