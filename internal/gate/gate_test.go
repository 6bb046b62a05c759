package gate

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

func pc(t testing.TB, s string) policy.Percent {
	t.Helper()
	p, err := policy.ParsePercent(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func counts(succeeded, failed, timedOut, offline, skipped, cancelled, inconclusive int) result.Counts {
	return result.Counts{Targeted: succeeded + failed + timedOut + offline + skipped + cancelled + inconclusive,
		Succeeded: succeeded, Failed: failed, TimedOut: timedOut, Offline: offline, Skipped: skipped, Cancelled: cancelled, Inconclusive: inconclusive}
}

// proven is verification evidence that every one of n succeeded instances
// is patched: compliant, rescanned.
func proven(n int) *result.Verification {
	return &result.Verification{Verdict: result.StatusPassed, Compliance: &result.Compliance{Instances: n, Compliant: n, Percent: 100}, Inspector: &result.Inspector{}}
}

func codes(rs []result.Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

func TestDecide(t *testing.T) {
	full := Settings{Threshold: pc(t, "100%"), Compliance: true, Inspector: true, PendingReboot: policy.PendingRebootFail}
	sendOnly := Settings{Threshold: pc(t, "90%")}
	with := func(mod func(*result.Verification)) *result.Verification {
		v := proven(10)
		mod(v)
		return v
	}
	for _, tc := range []struct {
		name string
		ev   Evidence
		s    Settings
		want result.Status
		code string // the first reason's code, "" for none
	}{
		{"all proven", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: proven(10)}, full, result.StatusPassed, ""},
		{"dry run", Evidence{DryRun: true, Counts: result.Counts{Targeted: 10, Pending: 10}}, full, result.StatusDryRun, ""},
		{"an API error outranks everything", Evidence{Failure: &Failure{Code: "aws-access-denied", Message: "ssm:SendCommand denied"}, Cancelled: true,
			Counts: counts(0, 0, 0, 0, 0, 4, 0)}, full, result.StatusError, "aws-access-denied"},
		{"a wave's send error is the phase's", Evidence{Counts: counts(0, 0, 0, 0, 0, 4, 0),
			Waves: []Wave{{Index: 1, Unsent: 4, Failure: &Failure{Code: "aws-access-denied", Message: "denied"}}}}, full, result.StatusError, "aws-access-denied"},
		{"cancelled", Evidence{Cancelled: true, Counts: counts(10, 0, 0, 0, 0, 0, 0)}, full, result.StatusCancelled, "cancelled"},
		{"preflight", Evidence{Preflight: &result.Reason{Code: "preflight-threshold", Message: "not sent"}, Counts: counts(0, 0, 0, 3, 0, 20, 0)}, full, result.StatusFailed, "preflight-threshold"},
		// The false pass of issue #15: 3 failures over maxErrors 2 stop a
		// 1,000-instance wave with 50 unsent; 947 succeeded is above 90%.
		{"a wave stopped by maxErrors fails the phase though the threshold holds",
			Evidence{Counts: counts(947, 3, 0, 0, 0, 50, 0), Waves: []Wave{{Index: 1, Errors: 3, ErrorLimit: 2, MaxErrors: "2", Unsent: 50}}},
			sendOnly, result.StatusFailed, "max-errors"},
		{"errors over maxErrors with nothing left unsent still fail",
			Evidence{Counts: counts(997, 3, 0, 0, 0, 0, 0), Waves: []Wave{{Index: 1, Errors: 3, ErrorLimit: 2, MaxErrors: "2"}}},
			sendOnly, result.StatusFailed, "max-errors"},
		{"errors at maxErrors pass", Evidence{Counts: counts(998, 2, 0, 0, 0, 0, 0), Waves: []Wave{{Index: 1, Errors: 2, ErrorLimit: 2, MaxErrors: "2"}}},
			sendOnly, result.StatusPassed, ""},
		{"unsent instances without a stopped wave fail", Evidence{Counts: counts(99, 0, 0, 0, 0, 1, 0), Waves: []Wave{{Index: 2, Unsent: 1}}},
			sendOnly, result.StatusFailed, "unsent"},
		{"threshold missed", Evidence{Counts: counts(8, 2, 0, 0, 0, 0, 0)}, sendOnly, result.StatusFailed, "success-threshold"},
		{"threshold met exactly (90% of 10 is 9)", Evidence{Counts: counts(9, 1, 0, 0, 0, 0, 0)}, sendOnly, result.StatusPassed, ""},
		{"threshold rounds up (90% of 11 needs 10)", Evidence{Counts: counts(9, 2, 0, 0, 0, 0, 0)}, sendOnly, result.StatusFailed, "success-threshold"},
		{"offline counts against the threshold", Evidence{Counts: counts(9, 0, 0, 2, 0, 0, 0)}, sendOnly, result.StatusFailed, "success-threshold"},
		{"skipped instances do not count", Evidence{Counts: counts(9, 1, 0, 0, 5, 0, 0)}, sendOnly, result.StatusPassed, ""},
		{"timed out counts against", Evidence{Counts: counts(8, 0, 2, 0, 0, 0, 0)}, sendOnly, result.StatusFailed, "success-threshold"},
		{"unknown outcomes that decide the threshold are inconclusive", Evidence{Counts: counts(8, 0, 0, 0, 0, 0, 2), Inconclusive: []string{"i-1", "i-2"}},
			sendOnly, result.StatusInconclusive, "inconclusive-invocations"},
		{"unknown outcomes that cannot save it fail", Evidence{Counts: counts(7, 2, 0, 0, 0, 0, 1)}, sendOnly, result.StatusFailed, "success-threshold"},
		{"a send patchgate cannot account for is inconclusive", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), Waves: []Wave{{Index: 1, Unknown: []string{"i-1"}}}},
			sendOnly, result.StatusInconclusive, "unknown-send"},
		{"no verifier: never green", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0)}, full, result.StatusInconclusive, "verification-unavailable"},
		{"verifier configured but no evidence", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true}, full, result.StatusInconclusive, "verification-unavailable"},
		{"no verification asked: the send decides", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0)}, Settings{Threshold: pc(t, "100%")}, result.StatusPassed, ""},
		{"noncompliant reason", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Reasons = []result.Reason{{Code: "noncompliant"}}
		})}, full, result.StatusFailed, "noncompliant"},
		{"compliance counts alone (no reason given)", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Compliance.Compliant = 9
		})}, full, result.StatusFailed, "noncompliant"},
		{"an instance with no patch state", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Compliance.Instances = 9
			v.Compliance.Compliant = 9
		})}, full, result.StatusInconclusive, "no-patch-state"},
		{"no compliance evidence", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Compliance = nil
		})}, full, result.StatusInconclusive, "no-patch-state"},
		{"pending reboot under fail", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Compliance.PendingReboot = result.PendingReboot{Instances: 2, Patches: 4}
		})}, full, result.StatusFailed, "pending-reboot"},
		{"pending reboot under warn passes with a reason", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Compliance.PendingReboot = result.PendingReboot{Instances: 2, Patches: 4}
			v.Reasons = []result.Reason{{Code: "pending-reboot"}}
		})}, Settings{Threshold: pc(t, "100%"), Compliance: true, PendingReboot: policy.PendingRebootWarn}, result.StatusPassed, "pending-reboot"},
		{"no Inspector evidence", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Inspector = nil
		})}, full, result.StatusInconclusive, "inspector-unavailable"},
		{"no rescan", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Inspector.Uncovered = []result.Coverage{{InstanceID: "i-1"}}
		})}, full, result.StatusInconclusive, "no-rescan"},
		{"Inspector severity", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Reasons = []result.Reason{{Code: "inspector-severity"}}
		})}, full, result.StatusFailed, "inspector-severity"},
		{"a failure outranks an inconclusive", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Reasons = []result.Reason{{Code: "no-rescan"}, {Code: "require-fixed"}}
		})}, full, result.StatusFailed, "no-rescan"},
		{"a reason the gate does not know is never green", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Reasons = []result.Reason{{Code: "something-new"}}
		})}, full, result.StatusInconclusive, "something-new"},
		{"a verifier's unexplained failure is never green", Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: with(func(v *result.Verification) {
			v.Verdict = result.StatusFailed
		})}, full, result.StatusInconclusive, "verification"},
		{"every instance skipped", Evidence{Counts: counts(0, 0, 0, 0, 4, 0, 0)}, sendOnly, result.StatusSkipped, "no-targets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reasons := Decide(tc.ev, tc.s)
			if got != tc.want {
				t.Fatalf("status %s, want %s; reasons %v", got, tc.want, reasons)
			}
			if tc.code == "" && got != result.StatusPassed && got != result.StatusDryRun && len(reasons) == 0 {
				t.Fatalf("status %s without a reason", got)
			}
			if tc.code != "" && (len(reasons) == 0 || reasons[0].Code != tc.code) {
				t.Fatalf("reasons %v, want the first %q", codes(reasons), tc.code)
			}
			for _, r := range reasons {
				if r.Message == "" && tc.ev.Verification == nil {
					t.Errorf("reason %q has no message", r.Code)
				}
			}
		})
	}
}

