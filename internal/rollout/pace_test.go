package rollout

import (
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/policy"
)

func TestPerRound(t *testing.T) {
	for _, tc := range []struct {
		mc   string
		n    int
		want int
	}{{"50%", 50, 25}, {"50%", 19, 9}, {"10%", 5, 1}, {"100%", 7, 7}, {"20", 50, 20}, {"80", 50, 50}, {"1%", 10, 1}} {
		mc, err := policy.ParsePercent(tc.mc)
		if err != nil {
			t.Fatal(err)
		}
		if got := perRound(mc, tc.n); got != tc.want {
			t.Errorf("perRound(%q, %d) = %d, want %d", tc.mc, tc.n, got, tc.want)
		}
	}
}

func TestPacer(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	far := t0.Add(24 * time.Hour)
	chunk := func(completed int, terminal bool) chunkProgress {
		return chunkProgress{sent: t0, perRound: 25, completed: completed, terminal: terminal}
	}
	p := pacer{min: 5 * time.Second, max: 15 * time.Minute}
	known := p
	known.typical = 30 * time.Minute
	for _, tc := range []struct {
		name     string
		p        pacer
		at       time.Duration // since the chunks were sent
		chunks   []chunkProgress
		last     time.Duration
		deadline time.Time
		want     time.Duration
	}{
		{"unknown pace: first look soon after sending", p, 0, []chunkProgress{chunk(0, false)}, 0, far, 5 * time.Second},
		{"known pace: no early look", known, 0, []chunkProgress{chunk(0, false)}, 0, far, 15 * time.Minute},
		{"unknown pace doubles", p, time.Minute, []chunkProgress{chunk(0, false)}, 40 * time.Second, far, 80 * time.Second},
		{"unknown pace is capped", p, time.Hour, []chunkProgress{chunk(0, false)}, 10 * time.Minute, far, 15 * time.Minute},
		// Nothing seen yet in this wave: at most max apart, even with a round due later.
		{"round due, wave unproven", known, 10 * time.Second, []chunkProgress{chunk(0, false)}, 5 * time.Second, far, 15 * time.Minute},
		{"round due soon", known, 20 * time.Minute, []chunkProgress{chunk(0, false)}, 15 * time.Minute, far, 10*time.Minute + 5*time.Second},
		// Once the wave has shown its pace: straight to the next round.
		{"next round after the first", known, 30*time.Minute + 5*time.Second, []chunkProgress{chunk(25, false)}, 15 * time.Minute, far, 30 * time.Minute},
		{"earliest chunk decides", known, 30*time.Minute + 5*time.Second, []chunkProgress{chunk(25, false), {sent: t0.Add(10 * time.Minute), perRound: 25}}, time.Minute, far, 10 * time.Minute},
		{"finished chunks do not count", known, 30*time.Minute + 5*time.Second, []chunkProgress{chunk(50, true), chunk(25, false)}, time.Minute, far, 30 * time.Minute},
		// A round overdue: soon, then less and less often.
		{"late by a little", known, 30*time.Minute + 20*time.Second, []chunkProgress{chunk(0, false)}, 15 * time.Minute, far, 20 * time.Second},
		{"late by a lot", known, 2 * time.Hour, []chunkProgress{chunk(25, false)}, time.Minute, far, 15 * time.Minute},
		{"deadline first", known, 30*time.Minute + 5*time.Second, []chunkProgress{chunk(25, false)}, time.Minute, t0.Add(40 * time.Minute), 10*time.Minute - 5*time.Second},
		{"past the deadline", known, time.Hour, []chunkProgress{chunk(25, false)}, time.Minute, t0, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.next(t0.Add(tc.at), tc.chunks, tc.last, tc.deadline); got != tc.want {
				t.Fatalf("next = %s, want %s", got, tc.want)
			}
		})
	}
}
