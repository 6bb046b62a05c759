package awsconnect

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	shsdk "github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/backup"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/health"
	"github.com/patchgate/patchgate/internal/hooks"
	"github.com/patchgate/patchgate/internal/notify"
	"github.com/patchgate/patchgate/internal/rollout"
	"github.com/patchgate/patchgate/internal/securityhub"
)

// Safety are the issue #20 features of one account and region, built on
// its configuration (the same one the rollout's SSM client uses).
type Safety struct {
	Backups     *backup.Backups
	Health      *health.Reader
	Hooks       hooks.SSM // for hooks.Check
	SecurityHub *securityhub.Exporter
}

// SafetyFor builds them; clk is the rollout's clock (nil: the wall clock).
func SafetyFor(cfg aws.Config, clk clock.Clock) *Safety {
	return &Safety{
		Backups:     &backup.Backups{EC2: ec2.NewFromConfig(cfg), Clock: clk},
		Health:      &health.Reader{CW: cloudwatch.NewFromConfig(cfg), Clock: clk},
		Hooks:       ssm.NewFromConfig(cfg),
		SecurityHub: &securityhub.Exporter{Hub: shsdk.NewFromConfig(cfg)},
	}
}

// Notifier publishes to topic from cfg's credentials, in the topic's own
// region (SNS requires it). ledger keeps "once per run" (nil: this process
// only).
func Notifier(cfg aws.Config, topic string, ledger notify.Ledger) (*notify.Notifier, error) {
	parts := strings.Split(topic, ":")
	if len(parts) != 6 || parts[2] != "sns" || parts[3] == "" {
		return nil, fmt.Errorf("reporting.sns %q is not an SNS topic ARN", topic)
	}
	cfg = cfg.Copy()
	cfg.Region = parts[3]
	return &notify.Notifier{SNS: sns.NewFromConfig(cfg), Topic: topic, Ledger: ledger}, nil
}

// Notify connects the rollout's SNS notifications through f's base
// credentials.
func Notify(f *awsapi.Factory) rollout.NotifierConnect {
	return func(_ context.Context, topic string, ledger notify.Ledger) (*notify.Notifier, error) {
		return Notifier(f.Base, topic, ledger)
	}
}
