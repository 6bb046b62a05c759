package verify

// The wait for Inspector rescans, on synctest's fake clock over an
// in-memory Findings: which scans each poll asks for, when the wait ends,
// and what an instance never rescanned is reported as. Written from the
// survivors of mutation testing (make mutate; docs/testing.md).

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/result"
)

// rescanInspector reports every instance rescanned from poll rescanAt on
// (1-based; 0: never), and no findings.
type rescanInspector struct {
	pagedInspector
	rescanAt int
	scanned  time.Time
}

func (r *rescanInspector) ListCoverage(_ context.Context, in *inspector2.ListCoverageInput, _ ...func(*inspector2.Options)) (*inspector2.ListCoverageOutput, error) {
	r.cRequests = append(r.cRequests, in)
	out := &inspector2.ListCoverageOutput{}
	if r.rescanAt == 0 || len(r.cRequests) < r.rescanAt {
		return out, nil
	}
	for _, id := range instanceIDs(12) {
		out.CoveredResources = append(out.CoveredResources, insptypes.CoveredResource{ResourceId: aws.String(id), LastScannedAt: aws.Time(r.scanned),
			ScanStatus: &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCodeActive, Reason: insptypes.ScanStatusReasonSuccessful}})
	}
	return out, nil
}

func since(in *inspector2.ListCoverageInput) time.Time {
	if len(in.FilterCriteria.LastScannedAt) == 0 {
		return time.Time{}
	}
	return aws.ToTime(in.FilterCriteria.LastScannedAt[0].StartInclusive)
}

func TestRescanWaitAsksForScansSinceThePreviousPoll(t *testing.T) {
	for _, tc := range []struct {
		name    string
		patched time.Duration // before the first poll
		want    []time.Duration
	}{
		// The first poll asks for scans since the earliest patch; the next
		// ones since the previous poll less 10 minutes (Inspector's
		// listings lag), when that is later.
		{"patched half an hour ago", 30 * time.Minute, []time.Duration{-30 * time.Minute, -10 * time.Minute, -9 * time.Minute}},
		// Patched 5 minutes before: the previous poll less 10 minutes is
		// earlier than the patch, so every poll asks since the patch.
		{"patched 5 minutes ago", 5 * time.Minute, []time.Duration{-5 * time.Minute, -5 * time.Minute, -5 * time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				ended := map[string]time.Time{}
				for _, id := range instanceIDs(12) {
					ended[id] = start.Add(-tc.patched)
				}
				insp := &rescanInspector{rescanAt: 3, scanned: start.Add(90 * time.Second)}
				v := &Verifier{Inspector: insp, Clock: clock.Real{}}
				res := &result.Verification{Verdict: result.StatusPassed}
				s := Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: 2 * time.Hour, Tags: map[string]string{"Env": "prod"}}
				if err := v.inspector(context.Background(), s, &Snapshot{Taken: start.Add(-time.Hour)}, ended, res); err != nil {
					t.Fatal(err)
				}
				if len(insp.cRequests) != 3 {
					t.Fatalf("%d coverage polls, want 3 (rescanned at the third)", len(insp.cRequests))
				}
				for i, w := range tc.want {
					if got := since(insp.cRequests[i]).Sub(start); got != w {
						t.Errorf("poll %d asks for scans since %v, want %v", i+1, got, w)
					}
				}
				if got := time.Since(start); got != 3*time.Minute {
					t.Errorf("rescans seen after %v, want 3m (polls at 0, 1m and 3m)", got)
				}
				if len(res.Inspector.Uncovered) != 0 || len(res.Inspector.Evidence) != 12 || res.Verdict != result.StatusPassed || len(res.Reasons) != 0 {
					t.Fatalf("inspector %+v, verdict %s %+v", res.Inspector, res.Verdict, res.Reasons)
				}
			})
		})
	}
}

func TestRescanWaitEndsAtTheTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ended := map[string]time.Time{}
		for _, id := range instanceIDs(12) {
			ended[id] = start
		}
		insp := &rescanInspector{}
		v := &Verifier{Inspector: insp, Clock: clock.Real{}}
		res := &result.Verification{Verdict: result.StatusPassed}
		s := Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: 45 * time.Minute, Tags: map[string]string{"Env": "prod"}}
		if err := v.inspector(context.Background(), s, nil, ended, res); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 45*time.Minute {
			t.Errorf("gave up after %v, want the 45m rescanTimeout", got)
		}
		last := insp.cRequests[len(insp.cRequests)-1]
		if !since(last).IsZero() {
			t.Errorf("the last look at what they reported asks for scans since %v, want any", since(last))
		}
		if len(res.Inspector.Uncovered) != 12 || res.Verdict != result.StatusInconclusive || len(res.Reasons) != 1 || res.Reasons[0].Code != "no-rescan" ||
			!strings.Contains(res.Reasons[0].Message, "12 patched instances have no Inspector scan newer than their patch (Inspector does not cover this instance)") {
			t.Fatalf("uncovered %d, verdict %s, reasons %+v", len(res.Inspector.Uncovered), res.Verdict, res.Reasons)
		}
		if u := res.Inspector.Uncovered[0]; u.ScanStatus != "NOT_COVERED" || !u.PatchEndedAt.Equal(start) {
			t.Fatalf("uncovered %+v", u)
		}
	})
}
