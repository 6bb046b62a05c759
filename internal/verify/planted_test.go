package verify

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/result"
)

// fakeStates answers DescribeInstancePatchStates from a map; an id it does
// not have is simply not reported, as SSM does for an instance with no
// patch state.
type fakeStates map[string]ssmtypes.InstancePatchState

func (f fakeStates) DescribeInstancePatchStates(_ context.Context, in *ssm.DescribeInstancePatchStatesInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstancePatchStatesOutput, error) {
	out := &ssm.DescribeInstancePatchStatesOutput{}
	for _, id := range in.InstanceIds {
		if st, ok := f[id]; ok {
			st.InstanceId = aws.String(id)
			out.InstancePatchStates = append(out.InstancePatchStates, st)
		}
	}
	return out, nil
}

func (fakeStates) DescribeInstancePatches(context.Context, *ssm.DescribeInstancePatchesInput, ...func(*ssm.Options)) (*ssm.DescribeInstancePatchesOutput, error) {
	return &ssm.DescribeInstancePatchesOutput{}, nil
}

var runStart = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func installed(end time.Time, missing, pending int32) ssmtypes.InstancePatchState {
	return ssmtypes.InstancePatchState{Operation: ssmtypes.PatchOperationTypeInstall, OperationEndTime: aws.Time(end),
		InstalledCount: 10, MissingCount: missing, InstalledPendingRebootCount: aws.Int32(pending)}
}

func succeeded(ids ...string) []result.Instance {
	var out []result.Instance
	for _, id := range ids {
		out = append(out, result.Instance{ID: id, Outcome: result.OutcomeSucceeded, PatchEndedAt: runStart.Add(time.Hour)})
	}
	return out
}

func codesOf(v *result.Verification) []string {
	var out []string
	for _, r := range v.Reasons {
		out = append(out, r.Code)
	}
	return out
}

// TestPlantedVerdictChanges: each case is a change to the verdict code
// that once went unnoticed by every test (issue #15).
func TestPlantedVerdictChanges(t *testing.T) {
	after := runStart.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		states fakeStates
		s      Settings
		want   result.Status
		code   string
	}{
		{"all patched now", fakeStates{"i-1": installed(after, 0, 0), "i-2": installed(after, 0, 0)}, Settings{Compliance: true}, result.StatusPassed, ""},
		{"an instance with no patch state after patching is not a pass", fakeStates{"i-1": installed(after, 0, 0)}, Settings{Compliance: true},
			result.StatusInconclusive, "no-patch-state"},
		{"an Install that ended before the run does not count", fakeStates{"i-1": installed(after, 0, 0), "i-2": installed(runStart.Add(-time.Minute), 0, 0)},
			Settings{Compliance: true}, result.StatusFailed, "noncompliant"},
		{"a Scan, not an Install, does not count", fakeStates{"i-1": installed(after, 0, 0), "i-2": {Operation: ssmtypes.PatchOperationTypeScan, OperationEndTime: aws.Time(after)}},
			Settings{Compliance: true}, result.StatusFailed, "noncompliant"},
		{"a pending reboot fails unless allowed", fakeStates{"i-1": installed(after, 0, 0), "i-2": installed(after, 0, 3)}, Settings{Compliance: true},
			result.StatusFailed, "pending-reboot"},
		{"a pending reboot allowed passes", fakeStates{"i-1": installed(after, 0, 0), "i-2": installed(after, 0, 3)}, Settings{Compliance: true, AllowPendingReboot: true},
			result.StatusPassed, ""},
		{"no Inspector client is not a pass", fakeStates{"i-1": installed(after, 0, 0), "i-2": installed(after, 0, 0)}, Settings{Compliance: true, Inspector: true},
			result.StatusInconclusive, "inspector-unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{SSM: tc.states}
			res, err := v.After(context.Background(), tc.s, runStart, nil, succeeded("i-1", "i-2"))
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.want || (tc.code != "" && !slices.Contains(codesOf(res), tc.code)) {
				t.Fatalf("verdict %s, reasons %v; want %s with %q", res.Verdict, codesOf(res), tc.want, tc.code)
			}
		})
	}
}

// TestPendingRebootIsCounted: the compliance evidence says how many patches
// await a reboot on how many instances, whatever the rule.
func TestPendingRebootIsCounted(t *testing.T) {
	after := runStart.Add(time.Hour)
	v := &Verifier{SSM: fakeStates{"i-1": installed(after, 0, 2), "i-2": installed(after, 0, 3), "i-3": installed(after, 0, 0)}}
	for _, allow := range []bool{false, true} {
		res, err := v.After(context.Background(), Settings{Compliance: true, AllowPendingReboot: allow}, runStart, nil, succeeded("i-1", "i-2", "i-3"))
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Compliance.PendingReboot; got != (result.PendingReboot{Instances: 2, Patches: 5}) {
			t.Fatalf("allow=%v: %+v", allow, got)
		}
		if wantCompliant := map[bool]int{false: 1, true: 3}[allow]; res.Compliance.Compliant != wantCompliant {
			t.Fatalf("allow=%v: compliant %d, want %d", allow, res.Compliance.Compliant, wantCompliant)
		}
	}
}
