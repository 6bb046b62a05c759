package verify

// The wait for Inspector rescans, on synctest's fake clock over an
// in-memory Findings: which scans each poll asks for, when the wait ends,
// and what an instance never rescanned is reported as. Written from the
// survivors of mutation testing (make mutate; docs/testing.md).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

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
		// The first poll asks for scans since an inventory interval and
		// its spread (36m) before the earliest patch: the rescans, and the
		// scan before each patch that predicts the next. The next ones
		// ask since the previous poll less 10 minutes (Inspector's
		// listings lag), when that is later than the earliest patch.
		{"patched half an hour ago", 30 * time.Minute, []time.Duration{-66 * time.Minute, -10 * time.Minute, -8 * time.Minute}},
		// Patched 5 minutes before: the previous poll less 10 minutes is
		// earlier than the patch, so the later polls ask since the patch.
		{"patched 5 minutes ago", 5 * time.Minute, []time.Duration{-41 * time.Minute, -5 * time.Minute, -5 * time.Minute}},
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
				// Nothing listed, so no previous scan to predict from: polled
				// every rescanPollTail while a rescan can come.
				if got := time.Since(start); got != 2*rescanPollTail {
					t.Errorf("rescans seen after %v, want 4m (polls at 0, 2m and 4m)", got)
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

func datedFinding(cve, status string, sev insptypes.Severity, fix insptypes.FixAvailable, first, updated time.Time, id string) insptypes.Finding {
	f := inspFinding(cve, sev, fix, []string{"pkg"}, id)
	f.Status = insptypes.FindingStatus(status)
	f.FirstObservedAt, f.UpdatedAt = aws.Time(first), aws.Time(updated)
	return f
}

// TestFindingsJudgedAgainstThePhaseStart: a finding is classified by its
// dates against the phase's start: open since before it and still ACTIVE
// remains (and blocks); first seen after it is new (and blocks). Only what
// the gate judges is listed (ACTIVE, with a fix, at or above the
// threshold), and what an Inspector answers beyond its filter is not
// judged: a CLOSED, unfixable or lower finding neither blocks nor counts.
func TestFindingsJudgedAgainstThePhaseStart(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC) // the phase began
	clk := clock.NewStep(t0.Add(2 * time.Hour))
	ids := instanceIDs(12)
	var instances []result.Instance
	for _, id := range ids {
		instances = append(instances, result.Instance{ID: id, Outcome: result.OutcomeSucceeded})
	}
	old, earlier, later := t0.Add(-24*time.Hour), t0.Add(-time.Hour), t0.Add(time.Hour)
	insp := &rescanInspector{rescanAt: 1, scanned: clk.Now().Add(time.Minute)}
	insp.findings = [][]insptypes.Finding{{
		datedFinding("CVE-OPEN", "ACTIVE", insptypes.SeverityHigh, insptypes.FixAvailableYes, old, earlier, ids[0]),     // open before, updated before: remains
		datedFinding("CVE-GONE", "CLOSED", insptypes.SeverityHigh, insptypes.FixAvailableYes, old, earlier, ids[1]),     // closed before the phase
		datedFinding("CVE-FIXED", "CLOSED", insptypes.SeverityCritical, insptypes.FixAvailableYes, old, later, ids[2]),  // fixed by the phase
		datedFinding("CVE-NEW", "ACTIVE", insptypes.SeverityHigh, insptypes.FixAvailableYes, later, later, ids[3]),      // new since
		datedFinding("CVE-NOFIX", "ACTIVE", insptypes.SeverityCritical, insptypes.FixAvailableNo, old, earlier, ids[4]), // no fix: not the gate's
		datedFinding("CVE-LOW", "ACTIVE", insptypes.SeverityLow, insptypes.FixAvailableYes, old, earlier, ids[5]),       // below the threshold
	}}
	v := &Verifier{Inspector: insp, Clock: clk}
	s := Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: time.Hour, Tags: map[string]string{"Env": "prod"}}
	res, err := v.After(context.Background(), s, t0, &Snapshot{Taken: t0}, instances)
	if err != nil {
		t.Fatal(err)
	}
	in := res.Inspector
	cves := func(fs []result.Finding) string {
		var out []string
		for _, f := range fs {
			out = append(out, f.CVE)
		}
		return strings.Join(out, ",")
	}
	if got := cves(in.Remaining); got != "CVE-OPEN" {
		t.Errorf("remaining %q", got)
	}
	if got := cves(in.New); got != "CVE-NEW" {
		t.Errorf("new %q", got)
	}
	if len(in.Fixed) != 0 || len(in.NoFix) != 0 || len(in.FixedBySeverity) != 0 || len(in.RemainingBySeverity) != 1 || in.RemainingBySeverity["HIGH"] != 2 {
		t.Errorf("fixed %v, no fix %v, by severity: fixed %v remaining %v", in.Fixed, in.NoFix, in.FixedBySeverity, in.RemainingBySeverity)
	}
	if in.Listed == nil || in.Listed.MinSeverity != "HIGH" || len(in.Listed.RequiredCVEs) != 0 {
		t.Errorf("listed %+v, want ACTIVE with a fix at or above HIGH", in.Listed)
	}
	if len(insp.fRequests) != 1 {
		t.Fatalf("%d ListFindings requests, want 1", len(insp.fRequests))
	}
	fc := insp.fRequests[0].FilterCriteria
	if got := filterValues(fc.FindingStatus) + " " + filterValues(fc.Severity) + " " + filterValues(fc.FixAvailable); got != "ACTIVE CRITICAL,HIGH YES,PARTIAL" {
		t.Errorf("listed %q, want ACTIVE CRITICAL,HIGH YES,PARTIAL", got)
	}
	if res.Verdict != result.StatusFailed || len(res.Reasons) != 1 || res.Reasons[0].Code != "inspector-severity" ||
		!strings.Contains(res.Reasons[0].Message, "2 ACTIVE findings at or above HIGH") {
		t.Errorf("verdict %s %+v", res.Verdict, res.Reasons)
	}
	// An instance whose patch end is unknown is dated by the verifier's
	// clock (now), not the machine's.
	if e := in.Evidence[0]; !e.PatchEndedAt.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("patch of %s dated %v, want the verifier clock's now %v", e.InstanceID, e.PatchEndedAt, t0.Add(2*time.Hour))
	}
}

