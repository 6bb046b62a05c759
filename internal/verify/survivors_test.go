package verify

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/patchgate/patchgate/internal/result"
)

// TestCriteriaLeavesOutEmptyFilters: Inspector's filter lists take one to
// ten entries, so a filter with nothing to narrow is left out (nil), never
// sent as an empty list.
func TestCriteriaLeavesOutEmptyFilters(t *testing.T) {
	fc := findingFilter{statuses: []string{"ACTIVE"}}.criteria()
	if fc.Severity != nil || fc.VulnerabilityId != nil || fc.FixAvailable != nil {
		t.Fatalf("empty filters sent: severity %v, vulnerabilityId %v, fixAvailable %v", fc.Severity, fc.VulnerabilityId, fc.FixAvailable)
	}
	fc = findingFilter{statuses: []string{"ACTIVE"}, severities: []string{"HIGH"}, cves: []string{"CVE-2024-1"}, fixable: true}.criteria()
	if len(fc.Severity) != 1 || len(fc.VulnerabilityId) != 1 || len(fc.FixAvailable) != 2 {
		t.Fatalf("filters lost: %+v", fc)
	}
}

// TestAllowMissingWarnsOnlyWhenSomethingIsMissing: a replay that leaves
// patches outside its set missing says so in a warning, and says nothing
// when none are missing or when the phase is not a replay.
func TestAllowMissingWarnsOnlyWhenSomethingIsMissing(t *testing.T) {
	after := runStart.Add(time.Hour)
	for _, tc := range []struct {
		name         string
		allow        bool
		missing      int32
		warn         bool
		compliantAll bool
	}{
		{"replay, 2 missing", true, 2, true, true},
		{"replay, nothing missing", true, 0, false, true},
		{"not a replay, 2 missing", false, 2, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{SSM: fakeStates{"i-1": installed(after, tc.missing, 0)}}
			res, err := v.After(context.Background(), Settings{Compliance: true, AllowMissing: tc.allow}, runStart, nil, succeeded("i-1"))
			if err != nil {
				t.Fatal(err)
			}
			warned := false
			for _, w := range res.Warnings {
				warned = warned || strings.Contains(w, "outside the replayed patch set")
			}
			if warned != tc.warn || (res.Compliance.Compliant == 1) != tc.compliantAll {
				t.Fatalf("warnings %q, compliant %d", res.Warnings, res.Compliance.Compliant)
			}
		})
	}
}

// TestDefaultClock: a Verifier without a Clock uses the wall clock (the
// bubble's fake one here) for the phase's start and the rescan wait.
func TestDefaultClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &Verifier{}
		snap, err := v.Before(context.Background(), Settings{}, nil)
		if err != nil || !snap.Taken.Equal(time.Now()) {
			t.Fatalf("snapshot %+v, %v; want taken now", snap, err)
		}
		start := time.Now()
		ended := map[string]time.Time{"a": start.Add(-time.Hour), "b": start.Add(-time.Hour), "c": start.Add(-5 * time.Minute)}
		insp := &movingInspector{start: start}
		v = &Verifier{Inspector: insp}
		res := &result.Verification{Verdict: result.StatusPassed}
		if err := v.inspector(context.Background(), Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: time.Hour}, snap, ended, res); err != nil {
			t.Fatal(err)
		}
		if len(res.Inspector.Uncovered) != 0 || time.Since(start) < 20*time.Minute {
			t.Fatalf("uncovered %d after %s", len(res.Inspector.Uncovered), time.Since(start))
		}
	})
}

// sizedInspector: the first poll, by tag, is one page and leaves the given
// instances waiting; every later poll finds them all rescanned.
type sizedInspector struct {
	pagedInspector
	ids     []string
	waiting int
	scanned time.Time
}

func (s *sizedInspector) ListCoverage(_ context.Context, in *inspector2.ListCoverageInput, _ ...func(*inspector2.Options)) (*inspector2.ListCoverageOutput, error) {
	s.cRequests = append(s.cRequests, in)
	cov := func(id string) insptypes.CoveredResource {
		return insptypes.CoveredResource{ResourceId: aws.String(id), LastScannedAt: aws.Time(s.scanned),
			ScanStatus: &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCodeActive, Reason: insptypes.ScanStatusReasonSuccessful}}
	}
	out := &inspector2.ListCoverageOutput{}
	if len(s.cRequests) == 1 {
		for _, id := range s.ids[s.waiting:] {
			out.CoveredResources = append(out.CoveredResources, cov(id))
		}
		return out, nil
	}
	if len(in.FilterCriteria.ResourceId) > 0 {
		for _, f := range in.FilterCriteria.ResourceId {
			out.CoveredResources = append(out.CoveredResources, cov(aws.ToString(f.Value)))
		}
		return out, nil
	}
	for _, id := range s.ids {
		out.CoveredResources = append(out.CoveredResources, cov(id))
	}
	return out, nil
}

// TestTailPolledByIdAtTheBoundary: the waiting instances are polled by id
// once that takes no more calls (ten ids a call) than the last poll by tag
// took: with one page by tag, 9 and 10 waiting are polled by id (one
// call), 11 (two calls) by tag again.
func TestTailPolledByIdAtTheBoundary(t *testing.T) {
	for _, tc := range []struct {
		waiting int
		byID    bool
	}{{9, true}, {10, true}, {11, false}} {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			ids := instanceIDs(40)
			ended := map[string]time.Time{}
			for _, id := range ids {
				ended[id] = start.Add(-time.Hour)
			}
			insp := &sizedInspector{ids: ids, waiting: tc.waiting, scanned: start.Add(-time.Minute)}
			v := &Verifier{Inspector: insp}
			res := &result.Verification{Verdict: result.StatusPassed}
			s := Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: 2 * time.Hour, Tags: map[string]string{"Env": "prod"}}
			if err := v.inspector(context.Background(), s, &Snapshot{Taken: start.Add(-2 * time.Hour)}, ended, res); err != nil {
				t.Fatal(err)
			}
			if len(insp.cRequests) < 2 {
				t.Fatalf("%d waiting: %d coverage polls", tc.waiting, len(insp.cRequests))
			}
			second := insp.cRequests[1].FilterCriteria
			if gotByID := len(second.ResourceId) > 0 && len(second.Ec2InstanceTags) == 0; gotByID != tc.byID {
				t.Errorf("%d waiting after a one-page poll by tag: second poll by id %v, want %v", tc.waiting, gotByID, tc.byID)
			}
		})
	}
}
