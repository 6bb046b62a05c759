package rollout

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awsapi"
)

// AWSConnect connects through the real SDK: each account's configuration
// comes from the factory (role chaining, allowed-account checks) and the
// SSM client serves every call the rollout makes. verifier, when set, builds
// the evidence gate for an account and region.
func AWSConnect(f *awsapi.Factory, verifier func(cfg aws.Config) Verifier) Connect {
	return func(ctx context.Context, accountID, roleARN, region string) (*Clients, error) {
		cfg, account, err := f.Config(ctx, accountID, roleARN, region)
		if err != nil {
			return nil, err
		}
		cl := ssm.NewFromConfig(cfg)
		c := &Clients{AccountID: account, Commands: cl, Inventory: cl, Calendars: cl, Params: cl}
		if verifier != nil {
			c.Verifier = verifier(cfg)
		}
		return c, nil
	}
}
