package rollout

import (
	"context"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/policy"
)

// Inspector is listed by the first of a phase's target tag keys whose
// value no other phase targets: Environment=staging, not the App=web
// every phase shares; none when every key is shared.
func TestDistinctTag(t *testing.T) {
	p := &policy.Policy{}
	p.Spec.Phases = []policy.Phase{
		{Name: "staging", Targets: policy.Targets{Tags: map[string]string{"App": "web", "Environment": "staging"}}},
		{Name: "production", Targets: policy.Targets{Tags: map[string]string{"App": "web", "Environment": "production"}}},
		{Name: "mirror", Targets: policy.Targets{Tags: map[string]string{"App": "web"}}},
	}
	for i, want := range []string{"Environment", "Environment", ""} {
		if got := distinctTag(p, &p.Spec.Phases[i]); got != want {
			t.Errorf("%s: %q, want %q", p.Spec.Phases[i].Name, got, want)
		}
	}
}

// A before-state the verifier did not make is refused, not read as none.
func TestEvidenceRefusesAForeignBeforeState(t *testing.T) {
	_, err := Evidence{}.After(context.Background(), Scope{Stage: &policy.Stage{}}, "not a snapshot", nil)
	if err == nil || !strings.Contains(err.Error(), "unexpected before-state string") {
		t.Fatalf("err %v", err)
	}
}
