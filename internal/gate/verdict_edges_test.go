package gate

import (
	"slices"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

// The tests below pin the edges of the verdict that mutation testing
// (make mutate) showed no other test held: each names the mutant it kills.

// TestDenominator: the threshold is measured against targeted instances
// less the skipped and the pending ones (a pending instance is not yet a
// success or a failure). Kills Pending's sign flipped.
func TestDenominator(t *testing.T) {
	for _, tc := range []struct {
		c    result.Counts
		want int
	}{
		{result.Counts{}, 0},
		{result.Counts{Targeted: 10}, 10},
		{result.Counts{Targeted: 10, Skipped: 2}, 8},
		{result.Counts{Targeted: 10, Pending: 3}, 7},
		{result.Counts{Targeted: 10, Skipped: 2, Pending: 3}, 5},
	} {
		if got := Denominator(tc.c); got != tc.want {
			t.Errorf("Denominator(%+v) = %d, want %d", tc.c, got, tc.want)
		}
	}
}

// TestMeets: successes meet the threshold at exactly the rounded-up share,
// and nothing to measure meets any threshold.
func TestMeets(t *testing.T) {
	for _, tc := range []struct {
		c      result.Counts
		thresh string
		want   bool
	}{
		{result.Counts{}, "100%", true},
		{result.Counts{Targeted: 4, Skipped: 4}, "100%", true},
		{counts(9, 1, 0, 0, 0, 0, 0), "90%", true},
		{counts(8, 2, 0, 0, 0, 0, 0), "90%", false},
		{counts(9, 2, 0, 0, 0, 0, 0), "90%", false}, // 90% of 11 needs 10
		{counts(10, 1, 0, 0, 0, 0, 0), "90%", true},
		{counts(0, 1, 0, 0, 0, 0, 0), "1%", false},
		{counts(1, 99, 0, 0, 0, 0, 0), "1%", true},
	} {
		if got := Meets(tc.c, pc(t, tc.thresh)); got != tc.want {
			t.Errorf("Meets(%+v, %s) = %v, want %v", tc.c, tc.thresh, got, tc.want)
		}
	}
}

func TestDecideEdges(t *testing.T) {
	sendOnly := Settings{Threshold: pc(t, "90%")}
	full := Settings{Threshold: pc(t, "100%"), Compliance: true, Inspector: true, PendingReboot: policy.PendingRebootFail}
	warn := Settings{Threshold: pc(t, "100%"), Compliance: true, PendingReboot: policy.PendingRebootWarn}
	verified := func(mod func(*result.Verification)) Evidence {
		v := proven(10)
		mod(v)
		return Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: v}
	}
	for _, tc := range []struct {
		name  string
		ev    Evidence
		s     Settings
		want  result.Status
		codes []string // every reason's code, in order
		msg   string   // a substring of the first reason's message, if set
		not   string   // no reason's message contains it, if set
	}{
		// 8 succeeded + 1 unknown is exactly the 9 that 90% of 10 needs:
		// the unknown one decides, so inconclusive, not failed.
		{name: "unknown outcomes exactly reaching the threshold are inconclusive",
			ev: Evidence{Counts: counts(8, 1, 0, 0, 0, 0, 1), Inconclusive: []string{"i-1"}}, s: sendOnly,
			want: result.StatusInconclusive, codes: []string{"inconclusive-invocations"}, msg: "the success threshold 90% (9 of 10) depends on them"},
		{name: "unknown outcomes one short of the threshold fail",
			ev: Evidence{Counts: counts(7, 2, 0, 0, 0, 0, 1)}, s: sendOnly,
			want: result.StatusFailed, codes: []string{"success-threshold"}, msg: "7 of 10 instances succeeded (70.0%), below the success threshold 90% (9 needed): 2 failed, 1 unknown"},
		// A wave over maxErrors with nothing left unsent says nothing
		// about unsent instances.
		{name: "a stopped wave with nothing unsent",
			ev: Evidence{Counts: counts(997, 3, 0, 0, 0, 0, 0), Waves: []Wave{{Index: 1, Errors: 3, ErrorLimit: 2, MaxErrors: "2"}}}, s: sendOnly,
			want: result.StatusFailed, codes: []string{"max-errors"}, msg: "wave 1 stopped: 3 invocations failed, over maxErrors 2 (2 tolerated)", not: "not sent"},
		{name: "one unsent instance",
			ev: Evidence{Counts: counts(99, 0, 0, 0, 0, 1, 0), Waves: []Wave{{Index: 1, Unsent: 1}}}, s: sendOnly,
			want: result.StatusFailed, codes: []string{"unsent"}, msg: "1 instance of the phase"},
		// A phase that targets nothing is not "every instance skipped".
		{name: "nothing targeted is not skipped",
			ev: Evidence{}, s: sendOnly, want: result.StatusPassed},
		{name: "one skipped of one targeted",
			ev: Evidence{Counts: counts(0, 0, 0, 0, 1, 0, 0)}, s: sendOnly, want: result.StatusSkipped, codes: []string{"no-targets"}},
		{name: "non-compliant count in words",
			ev: verified(func(v *result.Verification) { v.Compliance.Compliant = 7 }), s: full,
			want: result.StatusFailed, codes: []string{"noncompliant"}, msg: "3 of 10 patched instances are not compliant after patching"},
		// The verifier's own reason and the gate's reading of the counts
		// are one reason, not two.
		{name: "a reason already given is not repeated",
			ev: verified(func(v *result.Verification) {
				v.Compliance.Compliant = 9
				v.Reasons = []result.Reason{{Code: "noncompliant", Message: "i-1 is missing KB1"}}
			}), s: full,
			want: result.StatusFailed, codes: []string{"noncompliant"}, msg: "i-1 is missing KB1"},
		// ...but another reason does not hide it.
		{name: "a different reason does not stand in for the counts'",
			ev: verified(func(v *result.Verification) {
				v.Compliance.Compliant = 9
				v.Reasons = []result.Reason{{Code: "pending-reboot-warning", Message: "w"}}
			}), s: full,
			want: result.StatusFailed, codes: []string{"pending-reboot-warning", "noncompliant"}},
		{name: "no pending reboot under warn says nothing of reboots",
			ev: verified(func(*result.Verification) {}), s: warn, want: result.StatusPassed},
		{name: "a pending reboot under warn passes and says so",
			ev: verified(func(v *result.Verification) {
				v.Compliance.PendingReboot = result.PendingReboot{Instances: 1, Patches: 1}
			}), s: warn,
			want: result.StatusPassed, codes: []string{"pending-reboot-warning"}, msg: "1 patch awaits a reboot on 1 instance (pendingReboot: warn)"},
		{name: "a pending reboot under fail",
			ev: verified(func(v *result.Verification) {
				v.Compliance.PendingReboot = result.PendingReboot{Instances: 2, Patches: 3}
			}), s: full,
			want: result.StatusFailed, codes: []string{"pending-reboot"}, msg: "3 patches await a reboot on 2 instances (pendingReboot: fail)"},
		{name: "compliance short by one succeeded instance",
			ev: Evidence{Counts: counts(10, 0, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: proven(9)}, s: full,
			want: result.StatusInconclusive, codes: []string{"no-patch-state"}, msg: "compliance covers 9 of the 10 instances that succeeded"},
		{name: "compliance covering more than succeeded",
			ev: Evidence{Counts: counts(9, 1, 0, 0, 0, 0, 0), VerifierConfigured: true, Verification: proven(10)}, s: Settings{Threshold: pc(t, "90%"), Compliance: true},
			want: result.StatusPassed},
		{name: "inspector only, every instance rescanned",
			ev: verified(func(*result.Verification) {}), s: Settings{Threshold: pc(t, "100%"), Inspector: true}, want: result.StatusPassed},
		{name: "two instances without a rescan",
			ev: verified(func(v *result.Verification) {
				v.Inspector.Uncovered = []result.Coverage{{InstanceID: "i-1"}, {InstanceID: "i-2"}}
			}), s: full,
			want: result.StatusInconclusive, codes: []string{"no-rescan"}, msg: "2 instances have no Inspector scan newer than their patch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reasons := Decide(tc.ev, tc.s)
			if got != tc.want {
				t.Fatalf("status %s, want %s; reasons %+v", got, tc.want, reasons)
			}
			if gc := codes(reasons); !slices.Equal(gc, tc.codes) {
				t.Fatalf("reasons %q, want %q", gc, tc.codes)
			}
			if tc.msg != "" && !strings.Contains(reasons[0].Message, tc.msg) {
				t.Fatalf("first reason %q, want it to contain %q", reasons[0].Message, tc.msg)
			}
			for _, r := range reasons {
				if tc.not != "" && strings.Contains(r.Message, tc.not) {
					t.Fatalf("reason %q says %q", r.Message, tc.not)
				}
			}
		})
	}
}