// countingStates answers DescribeInstancePatchStates for any id and counts
// the calls and ids per call.
type countingStates struct{ calls [][]string }

func (c *countingStates) DescribeInstancePatchStates(_ context.Context, in *ssm.DescribeInstancePatchStatesInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstancePatchStatesOutput, error) {
	c.calls = append(c.calls, in.InstanceIds)
	out := &ssm.DescribeInstancePatchStatesOutput{}
	for _, id := range in.InstanceIds {
		out.InstancePatchStates = append(out.InstancePatchStates, ssmtypes.InstancePatchState{InstanceId: aws.String(id)})
	}
	return out, nil
}

func (c *countingStates) DescribeInstancePatches(context.Context, *ssm.DescribeInstancePatchesInput, ...func(*ssm.Options)) (*ssm.DescribeInstancePatchesOutput, error) {
	return &ssm.DescribeInstancePatchesOutput{}, nil
}

// TestPatchStatesIn50s: DescribeInstancePatchStates takes at most 50 ids;
// no call is made without any.
func TestPatchStatesIn50s(t *testing.T) {
	for _, tc := range []struct{ n, calls, last int }{{0, 0, 0}, {1, 1, 1}, {50, 1, 50}, {51, 2, 1}, {100, 2, 50}} {
		c := &countingStates{}
		got, err := (&Verifier{SSM: c}).compactStates(context.Background(), instanceIDs(tc.n))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.calls) != tc.calls || len(got) != tc.n {
			t.Fatalf("%d ids: %d calls, %d states", tc.n, len(c.calls), len(got))
		}
		if tc.calls > 0 && len(c.calls[len(c.calls)-1]) != tc.last {
			t.Fatalf("%d ids: last call with %d", tc.n, len(c.calls[len(c.calls)-1]))
		}
	}
}

