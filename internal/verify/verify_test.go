package verify_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/awsconnect"
	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/memnet"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
	"github.com/patchgate/patchgate/internal/rollout"
)

// simStart is when a test's fleet is made: the bubble's fake clock is moved
// on to it.
var simStart = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// phaseWith runs one phase over the instances of groups and returns its
// result and the simulator. The gate under test is the real one: rollout
// sends through the SDK, verify reads SSM and Inspector from the simulator,
// over an in-memory network on synctest's fake clock (a test that uses it
// runs its body in synctest.Test), so polls are counted exactly however
// busy the machine is.
func phaseWith(t *testing.T, verifyYAML, reboot string, groups ...awssim.Group) (result.Phase, *awssim.Sim) {
	t.Helper()
	return phaseIn(t, nil, verifyYAML, reboot, groups...)
}

// phaseIn is phaseWith in a scenario that tweak changes first.
func phaseIn(t *testing.T, tweak func(*awssim.Scenario), verifyYAML, reboot string, groups ...awssim.Group) (result.Phase, *awssim.Sim) {
	t.Helper()
	// Outside a bubble Wait panics ("goroutine is not in a bubble"): the
	// test must run its body in synctest.Test.
	synctest.Wait()
	time.Sleep(time.Until(simStart)) // the fake clock moves on to the start
	for i := range groups {
		groups[i].Region = "us-east-1"
		if groups[i].Tags == nil {
			groups[i].Tags = map[string]string{"App": "web"}
		}
		if groups[i].Name == "" {
			groups[i].Name = fmt.Sprintf("g%d", i)
		}
	}
	sc := &awssim.Scenario{Accounts: []string{"111122223333"}, PatchDuration: 20 * time.Minute, Groups: groups}
	if tweak != nil {
		tweak(sc)
	}
	clk := clock.Real{} // the bubble's fake time
	sim := awssim.New(sc, clk)
	srv := memnet.Serve(sim)
	t.Cleanup(srv.Close)
	// Retries wait at most 10ms, except under rate limits: there the
	// production retryer's own backoff is the thing under test.
	backoff := 10 * time.Millisecond
	if sc.Realism != nil || len(sc.RateLimits) > 0 {
		backoff = 0
	}
	base, err := awsapi.LoadConfig(context.Background(), awsapi.Options{Region: "us-east-1", Endpoint: srv.URL, RetryMaxBackoff: backoff,
		Extra: []func(*config.LoadOptions) error{config.WithHTTPClient(srv.Client), config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(awssim.AccessKeyFor("111122223333"), "s", ""))}})
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: web}
spec:
  operatingSystem: AMAZON_LINUX_2023
  baseline: {approvalRules: [{classifications: [Security], approveAfterDays: 7}]}
  install: {rebootOption: %s, executionTimeout: 6h}
  regions: [us-east-1]
  phases:
    - name: staging
      targets: {tags: {App: web}}
      maxConcurrency: "100%%"
      verify:
