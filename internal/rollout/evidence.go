package rollout

import (
	"context"
	"fmt"
	"sort"

	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
	"github.com/patchgate/patchgate/internal/verify"
)

// Evidence adapts verify.Verifier to the rollout's Verifier, reading the
// phase's settings from its policy.
type Evidence struct{ V *verify.Verifier }

func settings(s Scope) verify.Settings {
	in := s.Stage.Inspector
	return verify.Settings{
		Compliance:         s.Stage.Compliance,
		AllowPendingReboot: s.Stage.PendingReboot == policy.PendingRebootWarn,
		AllowMissing:       s.Stage.Promotion != nil && s.Stage.Promotion.Replay,
		Inspector:          in.Enabled,
		FailOnSeverity:     in.FailOnSeverity,
		RescanTimeout:      in.RescanTimeout,
		RequireFixed:       in.RequireFixed,
		Tags:               s.Stage.Targets.Tags,
		TagKey:             distinctTag(s.Policy, s.Phase),
		Slack:              s.Slack,
		LastChance:         s.LastChance,
	}
}

// distinctTag is the first of the phase's target tag keys whose value no
// other phase of the policy targets (Environment=staging rather than the
// App=web all phases share), so that listing Inspector by it stays close
// to the phase's own instances.
func distinctTag(p *policy.Policy, ph *policy.Phase) string {
	keys := make([]string, 0, len(ph.Targets.Tags))
	for k := range ph.Targets.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		shared := false
		for i := range p.Spec.Phases {
			other := &p.Spec.Phases[i]
			if other.Name != ph.Name && other.Targets.Tags[k] == ph.Targets.Tags[k] {
				shared = true
			}
		}
		if !shared {
			return k
		}
	}
	return ""
}

func (e Evidence) Before(ctx context.Context, s Scope, ids []string) (any, error) {
	return e.V.Before(ctx, settings(s), ids)
}

func (e Evidence) After(ctx context.Context, s Scope, before any, instances []result.Instance) (*result.Verification, error) {
	snap, ok := before.(*verify.Snapshot)
	if !ok && before != nil {
		return nil, fmt.Errorf("verification: unexpected before-state %T", before)
	}
	return e.V.After(ctx, settings(s), s.RunStarted, snap, instances)
}