// TestReasonsArePlain: the reasons say what happened in numbers a person
// can check.
func TestReasonsArePlain(t *testing.T) {
	_, rs := Decide(Evidence{Counts: counts(947, 3, 0, 0, 0, 50, 0), Waves: []Wave{{Index: 1, Errors: 3, ErrorLimit: 2, MaxErrors: "2", Unsent: 50}}},
		Settings{Threshold: pc(t, "90%")})
	if len(rs) == 0 || rs[0].Message != "wave 1 stopped: 3 invocations failed, over maxErrors 2 (2 tolerated); 50 instances of the phase not sent" {
		t.Fatalf("%+v", rs)
	}
	_, rs = Decide(Evidence{Counts: counts(8, 1, 1, 0, 0, 0, 0)}, Settings{Threshold: pc(t, "95%")})
	if rs[0].Message != "8 of 10 instances succeeded (80.0%), below the success threshold 95% (10 needed): 1 failed, 1 timed out" {
		t.Fatalf("%q", rs[0].Message)
	}
	if got := PendingRebootText(result.PendingReboot{Instances: 24, Patches: 48}); got != "48 patches await a reboot on 24 instances" {
		t.Fatal(got)
	}
	if got := PendingRebootText(result.PendingReboot{Instances: 1, Patches: 1}); got != "1 patch awaits a reboot on 1 instance" {
		t.Fatal(got)
	}
}

