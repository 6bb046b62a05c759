package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/sync/errgroup"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/rollout"
)

// naiveRun is the reference most patch scripts implement: per phase, list
// the instances, send AWS-RunPatchBaseline in chunks of 50, then wait for
// each instance with the SDK's CommandExecuted waiter (GetCommandInvocation
// per instance until done) and read each instance's patch state. It patches
// the same fleet in the same phases, waves and soak, with every account and
// region in parallel, but it does not read Inspector at all.
type naiveRun struct{ *reference }

func runNaive(ctx context.Context, factory *awsapi.Factory, pol *policy.Policy, f Fleet) (*naiveRun, error) {
	n := &naiveRun{newReference()}
	g, ctx := errgroup.WithContext(ctx)
	for _, acct := range pol.Spec.Accounts {
		for _, region := range pol.Spec.Regions {
			g.Go(func() error {
				cfg, _, err := factory.Config(ctx, acct.ID, acct.RoleArn, region)
				if err != nil {
					return err
				}
				return n.target(ctx, ssm.NewFromConfig(cfg), pol, [2]string{acct.ID, region})
			})
		}
	}
	return n, g.Wait()
}

func (n *naiveRun) target(ctx context.Context, c *ssm.Client, pol *policy.Policy, key [2]string) error {
	plan, err := policy.Compile(pol)
	if err != nil {
		return err
	}
	for i, ph := range pol.Spec.Phases {
		ids, err := listOnline(ctx, c, ph.Targets.Tags)
		if err != nil {
			return err
		}
		failed, done := 0, 0
		for _, end := range plan.Stages[i].WaveEnds(len(ids)) {
			if end == done {
				continue
			}
			f, err := n.wave(ctx, c, ph, key, ids[done:end])
			if err != nil {
				return err
			}
			failed += f
			done = end
		}
		// A waiter that gives up (throttled, or the instance failed) counts
		// as a failed instance, as in a script that checks the waiter's error.
		if limit := plan.Stages[i].ErrorLimit(len(ids)); failed > limit {
			n.fail(key, ph.Name, fmt.Sprintf("%d waits failed, MaxErrors allows %d", failed, limit))
			return nil
		}
		if ph.Soak.Duration > 0 {
			time.Sleep(ph.Soak.Duration)
			n.waited(key, ph.Soak.Duration)
		}
	}
	return nil
}

// wave sends, waits per instance, then reads each instance's patch state;
// it returns how many instances failed.
func (n *naiveRun) wave(ctx context.Context, c *ssm.Client, ph policy.Phase, key [2]string, ids []string) (int, error) {
	type job struct{ cmd, id string }
	var jobs []job
	for _, chunk := range rollout.Chunks(ids) {
		out, err := c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(rollout.DocumentName), InstanceIds: chunk,
			Parameters:     map[string][]string{"Operation": {"Install"}, "RebootOption": {"RebootIfNeeded"}},
			MaxConcurrency: aws.String(ph.MaxConcurrency), MaxErrors: aws.String(ph.MaxErrors)})
		if err != nil {
			return 0, fmt.Errorf("SendCommand: %w", err)
		}
		id := aws.ToString(out.Command.CommandId)
		n.sentCommand(key, id)
		for _, in := range chunk {
			jobs = append(jobs, job{id, in})
		}
	}
	waiter := ssm.NewCommandExecutedWaiter(c)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for _, j := range jobs {
		wg.Go(func() {
			err := waiter.Wait(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(j.cmd), InstanceId: aws.String(j.id)}, 8*time.Hour)
			if err == nil {
				// The script then reads the instance's patch state.
				_, err = c.DescribeInstancePatchStates(ctx, &ssm.DescribeInstancePatchStatesInput{InstanceIds: []string{j.id}})
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			n.addPatched(1)
		})
	}
	wg.Wait()
	return failed, nil
}