// statesOf answers DescribeInstancePatchStates from a map.
type statesOf map[string]ssmtypes.InstancePatchState

func (m statesOf) DescribeInstancePatchStates(_ context.Context, in *ssm.DescribeInstancePatchStatesInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstancePatchStatesOutput, error) {
	out := &ssm.DescribeInstancePatchStatesOutput{}
	for _, id := range in.InstanceIds {
		if st, ok := m[id]; ok {
			st.InstanceId = aws.String(id)
			out.InstancePatchStates = append(out.InstancePatchStates, st)
		}
	}
	return out, nil
}

func (statesOf) DescribeInstancePatches(context.Context, *ssm.DescribeInstancePatchesInput, ...func(*ssm.Options)) (*ssm.DescribeInstancePatchesOutput, error) {
	return &ssm.DescribeInstancePatchesOutput{}, nil
}

// TestComplianceCounts: the compliance evidence counts compliant
// instances and pending reboots instance by instance.
func TestComplianceCounts(t *testing.T) {
	run := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	done := aws.Time(run.Add(time.Hour))
	install := ssmtypes.PatchOperationTypeInstall
	states := statesOf{
		"i-ok1":     {Operation: install, OperationEndTime: done, InstalledCount: 3},
		"i-ok2":     {Operation: install, OperationEndTime: done, InstalledCount: 1},
		"i-reboot":  {Operation: install, OperationEndTime: done, InstalledPendingRebootCount: aws.Int32(2)},
		"i-reboot2": {Operation: install, OperationEndTime: done, InstalledPendingRebootCount: aws.Int32(1)},
		"i-missing": {Operation: install, OperationEndTime: done, MissingCount: 4},
	}
	var instances []result.Instance
	for _, id := range []string{"i-ok1", "i-ok2", "i-reboot", "i-reboot2", "i-missing", "i-nostate"} {
		instances = append(instances, result.Instance{ID: id, Outcome: result.OutcomeSucceeded})
	}
	instances = append(instances, result.Instance{ID: "i-failed", Outcome: result.OutcomeFailed})
	res, err := (&Verifier{SSM: states}).After(context.Background(), Settings{Compliance: true}, run, nil, instances)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Compliance
	if c.Instances != 6 || c.Compliant != 2 || c.After.CompliantInstances != 2 || c.PendingReboot != (result.PendingReboot{Instances: 2, Patches: 3}) {
		t.Fatalf("compliance %+v", c)
	}
	if c.After.Installed != 4 || c.After.Missing != 4 || c.After.InstalledPendingReboot != 3 {
		t.Fatalf("after counts %+v", c.After)
	}
	if len(c.NonCompliant) != 4 || res.Verdict != result.StatusFailed {
		t.Fatalf("non-compliant %+v, verdict %s", c.NonCompliant, res.Verdict)
	}
	var codes []string
	for _, r := range res.Reasons {
		codes = append(codes, r.Code)
	}
	if strings.Join(codes, ",") != "no-patch-state,noncompliant,pending-reboot" {
		t.Fatalf("reasons %v", codes)
	}
	if c.Percent < 33.3 || c.Percent > 33.4 {
		t.Fatalf("percent %v, want 2 of 6", c.Percent)
	}
	// An instance without a patch state, the rest compliant: inconclusive.
	res, err = (&Verifier{SSM: states}).After(context.Background(), Settings{Compliance: true}, run, nil,
		[]result.Instance{{ID: "i-ok1", Outcome: result.OutcomeSucceeded}, {ID: "i-nostate", Outcome: result.OutcomeSucceeded}})
	if err != nil || res.Verdict != result.StatusInconclusive || len(res.Reasons) != 1 || res.Reasons[0].Code != "no-patch-state" {
		t.Fatalf("no patch state: %v %s %+v", err, res.Verdict, res.Reasons)
	}
	// Nothing patched: nothing non-compliant, 100%, not a division by zero.
	res, err = (&Verifier{SSM: states}).After(context.Background(), Settings{Compliance: true}, run, nil, []result.Instance{{ID: "i-failed", Outcome: result.OutcomeFailed}})
	if err != nil || res.Compliance.Percent != 100 || res.Verdict != result.StatusPassed {
		t.Fatalf("nothing patched: %v %+v %s", err, res.Compliance, res.Verdict)
	}
}

