package bench

import (
	"strings"
	"testing"
	"time"
)

// The harness itself, small: both ways patch every reachable instance, the
// calls are the simulator's own count, and the patch-time accounting is
// consistent. (The targets are judged by `make bench`, not here.)
func TestMeasureSmall(t *testing.T) {
	for _, tc := range []struct {
		f   Fleet
		way Way
	}{
		{Fleet{Instances: 200, Regions: 1}, Patchgate},
		{Fleet{Instances: 400, Regions: 8}, Patchgate},
		{Fleet{Instances: 200, Regions: 1}, Naive},
	} {
		m, err := Measure(t, tc.f, tc.way, Config{})
		if err != nil {
			t.Fatal(err)
		}
		reachable := 0
		for _, g := range tc.f.Scenario(0).Groups {
			if g.Ping == "" {
				reachable += g.Count
			}
		}
		sum := 0
		for _, n := range m.Calls {
			sum += n
		}
		if m.Status != "passed" || m.Patched != reachable || sum != m.TotalCalls || m.TotalCalls == 0 {
			t.Errorf("%s %s: status %s, patched %d of %d, calls %d (sum %d)", tc.way, tc.f, m.Status, m.Patched, reachable, m.TotalCalls, sum)
		}
		// At least a staging and a production round of patching, and
		// nothing faster than the work itself.
		if m.PatchTime < 2*PatchDuration || m.Duration < m.PatchTime || m.Overhead != m.Duration-m.PatchTime {
			t.Errorf("%s %s: clock %s, patch time %s, overhead %s", tc.way, tc.f, m.Duration, m.PatchTime, m.Overhead)
		}
		switch tc.way {
		case Patchgate:
			if m.Calls["inspector2:ListFindings"] == 0 || m.SummaryBytes == 0 || m.CommentBytes == 0 || m.CommentBytes > 65536 {
				t.Errorf("%s: findings calls %d, summary %d B, comment %d B", tc.f, m.Calls["inspector2:ListFindings"], m.SummaryBytes, m.CommentBytes)
			}
		case Naive:
			if m.Calls["ssm:GetCommandInvocation"] < reachable || m.Calls["ssm:DescribeInstancePatchStates"] != reachable {
				t.Errorf("naive: %v", m.Calls)
			}
		}
	}
}

func TestChecksAndMarkdown(t *testing.T) {
	pg := func(n, r int, calls int, overhead time.Duration) *Measurement {
		return &Measurement{Fleet: Fleet{n, r}, Way: Patchgate, Status: "passed", TotalCalls: calls, CallsPerInstance: float64(calls) / float64(n),
			Duration: 5*time.Hour + overhead, PatchTime: 5 * time.Hour, Overhead: overhead, OverheadPct: 100 * overhead.Hours() / 5,
			PeakHeap: 100 << 20, RenderTime: 20 * time.Millisecond, Calls: map[string]int{"ssm:SendCommand": calls}}
	}
	naive := &Measurement{Fleet: Fleet{10000, 1}, Way: Naive, Status: "passed", TotalCalls: 500000, Calls: map[string]int{"ssm:GetCommandInvocation": 500000}}
	ms := []*Measurement{pg(10000, 1, 1400, 3*time.Minute), naive, pg(10000, 8, 1450, 9*time.Minute), pg(50000, 1, 9000, 4*time.Minute)}
	ms[3].PeakHeap = 300 << 20
	met := map[string]bool{}
	for _, c := range Checks(ms) {
		met[c.What] = c.Met
	}
	want := map[string]bool{
		"10000 instances / 1 account-regions: API calls per instance":   true,
		"10000 instances / 1 account-regions: calls, naive / patchgate": true,
		"10000 instances / 1 account-regions: orchestration overhead":   true,
		"10000 instances / 8 account-regions: API calls per instance":   true,
		"10000 instances: overhead, 8 account-regions / 1":              false, // 3x
		"50000 instances / 1 account-regions: API calls per instance":   false, // 0.18
		"50000 instances / 1 account-regions: peak heap":                false,
		"50000 instances / 1 account-regions: job summary rendering":    true,
	}
	for what, w := range want {
		if got, ok := met[what]; !ok || got != w {
			t.Errorf("%s: met %v (present %v), want %v", what, got, ok, w)
		}
	}
	md := Markdown(ms, Checks(ms), 20*time.Millisecond, "BenchmarkX 1 ns/op")
	for _, s := range []string{"| 10000 instances / 1 account-regions | naive |", "❌", "✅", "ssm:GetCommandInvocation", "BenchmarkX"} {
		if !strings.Contains(md, s) {
			t.Errorf("BENCHMARKS.md lacks %q", s)
		}
	}
}
