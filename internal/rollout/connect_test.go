package rollout

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	shsdk "github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/patchgate/patchgate/internal/backup"
	"github.com/patchgate/patchgate/internal/health"
	"github.com/patchgate/patchgate/internal/notify"
	"github.com/patchgate/patchgate/internal/securityhub"

	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/promote"
	"github.com/patchgate/patchgate/internal/verify"
)

// testConnect is awsconnect.Rollout for this package's own tests (which
// cannot import it: it imports rollout). evidenceClock nil: no evidence.
func testConnect(f *awsapi.Factory, evidenceClock clock.Clock) Connect {
	return func(ctx context.Context, accountID, roleARN, region string) (*Clients, error) {
		cfg, account, err := f.Config(ctx, accountID, roleARN, region)
		if err != nil {
			return nil, err
		}
		cl := ssm.NewFromConfig(cfg)
		c := &Clients{AccountID: account, Commands: cl, Inventory: cl, Calendars: cl, Params: cl, Patches: cl,
			Backups: &backup.Backups{EC2: ec2.NewFromConfig(cfg)}, Health: &health.Reader{CW: cloudwatch.NewFromConfig(cfg)},
			SecurityHub: &securityhub.Exporter{Hub: shsdk.NewFromConfig(cfg)}}
		if evidenceClock != nil {
			c.Verifier = Evidence{V: &verify.Verifier{SSM: cl, Inspector: inspector2.NewFromConfig(cfg), Clock: evidenceClock}}
		}
		return c, nil
	}
}

// testStore is awsconnect.Store for this package's tests.
func testStore(f *awsapi.Factory) StoreConnect {
	return func(ctx context.Context, rs *policy.RingStore) (*promote.Store, error) {
		cfg, _, err := f.Config(ctx, rs.Account, rs.RoleArn, rs.Region)
		if err != nil {
			return nil, err
		}
		st := promote.NewStore(promote.S3Client(cfg), ssm.NewFromConfig(cfg), rs)
		st.Log = nil
		return st, nil
	}
}

// testNotifier is awsconnect.Notify for this package's tests.
func testNotifier(f *awsapi.Factory) NotifierConnect {
	return func(_ context.Context, topic string, ledger notify.Ledger) (*notify.Notifier, error) {
		cfg := f.Base.Copy()
		cfg.Region = strings.Split(topic, ":")[3]
		return &notify.Notifier{SNS: sns.NewFromConfig(cfg), Topic: topic, Ledger: ledger}, nil
	}
}
