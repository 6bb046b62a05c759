package rollout

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/patchgate/patchgate/internal/result"
)

func TestOutcome(t *testing.T) {
	tests := []struct {
		status, details string
		want            result.Outcome
		final           bool
	}{
		{"Success", "Success", result.OutcomeSucceeded, true},
		{"TimedOut", "DeliveryTimedOut", result.OutcomeTimedOut, true},
		{"TimedOut", "Delivery Timed Out", result.OutcomeTimedOut, true},
		{"TimedOut", "ExecutionTimedOut", result.OutcomeTimedOut, true},
		{"Failed", "Failed", result.OutcomeFailed, true},
		{"Failed", "Undeliverable", result.OutcomeFailed, true},
		{"Failed", "Terminated", result.OutcomeFailed, true},
		{"Failed", "Access Denied", result.OutcomeFailed, true},
		{"Cancelled", "Cancelled", result.OutcomeCancelled, true},
		{"InProgress", "InProgress", result.OutcomePending, false},
		{"Pending", "Pending", result.OutcomePending, false},
		{"Delayed", "Delayed", result.OutcomePending, false},
		{"Cancelling", "Cancelling", result.OutcomePending, false},
		{"Success", "", result.OutcomeSucceeded, true},
		{"SomethingNew", "AlsoNew", result.OutcomeInconclusive, true},
		{"", "", result.OutcomeInconclusive, true},
	}
	for _, tt := range tests {
		got, final := Outcome(tt.status, tt.details)
		if got != tt.want || final != tt.final {
			t.Errorf("Outcome(%q,%q) = %s,%v want %s,%v", tt.status, tt.details, got, final, tt.want, tt.final)
		}
	}
}

func TestCommentFitsAndIsStable(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, c := range []struct{ run, pol, ph string }{{"123-1", "web", "staging"}, {"9999999999-3", long, long}} {
		a := Comment(c.run, c.pol, c.ph, 3, 12)
		if len(a) > maxComment {
			t.Errorf("comment %d chars: %q", len(a), a)
		}
		if a != Comment(c.run, c.pol, c.ph, 3, 12) || a == Comment(c.run, c.pol, c.ph, 3, 11) || a == Comment(c.run+"x", c.pol, c.ph, 3, 12) {
			t.Errorf("comment must be deterministic and distinct per run/wave/chunk: %q", a)
		}
	}
	if got := Comment("42-1", "web", "staging", 1, 1); got != "patchgate run=42-1 web/staging/w1/c1" {
		t.Errorf("readable comment changed: %q", got)
	}
}

func TestChunks(t *testing.T) {
	ids := make([]string, 120)
	for i := range ids {
		ids[i] = "i-" + strings.Repeat("0", 3)
	}
	ch := Chunks(ids)
	if len(ch) != 3 || len(ch[0]) != 50 || len(ch[2]) != 20 {
		t.Fatalf("chunks %d", len(ch))
	}
	if Chunks(nil) != nil {
		t.Fatal("no ids, no chunks")
	}
}

func TestExcerptKeepsTailAndUTF8(t *testing.T) {
	s := strings.Repeat("héllo wörld\n", 100) + "ERROR: yum failed"
	e := excerpt(s, 60)
	if !strings.HasSuffix(e, "ERROR: yum failed") || !utf8.ValidString(e) || len(e) > 64 {
		t.Fatalf("excerpt %q", e)
	}
	if excerpt("short", 60) != "short" {
		t.Fatal("short text must be kept")
	}
}
