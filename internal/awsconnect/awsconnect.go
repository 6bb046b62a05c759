// Package awsconnect is the edge where patchgate's consumers meet the AWS
// SDK: it builds the SSM and Inspector clients of each account and region
// (through awsapi's factory: role chaining, allowed-account checks) and
// hands them to the rollout and to plan as the small interfaces those
// packages declare. Neither rollout nor plan builds an SDK client.
package awsconnect

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/promote"
	"github.com/patchgate/patchgate/internal/rollout"
	"github.com/patchgate/patchgate/internal/verify"
)

// Verifiers builds the evidence gate for one account and region's
// configuration; nil means no evidence is gathered.
type Verifiers func(cfg aws.Config) rollout.Verifier

// Evidence is the evidence gate through the SDK: patch states through SSM,
// rescans and findings through Amazon Inspector, waiting on clk (nil: the
// wall clock).
func Evidence(clk clock.Clock) Verifiers {
	return func(cfg aws.Config) rollout.Verifier {
		return rollout.Evidence{V: &verify.Verifier{SSM: ssm.NewFromConfig(cfg), Inspector: inspector2.NewFromConfig(cfg), Clock: clk}}
	}
}

// Rollout connects the rollout: one SSM client serves every call it makes
// in an account and region, and verifiers, when set, gathers evidence.
func Rollout(f *awsapi.Factory, verifiers Verifiers) rollout.Connect {
	return func(ctx context.Context, accountID, roleARN, region string) (*rollout.Clients, error) {
		cfg, account, err := f.Config(ctx, accountID, roleARN, region)
		if err != nil {
			return nil, err
		}
		cl := ssm.NewFromConfig(cfg)
		sh := SafetyFor(cfg, nil) // the engine sets the run's clock
		c := &rollout.Clients{AccountID: account, Commands: cl, Inventory: cl, Calendars: cl, Params: cl, Patches: cl,
			Backups: sh.Backups, Health: sh.Health, SecurityHub: sh.SecurityHub}
		if verifiers != nil {
			c.Verifier = verifiers(cfg)
		}
		return c, nil
	}
}

// Store connects a policy's promotion store in its home account and
// region (S3 for the records, Parameter Store for their digests).
func Store(f *awsapi.Factory) rollout.StoreConnect {
	return func(ctx context.Context, rs *policy.RingStore) (*promote.Store, error) {
		cfg, _, err := f.Config(ctx, rs.Account, rs.RoleArn, rs.Region)
		if err != nil {
			return nil, err
		}
		return promote.NewStore(promote.S3Client(cfg), ssm.NewFromConfig(cfg), rs), nil
	}
}

// Plan connects plan, read-only.
func Plan(f *awsapi.Factory) plan.Connect {
	return func(ctx context.Context, accountID, roleARN, region string) (*plan.Clients, error) {
		cfg, account, err := f.Config(ctx, accountID, roleARN, region)
		if err != nil {
			return nil, err
		}
		cl := ssm.NewFromConfig(cfg)
		return &plan.Clients{AccountID: account, Inventory: cl, Baselines: cl, Documents: cl,
			Evidence: &verify.Verifier{SSM: cl, Inspector: inspector2.NewFromConfig(cfg)}}, nil
	}
}