// detailCounter lists one missing patch for any instance, counting calls.
type detailCounter struct {
	statesOf
	asked []string
}

func (d *detailCounter) DescribeInstancePatches(_ context.Context, in *ssm.DescribeInstancePatchesInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstancePatchesOutput, error) {
	d.asked = append(d.asked, aws.ToString(in.InstanceId))
	return &ssm.DescribeInstancePatchesOutput{Patches: []ssmtypes.PatchComplianceData{{Title: aws.String("openssl"), KBId: aws.String("KB1"),
		State: ssmtypes.PatchComplianceDataStateMissing, CVEIds: aws.String("CVE-1, CVE-2,")}}}, nil
}

// TestDetailsOfTheFirst20: missing or failed patches are listed for the
// first 20 non-compliant instances only, one call each, and only for those
// with something missing or failed.
func TestDetailsOfTheFirst20(t *testing.T) {
	run := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	done := aws.Time(run.Add(time.Hour))
	d := &detailCounter{statesOf: statesOf{}}
	var instances []result.Instance
	for i, id := range instanceIDs(23) {
		st := ssmtypes.InstancePatchState{Operation: ssmtypes.PatchOperationTypeInstall, OperationEndTime: done, MissingCount: 1}
		switch i {
		case 0:
			st.MissingCount, st.FailedCount = 0, 2 // failed only: listed
		case 1:
			st.MissingCount, st.InstalledPendingRebootCount = 0, aws.Int32(1) // a reboot only: nothing to list
		case 2:
			st.InstalledPendingRebootCount = aws.Int32(1) // missing and a reboot: not "reboot only"
		}
		d.statesOf[id] = st
		instances = append(instances, result.Instance{ID: id, Outcome: result.OutcomeSucceeded})
	}
	res, err := (&Verifier{SSM: d}).After(context.Background(), Settings{Compliance: true}, run, nil, instances)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"i-000"}, instanceIDs(20)[2:]...) // i-001 has nothing to list; the 20 non-compliant stop at i-019
	if strings.Join(d.asked, ",") != strings.Join(want, ",") {
		t.Fatalf("details asked for %v, want %v", d.asked, want)
	}
	nc := res.Compliance.NonCompliant[2]
	if nc.InstanceID != "i-002" || strings.Join(nc.CVEs, ",") != "CVE-1,CVE-2" || len(nc.Patches) != 1 || nc.Patches[0].KBID != "KB1" {
		t.Fatalf("details %+v", nc)
	}
	var bad, reboot []string
	for _, r := range res.Reasons {
		switch r.Code {
		case "noncompliant":
			bad = r.Instances
		case "pending-reboot":
			reboot = r.Instances
		}
	}
	if len(bad) != 22 || slices.Contains(bad, "i-001") || !slices.Contains(bad, "i-002") || strings.Join(reboot, ",") != "i-001" {
		t.Fatalf("non-compliant %v, reboot only %v", bad, reboot)
	}
}

