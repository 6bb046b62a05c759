package verify

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"
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

func TestRescanPace(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	ended := map[string]time.Time{"a": t0, "b": t0.Add(30 * time.Minute), "c": t0.Add(30 * time.Minute)}
	scanned := func(at time.Time) insptypes.CoveredResource {
		return insptypes.CoveredResource{LastScannedAt: aws.Time(at)}
	}
	for _, tc := range []struct {
		name    string
		now     time.Time
		covered map[string]insptypes.CoveredResource
		waiting []string
		last    time.Duration
		want    time.Duration
	}{
		{"no delay seen: a minute", t0.Add(30 * time.Minute), nil, []string{"a", "b", "c"}, 0, time.Minute},
		{"no delay seen: doubling", t0.Add(33 * time.Minute), nil, []string{"a", "b", "c"}, 2 * time.Minute, 4 * time.Minute},
		{"no delay seen: capped", t0.Add(2 * time.Hour), nil, []string{"a", "b", "c"}, 10 * time.Minute, 15 * time.Minute},
		// a was rescanned 10m after its patch: b and c are due 10m after theirs.
		{"due from the delay seen", t0.Add(31 * time.Minute), map[string]insptypes.CoveredResource{"a": scanned(t0.Add(10 * time.Minute))}, []string{"b", "c"}, time.Minute, 10 * time.Minute},
		{"overdue: soon", t0.Add(41 * time.Minute), map[string]insptypes.CoveredResource{"a": scanned(t0.Add(10 * time.Minute))}, []string{"b", "c"}, 10 * time.Minute, time.Minute},
		{"overdue: less often", t0.Add(70 * time.Minute), map[string]insptypes.CoveredResource{"a": scanned(t0.Add(10 * time.Minute))}, []string{"b", "c"}, 10 * time.Minute, 15 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rescanPace(tc.now, ended, tc.covered, tc.waiting, tc.last, false); got != tc.want {
				t.Fatalf("rescanPace = %s, want %s", got, tc.want)
			}
		})
	}
}