%s
`, reboot, verifyYAML)
	p, probs := policy.Parse("web.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatal(probs.Error())
	}
	eng := rollout.New(rollout.Options{RunID: "1", Explicit: true, Clock: clk, Logger: slog.New(slog.DiscardHandler),
		PollMin: time.Minute, PollMax: 2 * time.Minute,
		Connect: awsconnect.Rollout(&awsapi.Factory{Base: base}, awsconnect.Evidence(clk))})
	r := eng.Run(context.Background(), []*policy.Policy{p})
	return r.Policies[0].Targets[0].Phases[0], sim
}

const inspectorOn = `        inspector: {enabled: true, failOnSeverity: HIGH, rescanTimeout: 45m}`

func codes(ph result.Phase) []string {
	var out []string
	for _, r := range ph.Reasons {
		out = append(out, r.Code)
	}
	return out
}

var (
	critical = awssim.FindingSpec{CVE: "CVE-2024-6387", Severity: "CRITICAL", Package: "openssh"}
	high     = awssim.FindingSpec{CVE: "CVE-2023-4911", Severity: "HIGH", Package: "glibc"}
	noFix    = awssim.FindingSpec{CVE: "CVE-2023-52425", Severity: "CRITICAL", Package: "expat", Fix: "NO"}
)

func TestAllFixedPasses(t *testing.T) { synctest.Test(t, testAllFixedPasses) }

func testAllFixedPasses(t *testing.T) {
	ph, sim := phaseWith(t, inspectorOn, "RebootIfNeeded", awssim.Group{Count: 3, Missing: 4, Findings: []awssim.FindingSpec{critical, high, noFix}})
	if ph.Status != result.StatusPassed {
		t.Fatalf("%s %v", ph.Status, ph.Reasons)
	}
	v := ph.Verification
	// The patch states are read once, after the phase: the gate judges
	// them alone, and the result says the "before" was not read rather
	// than showing zero missing.
	if v.Compliance.Percent != 100 || !v.Compliance.BeforeNotRead || v.Compliance.Before.Missing != 0 || v.Compliance.After.Missing != 0 {
		t.Fatalf("compliance %+v", v.Compliance)
	}
	// Only what the gate judges is listed: nothing is left at or above
	// HIGH with a fix, so one empty page, not the 9 findings (6 fixed, 3
	// without a fix) of the phase; and no count of them is made up.
	in := v.Inspector
	if len(in.Fixed) != 0 || len(in.FixedBySeverity) != 0 || len(in.NoFix) != 0 || len(in.RemainingBySeverity) != 0 || len(in.Evidence) != 3 ||
		in.Listed == nil || in.Listed.MinSeverity != "HIGH" {
		t.Fatalf("inspector %+v", in)
	}
	if calls := sim.Calls(); calls["ssm:DescribeInstancePatchStates"] != 1 || calls["inspector2:ListFindings"] != 1 {
		t.Fatalf("DescribeInstancePatchStates %d, ListFindings %d; want 1 and 1", calls["ssm:DescribeInstancePatchStates"], calls["inspector2:ListFindings"])
	}
	for _, e := range v.Inspector.Evidence {
		if !e.LastScannedAt.After(e.PatchEndedAt) {
			t.Fatalf("evidence scan %v not after patch %v", e.LastScannedAt, e.PatchEndedAt)
		}
	}
}

func TestHighWithFixLeftOpenFails(t *testing.T) { synctest.Test(t, testHighWithFixLeftOpenFails) }

func testHighWithFixLeftOpenFails(t *testing.T) {
	open := high
	open.Unpatched = true
	ph, _ := phaseWith(t, inspectorOn, "RebootIfNeeded", awssim.Group{Count: 2, Missing: 2, Findings: []awssim.FindingSpec{critical, open}})
	if ph.Status != result.StatusFailed || !slices.Contains(codes(ph), "inspector-severity") {
		t.Fatalf("%s %v", ph.Status, ph.Reasons)
	}
	if ph.Verification.Inspector.RemainingBySeverity["HIGH"] != 2 {
		t.Fatalf("remaining %+v", ph.Verification.Inspector.RemainingBySeverity)
	}
}

// A CRITICAL finding without a fix does not block: nothing can fix it.
// Below the threshold, a finding with a fix left open does not block
// either. Neither is listed.
func TestNoFixCriticalPasses(t *testing.T) { synctest.Test(t, testNoFixCriticalPasses) }

func testNoFixCriticalPasses(t *testing.T) {
	lowOpen := awssim.FindingSpec{CVE: "CVE-2024-0001", Severity: "MEDIUM", Package: "x", Unpatched: true}
	ph, _ := phaseWith(t, inspectorOn, "RebootIfNeeded", awssim.Group{Count: 2, Missing: 2, Findings: []awssim.FindingSpec{critical, noFix, lowOpen}})
	if ph.Status != result.StatusPassed || len(ph.Reasons) != 0 || len(ph.Verification.Inspector.NoFix) != 0 || len(ph.Verification.Inspector.Remaining) != 0 {
		t.Fatalf("%s %v %+v", ph.Status, ph.Reasons, ph.Verification.Inspector)
	}
}

func TestStaleCoverageIsInconclusive(t *testing.T) { synctest.Test(t, testStaleCoverageIsInconclusive) }

func testStaleCoverageIsInconclusive(t *testing.T) {
	ph, sim := phaseWith(t, inspectorOn, "RebootIfNeeded",
		awssim.Group{Count: 2, Missing: 2, Findings: []awssim.FindingSpec{critical}},
		awssim.Group{Count: 1, Missing: 2, Findings: []awssim.FindingSpec{critical}, Coverage: "STALE_INVENTORY"})
	if ph.Status != result.StatusInconclusive || !slices.Contains(codes(ph), "no-rescan") {
		t.Fatalf("%s %v", ph.Status, ph.Reasons)
	}
	u := ph.Verification.Inspector.Uncovered
	if len(u) != 1 || u[0].Reason != "STALE_INVENTORY" || !strings.Contains(ph.Reasons[0].Message, "no Inspector scan newer") {
		t.Fatalf("uncovered %+v", u)
	}
	if sim.Calls()["inspector2:ListCoverage"] < 3 {
		t.Fatal("must keep polling until rescanTimeout")
	}
}

func TestRescanAfterThreePollsPasses(t *testing.T) { synctest.Test(t, testRescanAfterThreePollsPasses) }

func testRescanAfterThreePollsPasses(t *testing.T) {
	ph, sim := phaseWith(t, inspectorOn, "RebootIfNeeded", awssim.Group{Count: 2, Missing: 2, Findings: []awssim.FindingSpec{critical}, ScanDelay: 15 * time.Minute})
	if ph.Status != result.StatusPassed {
		t.Fatalf("%s %v", ph.Status, ph.Reasons)
	}
	// The scan lands 15m after the patch: polls a minute apart miss it many times.
	if n := sim.Calls()["inspector2:ListCoverage"]; n < 4 {
		t.Fatalf("%d coverage polls", n)
	}
}

// A phase larger than Inspector's 10-id filter is listed by one of its
// target tags and cut to its instances: a few calls, not one per ten
// instances per poll, with the same verdict and findings. The stale group
// shares the tag but is never listed as the phase's (and stays uncovered).
func TestLargePhaseListsInspectorByTag(t *testing.T) {
	synctest.Test(t, testLargePhaseListsInspectorByTag)
}

func testLargePhaseListsInspectorByTag(t *testing.T) {
	ph, sim := phaseWith(t, inspectorOn, "RebootIfNeeded",
		awssim.Group{Count: 150, Missing: 2, Findings: []awssim.FindingSpec{critical, high, noFix}, ScanDelay: 12 * time.Minute},
		awssim.Group{Count: 2, Missing: 2, Findings: []awssim.FindingSpec{critical}, Coverage: "STALE_INVENTORY"})
	in := ph.Verification.Inspector
	if ph.Status != result.StatusInconclusive || len(in.Uncovered) != 2 || in.Uncovered[0].Reason != "STALE_INVENTORY" {
		t.Fatalf("%s %v uncovered %+v", ph.Status, ph.Reasons, in.Uncovered)
	}
	if len(in.Fixed) != 0 || len(in.NoFix) != 0 || len(in.New) != 0 || len(in.Remaining) != 0 {
		t.Fatalf("fixed %d, noFix %d, new %d, remaining %d", len(in.Fixed), len(in.NoFix), len(in.New), len(in.Remaining))
	}
	// Nothing left to judge: one call by tag (by id it would be 16, and
	// unfiltered 5 pages of 100); coverage: a call a poll.
	calls := sim.Calls()
	if n := calls["inspector2:ListFindings"]; n != 1 {
		t.Errorf("%d ListFindings calls for 152 instances, want 1", n)
	}
	if n := calls["inspector2:ListCoverage"]; n > 60 {
		t.Errorf("%d ListCoverage calls", n)
	}
}

func TestNoRebootPendingReboot(t *testing.T) { synctest.Test(t, testNoRebootPendingReboot) }

func testNoRebootPendingReboot(t *testing.T) {
	ph, _ := phaseWith(t, "        compliance: true", "NoReboot", awssim.Group{Count: 2, Missing: 3})
	if ph.Status != result.StatusPassed || ph.Verification.Compliance.After.InstalledPendingReboot != 6 {
		t.Fatalf("NoReboot allows pending reboot: %s %v %+v", ph.Status, ph.Reasons, ph.Verification.Compliance)
	}
	// RebootIfNeeded reboots the instances, so no reboot is left pending:
	// compliant.
	ph, _ = phaseWith(t, "        compliance: true", "RebootIfNeeded", awssim.Group{Count: 2, Missing: 3, FailedAfter: 0, StillMissing: 0})
	if ph.Status != result.StatusPassed || ph.Verification.Compliance.After.InstalledPendingReboot != 0 {
		t.Fatalf("rebooted instances are compliant: %s %v", ph.Status, ph.Reasons)
	}
}

func TestRequireFixedStillOpenNamesIt(t *testing.T) {
	synctest.Test(t, testRequireFixedStillOpenNamesIt)
}

func testRequireFixedStillOpenNamesIt(t *testing.T) {
	lowOpen := awssim.FindingSpec{CVE: "CVE-2024-0001", Severity: "LOW", Package: "x", Unpatched: true}
	ph, _ := phaseWith(t, `        inspector: {enabled: true, failOnSeverity: CRITICAL, rescanTimeout: 45m, requireFixed: [CVE-2024-0001]}`, "RebootIfNeeded",
		awssim.Group{Count: 2, Missing: 2, Findings: []awssim.FindingSpec{critical}},
		awssim.Group{Name: "odd", Count: 1, Missing: 2, Findings: []awssim.FindingSpec{critical, lowOpen}})
	if ph.Status != result.StatusFailed || !slices.Contains(codes(ph), "require-fixed") {
		t.Fatalf("%s %v", ph.Status, ph.Reasons)
	}
	for _, r := range ph.Reasons {
		if r.Code == "require-fixed" && (len(r.Instances) != 1 || !strings.Contains(r.Message, "CVE-2024-0001") || !strings.Contains(r.Message, r.Instances[0])) {
			t.Fatalf("reason must name the CVE and the instance: %+v", r)
		}
	}
}

func TestNewFindingIsReported(t *testing.T) { synctest.Test(t, testNewFindingIsReported) }

func testNewFindingIsReported(t *testing.T) {
	// A HIGH finding with a fix that the rescan reveals blocks, and is
	// reported as new; a LOW one does not (and is not listed).
	appears := awssim.FindingSpec{CVE: "CVE-2025-1111", Severity: "HIGH", Package: "y", New: true}
	appearsLow := awssim.FindingSpec{CVE: "CVE-2025-2222", Severity: "LOW", Package: "z", New: true}
	ph, _ := phaseWith(t, inspectorOn, "RebootIfNeeded", awssim.Group{Count: 1, Missing: 2, Findings: []awssim.FindingSpec{critical, appears, appearsLow}})
	in := ph.Verification.Inspector
	if ph.Status != result.StatusFailed || !slices.Contains(codes(ph), "inspector-severity") || len(in.New) != 1 || in.New[0].CVE != "CVE-2025-1111" || in.RemainingBySeverity["HIGH"] != 1 {
		t.Fatalf("%s %v %+v", ph.Status, ph.Reasons, in)
	}
}

func TestNoncompliantFails(t *testing.T) { synctest.Test(t, testNoncompliantFails) }

func testNoncompliantFails(t *testing.T) {
	ph, _ := phaseWith(t, "        compliance: true", "RebootIfNeeded", awssim.Group{Count: 2, Missing: 3},
		awssim.Group{Count: 1, Missing: 3, StillMissing: 1, Findings: []awssim.FindingSpec{critical}})
	if ph.Status != result.StatusFailed || !slices.Contains(codes(ph), "noncompliant") || ph.Verification.Compliance.Compliant != 2 {
		t.Fatalf("%s %v", ph.Status, ph.Reasons)
	}
	nc := ph.Verification.Compliance.NonCompliant
	if len(nc) != 1 || len(nc[0].Patches) != 1 || nc[0].Patches[0].State != "Missing" || !slices.Equal(nc[0].CVEs, []string{"CVE-2024-6387"}) {
		t.Fatalf("non-compliant detail: %+v", nc)
	}
}

// No scenario with a failed, missing or uncovered instance may pass.
func TestPropertyNoFalseGreen(t *testing.T) { synctest.Test(t, testPropertyNoFalseGreen) }

func testPropertyNoFalseGreen(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := 0; i < 25; i++ {
		var groups []awssim.Group
		bad := false
		for g := 0; g < 1+rng.IntN(3); g++ {
			gr := awssim.Group{Count: 1 + rng.IntN(3), Missing: 2 + rng.IntN(3), Findings: []awssim.FindingSpec{critical}}
			switch rng.IntN(6) {
			case 0:
				gr.Behavior, bad = "fail", true
			case 1:
				gr.StillMissing, bad = 1, true
			case 2:
				gr.FailedAfter, bad = 1, true
			case 3:
				gr.Coverage, bad = []string{"STALE_INVENTORY", "PENDING_INITIAL_SCAN", "UNMANAGED_EC2_INSTANCE"}[rng.IntN(3)], true
			case 4:
				gr.Behavior, bad = "offline", true
			}
			groups = append(groups, gr)
		}
		ph, _ := phaseWith(t, inspectorOn, "RebootIfNeeded", groups...)
		if bad && ph.Status == result.StatusPassed {
			t.Fatalf("scenario %d passed with a bad instance: %+v", i, groups)
		}
		if !bad && ph.Status != result.StatusPassed {
			t.Fatalf("scenario %d: all good but %s %v", i, ph.Status, ph.Reasons)
		}
	}
}

// Under the realistic model's per-operation rate limits, set low enough
// that every read of the phase is throttled at once (2 calls a second,
// against ~10 calls each made back to back), the production retryer
// (awsapi: 10 attempts, backoff up to 20s, no retry quota) absorbs each
// ThrottlingException: the phase passes as it does unthrottled, and no
// reason or error carries one.
func TestThrottledReadsDoNotReachTheVerdict(t *testing.T) {
	synctest.Test(t, testThrottledReadsDoNotReachTheVerdict)
}

func testThrottledReadsDoNotReachTheVerdict(t *testing.T) {
	reads := []string{"ssm:DescribeInstanceInformation", "ssm:DescribeInstancePatchStates", "inspector2:ListCoverage", "inspector2:ListFindings"}
	ph, sim := phaseIn(t, func(sc *awssim.Scenario) {
		r := awssim.Realistic(7)
		r.UnpatchedShare, r.FailureShare, r.TimeoutShare, r.UndeliverableShare, r.FindingsMean = -1, -1, -1, -1, 3
		for _, op := range reads {
			r.RateLimits[op] = 2
		}
		sc.Realism = r
	}, `        compliance: true
        inspector: {enabled: true, failOnSeverity: HIGH, rescanTimeout: 3h}`, "RebootIfNeeded",
		awssim.Group{Count: 480, Missing: 2})
	if ph.Status != result.StatusPassed || len(ph.Reasons) != 0 || ph.Verification.Compliance.Compliant != 480 {
		t.Fatalf("%s %v", ph.Status, ph.Reasons)
	}
	throttled := sim.Throttled()
	for _, op := range []string{"ssm:DescribeInstanceInformation", "ssm:DescribeInstancePatchStates"} {
		if throttled[op] == 0 {
			t.Errorf("%s was never throttled (%v): the test does not exercise the retryer", op, throttled)
		}
	}
}