// TestToday: plan's read-only evidence is the patch states and, with
// Inspector, the ACTIVE findings of the ids; without Inspector, no findings.
func TestToday(t *testing.T) {
	states := &countingStates{}
	got, fs, err := (&Verifier{SSM: states}).Today(context.Background(), []string{"i-1", "i-2"})
	if err != nil || len(got) != 2 || fs != nil {
		t.Fatalf("without Inspector: %v %v %v", err, got, fs)
	}
	insp := &pagedInspector{findings: [][]insptypes.Finding{{inspFinding("CVE-1", insptypes.SeverityHigh, insptypes.FixAvailableYes, []string{"p"}, "i-2")}}}
	got, fs, err = (&Verifier{SSM: &countingStates{}, Inspector: insp}).Today(context.Background(), []string{"i-1", "i-2"})
	if err != nil || len(got) != 2 || len(fs) != 1 || fs[0].CVE != "CVE-1" || fs[0].InstanceID != "i-2" {
		t.Fatalf("with Inspector: %v %v %+v", err, got, fs)
	}
	if filterValues(insp.fRequests[0].FilterCriteria.FindingStatus) != "ACTIVE" || filterValues(insp.fRequests[0].FilterCriteria.ResourceId) != "i-1,i-2" {
		t.Fatalf("filters %+v", insp.fRequests[0].FilterCriteria)
	}
}

// TestRequiredCVEsListedWhateverTheirSeverity: a requireFixed CVE is listed
// on its own (by vulnerability id, ten a request), so one below the
// threshold or without a fix still fails the phase; one the gate's own
// listing already met is judged once.
func TestRequiredCVEsListedWhateverTheirSeverity(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	clk := clock.NewStep(t0.Add(2 * time.Hour))
	ids := instanceIDs(12)
	var instances []result.Instance
	for _, id := range ids {
		instances = append(instances, result.Instance{ID: id, Outcome: result.OutcomeSucceeded})
	}
	old := t0.Add(-24 * time.Hour)
	// The fake answers every listing with the same page, as an Inspector
	// that ignored the filters would: each finding is still judged once.
	insp := &rescanInspector{rescanAt: 1, scanned: clk.Now().Add(time.Minute)}
	insp.findings = [][]insptypes.Finding{{
		datedFinding("CVE-HIGH", "ACTIVE", insptypes.SeverityHigh, insptypes.FixAvailableYes, old, old, ids[0]),
		datedFinding("CVE-LOW", "ACTIVE", insptypes.SeverityLow, insptypes.FixAvailableYes, old, old, ids[1]),
		datedFinding("CVE-NOFIX", "ACTIVE", insptypes.SeverityMedium, insptypes.FixAvailableNo, old, old, ids[2]),
		datedFinding("CVE-OTHER", "ACTIVE", insptypes.SeverityLow, insptypes.FixAvailableYes, old, old, ids[3]),
	}}
	required := []string{"CVE-HIGH", "CVE-LOW", "CVE-NOFIX"}
	for i := range 9 { // 12 required CVEs: two requests by id
		required = append(required, fmt.Sprintf("CVE-X%d", i))
	}
	v := &Verifier{Inspector: insp, Clock: clk}
	s := Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: time.Hour, RequireFixed: required, Tags: map[string]string{"Env": "prod"}}
	res, err := v.After(context.Background(), s, t0, &Snapshot{Taken: t0}, instances)
	if err != nil {
		t.Fatal(err)
	}
	if len(insp.fRequests) != 3 {
		t.Fatalf("%d ListFindings requests, want 3 (the gate's, and the 12 required CVEs ten at a time)", len(insp.fRequests))
	}
	for i, want := range []string{"", strings.Join(required[:10], ","), strings.Join(required[10:], ",")} {
		fc := insp.fRequests[i].FilterCriteria
		if got := filterValues(fc.VulnerabilityId); got != want || filterValues(fc.FindingStatus) != "ACTIVE" {
			t.Errorf("request %d asks for %s CVEs %q, want ACTIVE %q", i+1, filterValues(fc.FindingStatus), got, want)
		}
		if i > 0 && (len(fc.Severity) != 0 || len(fc.FixAvailable) != 0) {
			t.Errorf("request %d filters severity %v, fix %v: a required CVE counts whatever they are", i+1, fc.Severity, fc.FixAvailable)
		}
	}
	var req *result.Reason
	for i := range res.Reasons {
		if res.Reasons[i].Code == "require-fixed" {
			req = &res.Reasons[i]
		}
	}
	// The fake's 3 answers hold CVE-HIGH 3 times and CVE-OTHER, which no
	// listing asked for: CVE-HIGH is judged once, CVE-OTHER never.
	if res.Verdict != result.StatusFailed || req == nil || strings.Join(req.CVEs, ",") != "CVE-HIGH,CVE-LOW,CVE-NOFIX" {
		t.Fatalf("verdict %s, reasons %+v", res.Verdict, res.Reasons)
	}
	in := res.Inspector
	if len(in.Remaining) != 2 || len(in.NoFix) != 1 || in.RemainingBySeverity["HIGH"] != 1 || len(in.RemainingBySeverity) != 1 {
		t.Errorf("remaining %d, no fix %d, by severity %v", len(in.Remaining), len(in.NoFix), in.RemainingBySeverity)
	}
	if in.Listed == nil || len(in.Listed.RequiredCVEs) != 12 {
		t.Errorf("listed %+v", in.Listed)
	}
}

