package result

import "testing"

func TestWorst(t *testing.T) {
	tests := []struct {
		in   []Status
		want Status
	}{
		{nil, StatusSkipped},
		{[]Status{StatusPassed}, StatusPassed},
		{[]Status{StatusPassed, StatusSkipped}, StatusPassed},
		{[]Status{StatusPassed, StatusFailed, StatusHalted}, StatusFailed},
		{[]Status{StatusInconclusive, StatusPassed}, StatusInconclusive},
		{[]Status{StatusFailed, StatusCancelled}, StatusCancelled},
		{[]Status{StatusError, StatusCancelled}, StatusError},
	}
	for _, tt := range tests {
		if got := Worst(tt.in...); got != tt.want {
			t.Errorf("Worst(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCountsAdd(t *testing.T) {
	var c Counts
	for _, o := range []Outcome{OutcomeSucceeded, OutcomeFailed, OutcomeTimedOut, OutcomeOffline, OutcomeSkipped, OutcomeCancelled, OutcomeInconclusive, "weird", OutcomePending} {
		c.Add(o)
	}
	want := Counts{Targeted: 9, Succeeded: 1, Failed: 1, TimedOut: 1, Offline: 1, Skipped: 1, Cancelled: 1, Inconclusive: 2, Pending: 1}
	if c != want {
		t.Fatalf("got %+v want %+v", c, want)
	}
	if got := c.Plus(c); got.Targeted != 18 || got.Inconclusive != 4 {
		t.Fatalf("Plus: %+v", got)
	}
}
