package verify

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/result"
)

// movingInspector: a and b were patched an hour ago and have been rescanned
// twice since (lastScannedAt moved on to 10 minutes ago); c, the phase's
// last patch, ended 5 minutes ago and is rescanned 20 minutes from now.
type movingInspector struct {
	pagedInspector
	start time.Time
	polls []time.Time
}

func (m *movingInspector) ListCoverage(_ context.Context, in *inspector2.ListCoverageInput, _ ...func(*inspector2.Options)) (*inspector2.ListCoverageOutput, error) {
	m.polls = append(m.polls, time.Now())
	out := &inspector2.ListCoverageOutput{}
	for _, f := range in.FilterCriteria.ResourceId {
		id := aws.ToString(f.Value)
		at := m.start.Add(-10 * time.Minute)
		if id == "c" {
			at = m.start.Add(-40 * time.Minute)
			if rescan := m.start.Add(20 * time.Minute); !time.Now().Before(rescan) {
				at = rescan
			}
		}
		out.CoveredResources = append(out.CoveredResources, insptypes.CoveredResource{ResourceId: aws.String(id), LastScannedAt: aws.Time(at),
			ScanStatus: &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCodeActive, Reason: insptypes.ScanStatusReasonSuccessful}})
	}
	return out, nil
}

// TestLastRescanSeenWithinMinutes: the instances rescanned before the first
// poll say nothing of the delay (their scan time moved on with later
// inventory passes; taken as delays, 50 minutes, the old pace looked 10
// minutes late), so the last instance is polled every rescanPollTail and its
// rescan is seen within that, for a call a poll.
func TestLastRescanSeenWithinMinutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ended := map[string]time.Time{"a": start.Add(-time.Hour), "b": start.Add(-time.Hour), "c": start.Add(-5 * time.Minute)}
		insp := &movingInspector{start: start}
		v := &Verifier{Inspector: insp, Clock: clock.Real{}}
		res := &result.Verification{Verdict: result.StatusPassed}
		s := Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: 2 * time.Hour}
		if err := v.inspector(context.Background(), s, &Snapshot{Taken: start.Add(-2 * time.Hour)}, ended, res); err != nil {
			t.Fatal(err)
		}
		if len(res.Inspector.Uncovered) != 0 || res.Verdict != result.StatusPassed {
			t.Fatalf("uncovered %d, verdict %s %+v", len(res.Inspector.Uncovered), res.Verdict, res.Reasons)
		}
		seen := insp.polls[len(insp.polls)-1]
		if lag := seen.Sub(start.Add(20 * time.Minute)); lag < 0 || lag > rescanPollTail {
			t.Errorf("c's rescan seen %s after it happened, want within %s (polls at %v)", lag, rescanPollTail, insp.polls)
		}
		if len(insp.polls) > 12 {
			t.Errorf("%d coverage polls for one instance's 20 minutes, want at most 12", len(insp.polls))
		}
	})
}

// scheduledInspector answers coverage by id: each instance's last scan is
// its rescan once that time has come, else an hour before the test.
type scheduledInspector struct {
	pagedInspector
	start  time.Time
	rescan map[string]time.Time
	polls  []time.Time
}

func (s *scheduledInspector) ListCoverage(_ context.Context, in *inspector2.ListCoverageInput, _ ...func(*inspector2.Options)) (*inspector2.ListCoverageOutput, error) {
	s.polls = append(s.polls, time.Now())
	out := &inspector2.ListCoverageOutput{}
	for _, f := range in.FilterCriteria.ResourceId {
		id := aws.ToString(f.Value)
		at := s.start.Add(-time.Hour)
		if r := s.rescan[id]; !time.Now().Before(r) {
			at = r
		}
		out.CoveredResources = append(out.CoveredResources, insptypes.CoveredResource{ResourceId: aws.String(id), LastScannedAt: aws.Time(at),
			ScanStatus: &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCodeActive, Reason: insptypes.ScanStatusReasonSuccessful}})
	}
	return out, nil
}

func waitFor(t *testing.T, ended, rescan map[string]time.Time, start time.Time) []time.Time {
	t.Helper()
	insp := &scheduledInspector{start: start, rescan: rescan}
	v := &Verifier{Inspector: insp}
	res := &result.Verification{Verdict: result.StatusPassed}
	if err := v.inspector(context.Background(), Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: 2 * time.Hour}, &Snapshot{}, ended, res); err != nil {
		t.Fatal(err)
	}
	if len(res.Inspector.Uncovered) != 0 {
		t.Fatalf("uncovered %+v", res.Inspector.Uncovered)
	}
	return insp.polls
}

// TestTenWaitingAreTheTail: ten waiting instances are one call by id, so
// they are polled every rescanPollTail and their rescan is seen within it.
func TestTenWaitingAreTheTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ended, rescan := map[string]time.Time{}, map[string]time.Time{}
		for _, id := range instanceIDs(filterBatch) {
			ended[id], rescan[id] = start.Add(-5*time.Minute), start.Add(20*time.Minute)
		}
		polls := waitFor(t, ended, rescan, start)
		if lag := polls[len(polls)-1].Sub(start.Add(20 * time.Minute)); lag > rescanPollTail {
			t.Errorf("ten instances' rescan seen %s late, want within %s (polls %v)", lag, rescanPollTail, polls)
		}
	})
}