func TestPreflight(t *testing.T) {
	s := Settings{Threshold: pc(t, "95%")}
	// 3 offline of 23: 20 sendable, 95% needs 22.
	if r := Preflight(counts(0, 0, 0, 3, 0, 0, 20), 20, s); r == nil || r.Code != "preflight-threshold" || !strings.Contains(r.Message, "needs 22 of 23") {
		t.Fatalf("%+v", r)
	}
	// 1 offline of 23: 22 sendable is enough.
	if r := Preflight(counts(0, 0, 0, 1, 0, 0, 22), 22, s); r != nil {
		t.Fatalf("%+v", r)
	}
	// Skipped instances are not counted.
	if r := Preflight(counts(0, 0, 0, 0, 5, 0, 20), 20, Settings{Threshold: pc(t, "100%")}); r != nil {
		t.Fatalf("%+v", r)
	}
	if r := Preflight(result.Counts{}, 0, s); r != nil {
		t.Fatalf("%+v", r)
	}
}

// TestNeverPassedWithoutProof is the gate's property: for any evidence in
// which more instances are not proven patched than the threshold allows, or
// in which any instance the gate was asked to verify lacks its proof, the
// verdict is never passed. The oracle below is written from the policy's
// words, not from Decide.
func TestNeverPassedWithoutProof(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 2026))
	thresholds := []string{"100%", "95%", "90%", "50%", "1%"}
	for i := 0; i < 20000; i++ {
		n := func(k int) int {
			if rng.IntN(3) == 0 {
				return 0
			}
			return rng.IntN(k)
		}
		c := counts(n(40), n(3), n(3), n(3), n(3), n(3), n(3))
		s := Settings{Threshold: pc(t, thresholds[rng.IntN(len(thresholds))]), Compliance: rng.IntN(2) == 0, Inspector: rng.IntN(2) == 0,
			PendingReboot: []string{policy.PendingRebootFail, policy.PendingRebootWarn}[rng.IntN(2)]}
		ev := Evidence{Counts: c, Cancelled: rng.IntN(20) == 0, VerifierConfigured: rng.IntN(8) != 0}
		var unsent, unknown int
		for w := 1; w <= rng.IntN(3); w++ {
			gw := Wave{Index: w, ErrorLimit: rng.IntN(3), Errors: n(4), Unsent: n(3) * rng.IntN(2)}
			if rng.IntN(10) == 0 {
				gw.Unknown = []string{"i-x"}
			}
			unsent += gw.Unsent
			unknown += len(gw.Unknown)
			ev.Waves = append(ev.Waves, gw)
		}
		var noState, notCompliant, pending, uncovered int
		if rng.IntN(6) != 0 {
			v := proven(c.Succeeded)
			if rng.IntN(4) == 0 {
				noState = 1 + rng.IntN(2)
				v.Compliance.Instances = max(c.Succeeded-noState, 0)
				v.Compliance.Compliant = v.Compliance.Instances
				noState = c.Succeeded - v.Compliance.Instances
			}
			if rng.IntN(4) == 0 && v.Compliance.Compliant > 0 {
				notCompliant = 1
				v.Compliance.Compliant--
			}
			if rng.IntN(4) == 0 {
				pending = 1 + rng.IntN(3)
				v.Compliance.PendingReboot = result.PendingReboot{Instances: pending, Patches: 2 * pending}
			}
			if rng.IntN(4) == 0 {
				uncovered = 1
				v.Inspector.Uncovered = []result.Coverage{{InstanceID: "i-u"}}
			}
			if rng.IntN(8) == 0 {
				v.Compliance = nil
				noState = 1
			}
			if rng.IntN(8) == 0 {
				v.Inspector = nil
				uncovered = 1
			}
			ev.Verification = v
		}
		got, reasons := Decide(ev, s)
		if got != result.StatusPassed {
			if len(reasons) == 0 && got != result.StatusDryRun {
				t.Fatalf("case %d: %s without a reason: %+v", i, got, ev)
			}
			continue
		}
		d := c.Targeted - c.Skipped
		notProven := c.Failed + c.TimedOut + c.Offline + c.Cancelled + c.Inconclusive
		allowed := d - s.Threshold.Ceil(d)
		exceeded := false
		for _, w := range ev.Waves {
			exceeded = exceeded || w.Errors > w.ErrorLimit
		}
		why := ""
		switch {
		case ev.Cancelled:
			why = "cancelled"
		case notProven > allowed:
			why = "more instances not proven than the threshold allows"
		case unsent > 0:
			why = "instances never sent"
		case unknown > 0:
			why = "a send of unknown fate"
		case exceeded:
			why = "a wave over maxErrors"
		case (s.Compliance || s.Inspector) && (!ev.VerifierConfigured || ev.Verification == nil):
			why = "verification asked, none gathered"
		case s.Compliance && (noState > 0 || notCompliant > 0):
			why = "a succeeded instance without compliance proof"
		case s.Compliance && pending > 0 && s.PendingReboot == policy.PendingRebootFail:
			why = "a pending reboot under pendingReboot: fail"
		case s.Inspector && uncovered > 0:
			why = "no rescan"
		}
		if why != "" {
			t.Fatalf("case %d: passed despite %s: settings %+v evidence %+v verification %+v", i, why, s, ev, ev.Verification)
		}
		if s.Compliance && pending > 0 && !slices.Contains(codes(reasons), "pending-reboot-warning") {
			t.Fatalf("case %d: a pending reboot passed without saying so: %v", i, codes(reasons))
		}
	}
}

// TestReasonsAgreeInNumber: one instance "has", several "have".
func TestReasonsAgreeInNumber(t *testing.T) {
	_, rs := Decide(Evidence{Counts: counts(9, 0, 0, 0, 0, 0, 1), Inconclusive: []string{"i-1"}}, Settings{Threshold: pc(t, "100%")})
	if !strings.HasPrefix(rs[0].Message, "1 instance has no final command status") {
		t.Fatalf("%q", rs[0].Message)
	}
	_, rs = Decide(Evidence{Counts: counts(98, 0, 0, 0, 0, 1, 0), Waves: []Wave{{Index: 2, Unsent: 1}}}, Settings{Threshold: pc(t, "90%")})
	if rs[0].Message != "1 instance of the phase was never sent" {
		t.Fatalf("%q", rs[0].Message)
	}
}
