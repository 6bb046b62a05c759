package verify

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/result"
)

// The rescan wait must never date a patch earlier than it ended: a zero or
// stale date would accept a scan from before the patch as its evidence.
func TestPatchEnds(t *testing.T) {
	run := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	now := run.Add(2 * time.Hour)
	listed := run.Add(40 * time.Minute)
	install := func(end time.Time) ssmtypes.InstancePatchState {
		return ssmtypes.InstancePatchState{Operation: ssmtypes.PatchOperationTypeInstall, OperationEndTime: aws.Time(end)}
	}
	for _, tc := range []struct {
		name  string
		in    result.Instance
		state *ssmtypes.InstancePatchState
		want  time.Time
	}{
		{"invocation listed", result.Instance{PatchEndedAt: listed}, nil, listed},
		{"listed wins over the state", result.Instance{PatchEndedAt: listed}, ptr(install(run.Add(time.Hour))), listed},
		{"this run's Install", result.Instance{}, ptr(install(run.Add(50 * time.Minute))), run.Add(50 * time.Minute)},
		{"no state", result.Instance{}, nil, now},
		{"Install before the run", result.Instance{}, ptr(install(run.Add(-time.Hour))), now},
		{"a Scan, not an Install", result.Instance{}, &ssmtypes.InstancePatchState{Operation: ssmtypes.PatchOperationTypeScan, OperationEndTime: aws.Time(run.Add(time.Hour))}, now},
		{"end in the future", result.Instance{}, ptr(install(now.Add(time.Minute))), now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.ID, tc.in.Outcome = "i-1", result.OutcomeSucceeded
			states := map[string]patchState{}
			if tc.state != nil {
				states["i-1"] = compact(*tc.state)
			}
			got := patchEnds([]result.Instance{tc.in, {ID: "i-2", Outcome: result.OutcomeFailed}}, states, run, now)
			if len(got) != 1 || !got["i-1"].Equal(tc.want) {
				t.Fatalf("patchEnds = %v, want i-1 at %v only", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
