package bench

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Targets are the figures patchgate promises at fleet scale (issue #19),
// judged at 10,000 and 50,000 instances over 1 and 8 account-regions
// under the realistic fleet model.
var Targets = struct {
	FloorRatio   float64 // API calls at most this many times the computed floor
	ScriptRatio  float64 // at least this many times fewer calls than the competent script
	OverheadPct  float64 // orchestration overhead, percent of the simulated patch time
	RegionGrowth float64 // calls per instance over 8 account-regions below this many times that over 1
	PeakHeapMiB  float64 // at 50,000 instances over 8 account-regions
	RenderRatio  float64 // summary or comment render time over json.Marshal of the same result, at 50,000
}{1.3, 8, 1, 1.5, 256, 3}

// The three targets the frontier judges too, each decided in one place:
// a figure exactly at its bound meets the first two, not the growth.
func floorMet(ratio float64) bool   { return ratio <= Targets.FloorRatio }
func overheadMet(pct float64) bool  { return pct <= Targets.OverheadPct }
func growthMet(growth float64) bool { return growth < Targets.RegionGrowth }

// judged are the cases the targets hold for.
func judged(f Fleet) bool {
	return (f.Instances == 10000 || f.Instances == 50000) && (f.Regions == 1 || f.Regions == 8)
}

// Check is one target, met or not.
type Check struct {
	What   string
	Got    string
	Target string
	Met    bool
}

func find(ms []*Measurement, n, regions int, way Way) *Measurement {
	for _, m := range ms {
		if m.Fleet.Instances == n && m.Fleet.Regions == regions && m.Way == way {
			return m
		}
	}
	return nil
}

// Checks judges the measurements against the targets. A judged case whose
// script measurement is missing fails its ratio: a target is never met by
// not measuring it.
func Checks(ms []*Measurement) []Check {
	var out []Check
	add := func(what, got, target string, met bool) { out = append(out, Check{what, got, target, met}) }
	for _, m := range ms {
		if m.Way != Patchgate {
			continue
		}
		f := m.Fleet
		add(fmt.Sprintf("%s: run status", f), m.Status, "passed", m.Status == "passed")
		if !judged(f) {
			continue
		}
		ratio := float64(m.TotalCalls) / float64(max(m.Floor.Total, 1))
		add(fmt.Sprintf("%s: API calls / floor", f), fmt.Sprintf("%.2fx (%d / %d)", ratio, m.TotalCalls, m.Floor.Total),
			fmt.Sprintf("<= %.1fx", Targets.FloorRatio), m.Floor.Total > 0 && floorMet(ratio))
		sr, got := 0.0, "not measured"
		if s := find(ms, f.Instances, f.Regions, Script); s != nil {
			sr = float64(s.TotalCalls) / float64(max(m.TotalCalls, 1))
			got = fmt.Sprintf("%.1fx (%d / %d)", sr, s.TotalCalls, m.TotalCalls)
		}
		add(fmt.Sprintf("%s: calls, script / patchgate", f), got, fmt.Sprintf(">= %.0fx", Targets.ScriptRatio), sr >= Targets.ScriptRatio)
		add(fmt.Sprintf("%s: orchestration overhead", f), fmt.Sprintf("%.2f%% (%s)", m.OverheadPct, round(m.Overhead)),
			fmt.Sprintf("<= %.0f%% of %s", Targets.OverheadPct, round(m.PatchTime)), m.PatchTime > 0 && overheadMet(m.OverheadPct))
		add(fmt.Sprintf("%s: throttling reaching the verdict", f), throttleText(m), "none", !m.ThrottleVerdict)
		if f.Instances == 50000 {
			add(fmt.Sprintf("%s: render / json.Marshal", f), fmt.Sprintf("%.2fx", m.RenderRatio),
				fmt.Sprintf("<= %.0fx", Targets.RenderRatio), m.RenderRatio > 0 && m.RenderRatio <= Targets.RenderRatio)
			if f.Regions == 8 {
				heap := float64(m.PeakHeap) / (1 << 20)
				add(fmt.Sprintf("%s: peak heap", f), fmt.Sprintf("%.0f MiB", heap), fmt.Sprintf("<= %.0f MiB", Targets.PeakHeapMiB), heap <= Targets.PeakHeapMiB)
			}
		}
	}
	// Account-regions run in parallel and each costs a few fixed calls:
	// spreading a fleet over 8 must not cost much more per instance.
	for _, m1 := range ms {
		if m1.Way != Patchgate || m1.Fleet.Regions != 1 || !judged(m1.Fleet) {
			continue
		}
		if m8 := find(ms, m1.Fleet.Instances, 8, Patchgate); m8 != nil {
			growth := m8.CallsPerInstance / max(m1.CallsPerInstance, 1e-9)
			add(fmt.Sprintf("%d instances: calls per instance, 8 account-regions / 1", m1.Fleet.Instances),
				fmt.Sprintf("%.2fx (%.3f / %.3f)", growth, m8.CallsPerInstance, m1.CallsPerInstance),
				fmt.Sprintf("< %.1fx", Targets.RegionGrowth), growthMet(growth))
		}
	}
	return out
}

// Missed is nil when every check is met, or names those that are not:
// `make bench` fails on it.
func Missed(checks []Check) error {
	var miss []string
	for _, c := range checks {
		if !c.Met {
			miss = append(miss, fmt.Sprintf("%s: %s (target %s)", c.What, c.Got, c.Target))
		}
	}
	if len(miss) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d targets not met:\n%s", len(miss), len(checks), strings.Join(miss, "\n"))
}

// throttleText is what throttling cost a run: the ThrottlingExceptions
// answered (retried by the SDK) and whether any reached the verdict.
func throttleText(m *Measurement) string {
	n := 0
	for _, c := range m.Throttled {
		n += c
	}
	if m.ThrottleVerdict {
		return fmt.Sprintf("reached the verdict (%d throttled calls)", n)
	}
	return fmt.Sprintf("none (%d throttled calls, retried)", n)
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }

func mib(b uint64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// Markdown renders the measurements, the per-operation calls beside the
// floor and the checks as BENCHMARKS.md.
func Markdown(ms []*Measurement, checks []Check, frontier []FrontierRun, latency time.Duration, goBench string) string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\nGenerated by `make bench` (`internal/bench`); do not edit by hand.\n\n")
	fmt.Fprintf(&b, "Full `run` flows in process against the simulator, over an in-memory network, on a fake clock "+
		"(Go's `testing/synctest`): every AWS call takes %s of clock time and every patch its simulated duration, yet the clock only "+
		"moves when every goroutine waits, so calls, clock time and overhead are exact and the same on any machine. "+
		"Wall time, memory and render ratios are this machine's.\n\n", latency)
	b.WriteString(fleetProse)
	b.WriteString(realismText())
	b.WriteString(waysProse)

	b.WriteString("## Results\n\n")
	b.WriteString("| fleet | way | status | API calls | calls / instance | clock time | patch time | overhead | throttled | wall | peak heap | peak RSS | render / JSON |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, m := range ms {
		render := ""
		switch {
		case m.Way == Patchgate && m.RenderRatio > 0:
			render = fmt.Sprintf("%.2fx", m.RenderRatio)
		case m.Way == Patchgate:
			render = "not rendered"
		}
		status := m.Status
		if m.Summary != "" {
			status += " (" + m.Summary + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %.3f | %s | %s | %s (%.2f%%) | %d | %s | %s | %s | %s |\n",
			m.Fleet, m.Way, status, m.TotalCalls, m.CallsPerInstance, round(m.Duration), patchTimeCell(m),
			round(m.Overhead), m.OverheadPct, sum(m.Throttled), m.Wall.Round(time.Millisecond), mib(m.PeakHeap), mib(m.PeakRSS), render)
	}
	b.WriteString("\n*Patch time* is the simulated work on the critical path: per account-region and phase, from each SendCommand to its " +
		"last invocation's end (overlaps counted once), plus the soak and the wait for Inspector's rescans after the " +
		"phase's last patch (the script's fixed 40-minute wait counts as such). patchgate's phases are a barrier across account-regions " +
		"(production starts nowhere until staging has passed everywhere), so its patch time is the sum over phases of each phase's longest " +
		"account-region; *barrier* is what that costs beside the longest account-region's own work, a cost of the policy's safety, not of " +
		"polling. The references run account-regions independently. No orchestrator can go faster; *overhead* is everything else: API latency on the critical " +
		"path, poll intervals, locks, listings. *Throttled* are ThrottlingException answers (retried by the SDK).\n\n")

	b.WriteString("## Side by side\n\n| fleet | patchgate | script | waiter | floor | patchgate / floor | script / patchgate | waiter / patchgate |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, m := range ms {
		if m.Way != Patchgate {
			continue
		}
		cell := func(w Way) (string, string) {
			o := find(ms, m.Fleet.Instances, m.Fleet.Regions, w)
			if o == nil {
				return "not run", ""
			}
			return fmt.Sprint(o.TotalCalls), fmt.Sprintf("%.1fx", float64(o.TotalCalls)/float64(max(m.TotalCalls, 1)))
		}
		sc, sr := cell(Script)
		nc, nr := cell(Naive)
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %.2fx | %s | %s |\n", m.Fleet, m.TotalCalls, sc, nc, m.Floor.Total,
			float64(m.TotalCalls)/float64(max(m.Floor.Total, 1)), sr, nr)
	}

	b.WriteString("\n## API calls by operation\n\nThe floor's row is computed, not measured (see *The floor*).\n\n")
	ops := map[string]bool{}
	for _, m := range ms {
		for op := range m.Calls {
			ops[op] = true
		}
		for op := range m.Floor.Calls {
			ops[op] = true
		}
	}
	names := make([]string, 0, len(ops))
	for op := range ops {
		names = append(names, op)
	}
	sort.Strings(names)
	b.WriteString("| fleet | way |")
	for _, op := range names {
		fmt.Fprintf(&b, " %s |", op)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("--:|", len(names)) + "\n")
	row := func(f Fleet, way string, calls map[string]int) {
		fmt.Fprintf(&b, "| %s | %s |", f, way)
		for _, op := range names {
			fmt.Fprintf(&b, " %d |", calls[op])
		}
		b.WriteString("\n")
	}
	for _, m := range ms {
		row(m.Fleet, string(m.Way), m.Calls)
		if m.Way == Patchgate {
			row(m.Fleet, "floor", m.Floor.Calls)
		}
	}

	b.WriteString("\n## Where patchgate exceeds the floor\n\nPer operation, on the judged cases: patchgate's calls, the floor's, and the excess.\n\n")
	b.WriteString("| fleet | operation | patchgate | floor | excess |\n|---|---|--:|--:|--:|\n")
	for _, m := range ms {
		if m.Way != Patchgate || !judged(m.Fleet) {
			continue
		}
		var over []string
		for _, op := range names {
			if m.Calls[op] != m.Floor.Calls[op] {
				over = append(over, op)
			}
		}
		sort.SliceStable(over, func(i, j int) bool {
			return m.Calls[over[i]]-m.Floor.Calls[over[i]] > m.Calls[over[j]]-m.Floor.Calls[over[j]]
		})
		for _, op := range over {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %+d |\n", m.Fleet, op, m.Calls[op], m.Floor.Calls[op], m.Calls[op]-m.Floor.Calls[op])
		}
	}

	b.WriteString("\n## Targets\n\n" + targetsProse + "\n| check | measured | target | |\n|---|---|---|---|\n")
	for _, c := range checks {
		mark := "✅"
		if !c.Met {
			mark = "❌"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.What, c.Got, c.Target, mark)
	}
	var seed int64
	if len(ms) > 0 {
		seed = ms[0].Seed
	}
	if f := frontierMarkdown(frontier, seed); f != "" {
		b.WriteString("\n" + f)
	}
	b.WriteString("\n" + scaleProse)
	if goBench != "" {
		b.WriteString("\n## Hot paths (`go test -bench`)\n\n```\n" + strings.TrimSpace(goBench) + "\n```\n")
	}
	return b.String()
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// patchTimeCell is the patch time, with the barrier's share when phases
// waited for other account-regions.
func patchTimeCell(m *Measurement) string {
	if d := m.PatchTime - m.IndependentPatchTime; m.IndependentPatchTime > 0 && d > 0 {
		return fmt.Sprintf("%s (barrier +%s)", round(m.PatchTime), round(d))
	}
	return round(m.PatchTime).String()
}
