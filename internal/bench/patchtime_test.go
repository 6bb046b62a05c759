package bench

import (
	"testing"
	"time"
)

// TestPatchTimes: a phase is a barrier across account-regions, so the
// critical path is the sum over phases of each phase's longest
// account-region, while the independent time is the longest account-region's
// own work. Hand-computed cases.
func TestPatchTimes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	work := func(phase, from, to int, wait time.Duration) span {
		return span{phase: phase, work: []interval{{at(from), at(to)}}, waits: wait}
	}
	cases := []struct {
		name                 string
		spans                map[string][]span
		barrier, independent time.Duration
	}{
		{"one target: both are its own work", map[string][]span{
			"a": {work(0, 0, 30, 10*time.Minute), work(1, 40, 100, 0)},
		}, 100 * time.Minute, 100 * time.Minute},
		{"slow staging in a, slow production in b", map[string][]span{
			"a": {work(0, 0, 90, 0), work(1, 90, 120, 0)}, // 90 + 30
			"b": {work(0, 0, 30, 0), work(1, 90, 180, 0)}, // 30 + 90
		}, 180 * time.Minute, 120 * time.Minute},
		{"overlapping commands of a phase count once", map[string][]span{
			"a": {{phase: 0, work: []interval{{at(0), at(30)}, {at(10), at(40)}, {at(50), at(60)}}}},
		}, 50 * time.Minute, 50 * time.Minute},
		{"references: one span per account-region", map[string][]span{
			"a": {work(0, 0, 70, 5*time.Minute)},
			"b": {work(0, 0, 60, 0)},
		}, 75 * time.Minute, 75 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, i := patchTimes(tc.spans)
			if b != tc.barrier || i != tc.independent {
				t.Errorf("patchTimes = %s, %s; want %s, %s", b, i, tc.barrier, tc.independent)
			}
		})
	}
}