// tailInspector answers the first poll (by tag) in three pages with every
// instance but the last two rescanned, and any later poll with all of
// them: as under inventory-driven rescans, a listing by tag costs a full
// pass however few instances are still waiting.
type tailInspector struct {
	pagedInspector
	scanned time.Time
}

func (r *tailInspector) ListCoverage(_ context.Context, in *inspector2.ListCoverageInput, _ ...func(*inspector2.Options)) (*inspector2.ListCoverageOutput, error) {
	r.cRequests = append(r.cRequests, in)
	ids := instanceIDs(30)
	cov := func(id string) insptypes.CoveredResource {
		return insptypes.CoveredResource{ResourceId: aws.String(id), LastScannedAt: aws.Time(r.scanned),
			ScanStatus: &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCodeActive, Reason: insptypes.ScanStatusReasonSuccessful}}
	}
	out := &inspector2.ListCoverageOutput{}
	if len(r.cRequests) <= 3 { // the first poll, three pages of ten
		i, next := page(in.NextToken, 3)
		for _, id := range ids[i*10 : i*10+10] {
			if id != ids[28] && id != ids[29] {
				out.CoveredResources = append(out.CoveredResources, cov(id))
			}
		}
		out.NextToken = next
		return out, nil
	}
	for _, f := range in.FilterCriteria.ResourceId {
		out.CoveredResources = append(out.CoveredResources, cov(aws.ToString(f.Value)))
	}
	return out, nil
}

// TestRescanTailPolledById: once fewer instances wait than the last poll
// by tag cost in calls, they are polled by id (one call for two), not by a
// listing by tag that would cost the full pass again.
func TestRescanTailPolledById(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ended := map[string]time.Time{}
		for _, id := range instanceIDs(30) {
			ended[id] = start.Add(-time.Hour)
		}
		insp := &tailInspector{scanned: start.Add(-time.Minute)}
		v := &Verifier{Inspector: insp, Clock: clock.Real{}}
		res := &result.Verification{Verdict: result.StatusPassed}
		s := Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: 2 * time.Hour, Tags: map[string]string{"Env": "prod"}}
		if err := v.inspector(context.Background(), s, &Snapshot{Taken: start.Add(-2 * time.Hour)}, ended, res); err != nil {
			t.Fatal(err)
		}
		if len(insp.cRequests) != 4 {
			t.Fatalf("%d ListCoverage calls, want 4 (a first poll of 3 pages by tag, then 1 by id)", len(insp.cRequests))
		}
		last := insp.cRequests[3].FilterCriteria
		if got := len(last.ResourceId); got != 2 || len(last.Ec2InstanceTags) != 0 {
			t.Errorf("the tail poll asks for %d ids and tags %v, want the 2 waiting ids and no tag", got, last.Ec2InstanceTags)
		}
		if len(res.Inspector.Uncovered) != 0 || res.Verdict != result.StatusPassed {
			t.Fatalf("uncovered %d, verdict %s %+v", len(res.Inspector.Uncovered), res.Verdict, res.Reasons)
		}
	})
}
