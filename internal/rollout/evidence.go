package rollout

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/result"
	"github.com/patchgate/patchgate/internal/verify"
)

// Evidence adapts verify.Verifier to the rollout's Verifier, reading the
// phase's settings from its policy.
type Evidence struct{ V *verify.Verifier }

// NewEvidence builds the evidence gate on an account/region configuration.
func NewEvidence(cfg aws.Config) Verifier {
	return Evidence{V: &verify.Verifier{SSM: ssm.NewFromConfig(cfg)}}
}

func settings(s Scope) verify.Settings {
	return verify.Settings{
		Compliance:         s.Phase.Verify.ComplianceEnabled(),
		AllowPendingReboot: s.Policy.Spec.Install.RebootOption == "NoReboot",
		Inspector:          s.Phase.Verify.Inspector.Enabled,
	}
}

func (e Evidence) Before(ctx context.Context, s Scope, ids []string) (any, error) {
	if !settings(s).Compliance {
		return (*verify.Snapshot)(nil), nil
	}
	return e.V.Before(ctx, ids)
}

func (e Evidence) After(ctx context.Context, s Scope, before any, instances []result.Instance) (*result.Verification, error) {
	snap, ok := before.(*verify.Snapshot)
	if !ok && before != nil {
		return nil, fmt.Errorf("verification: unexpected before-state %T", before)
	}
	return e.V.After(ctx, settings(s), s.RunStarted, snap, instances)
}