// TestPreflightEdges: the phase is refused only when the instances that can
// be sent are fewer than the threshold needs; exactly enough goes ahead.
func TestPreflightEdges(t *testing.T) {
	s := Settings{Threshold: pc(t, "90%")}
	// 10 counted, 90% needs 9.
	c := counts(0, 0, 0, 1, 0, 0, 9)
	if r := Preflight(c, 9, s); r != nil {
		t.Fatalf("9 sendable of the 9 needed was refused: %+v", r)
	}
	r := Preflight(c, 8, s)
	if r == nil {
		t.Fatal("8 sendable of the 9 needed was sent")
	}
	want := "not sent: 1 instance not Online count against the success threshold 90%, which needs 9 of 10 instances to succeed; only 8 can be sent."
	if !strings.HasPrefix(r.Message, want) {
		t.Fatalf("message %q, want it to start %q", r.Message, want)
	}
	// Pending instances are not counted: 10 targeted, 5 pending, 100%
	// needs the 5 others.
	if r := Preflight(result.Counts{Targeted: 10, Pending: 5}, 5, Settings{Threshold: pc(t, "100%")}); r != nil {
		t.Fatalf("%+v", r)
	}
}

// TestFirstIDs: up to n ids are all named; past n, the first n and how
// many more (never "and 0 more").
func TestFirstIDs(t *testing.T) {
	for _, tc := range []struct {
		ids  []string
		want string
	}{
		{[]string{"i-1", "i-2"}, "i-1, i-2"},
		{[]string{"i-1", "i-2", "i-3"}, "i-1, i-2, i-3"},
		{[]string{"i-1", "i-2", "i-3", "i-4"}, "i-1, i-2, i-3 and 1 more"},
	} {
		if got := firstIDs(tc.ids, 3); got != tc.want {
			t.Errorf("firstIDs(%v, 3) = %q, want %q", tc.ids, got, tc.want)
		}
	}
}
