package bench

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// FrontierRun is one patchgate run of the frontier: a judged case at one
// seed of the realistic model, its polls spaced Scale times the default
// (rollout.Options.PollScale).
type FrontierRun struct {
	Fleet       Fleet   `json:"fleet"`
	Seed        int64   `json:"seed"`
	Scale       float64 `json:"scale"`
	Calls       int     `json:"calls"`
	Floor       int     `json:"floor"`
	OverheadPct float64 `json:"overheadPct"`
	Status      string  `json:"status"`
}

// FromMeasurement is the frontier's record of a measurement.
func FromMeasurement(m *Measurement, seed int64, scale float64) FrontierRun {
	return FrontierRun{Fleet: m.Fleet, Seed: seed, Scale: scale, Calls: m.TotalCalls, Floor: m.Floor.Total, OverheadPct: m.OverheadPct, Status: m.Status}
}

// spread is a figure over the seeds: its mean, least and greatest, and
// how many seeds meet its target.
type spread struct {
	mean, lo, hi float64
	met, n       int
}

func spreadOf(xs []float64, meets func(float64) bool) spread {
	s := spread{lo: math.Inf(1), hi: math.Inf(-1), n: len(xs)}
	for _, x := range xs {
		s.mean += x / float64(len(xs))
		s.lo, s.hi = min(s.lo, x), max(s.hi, x)
		if meets(x) {
			s.met++
		}
	}
	return s
}

// frontierPoint is one case at one scale, over its seeds.
type frontierPoint struct {
	fleet    Fleet
	scale    float64
	ratio    spread // calls / floor
	overhead spread // percent
	both     int    // seeds meeting both targets in one run
	failed   int    // runs that did not pass
}

// frontierPoints groups runs by case and scale, in case then scale order.
func frontierPoints(runs []FrontierRun) []frontierPoint {
	type key struct {
		f     Fleet
		scale float64
	}
	by := map[key][]FrontierRun{}
	var keys []key
	for _, r := range runs {
		k := key{r.Fleet, r.Scale}
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		by[k] = append(by[k], r)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.f != b.f {
			return a.f.Instances < b.f.Instances || a.f.Instances == b.f.Instances && a.f.Regions < b.f.Regions
		}
		return a.scale < b.scale
	})
	var out []frontierPoint
	for _, k := range keys {
		p := frontierPoint{fleet: k.f, scale: k.scale}
		var ratios, overheads []float64
		for _, r := range by[k] {
			ratio := float64(r.Calls) / float64(max(r.Floor, 1))
			ratios, overheads = append(ratios, ratio), append(overheads, r.OverheadPct)
			if ratio <= Targets.FloorRatio && r.OverheadPct <= Targets.OverheadPct {
				p.both++
			}
			if r.Status != "passed" {
				p.failed++
			}
		}
		p.ratio = spreadOf(ratios, func(x float64) bool { return x <= Targets.FloorRatio })
		p.overhead = spreadOf(overheads, func(x float64) bool { return x <= Targets.OverheadPct })
		out = append(out, p)
	}
	return out
}

// growthPoint is the calls per instance over 8 account-regions against
// 1, at one size and scale, seed by seed.
type growthPoint struct {
	instances int
	scale     float64
	growth    spread
}

func growthPoints(runs []FrontierRun) []growthPoint {
	type key struct {
		n     int
		scale float64
		seed  int64
	}
	calls := map[key]map[int]int{} // by account-region count
	for _, r := range runs {
		k := key{r.Fleet.Instances, r.Scale, r.Seed}
		if calls[k] == nil {
			calls[k] = map[int]int{}
		}
		calls[k][r.Fleet.Regions] = r.Calls
	}
	type point struct {
		n     int
		scale float64
	}
	ratios := map[point][]float64{}
	var points []point
	for k, c := range calls {
		one, eight := c[1], c[8]
		if one == 0 || eight == 0 {
			continue
		}
		p := point{k.n, k.scale}
		if _, ok := ratios[p]; !ok {
			points = append(points, p)
		}
		ratios[p] = append(ratios[p], float64(eight)/float64(one))
	}
	sort.Slice(points, func(i, j int) bool {
		return points[i].n < points[j].n || points[i].n == points[j].n && points[i].scale < points[j].scale
	})
	var out []growthPoint
	for _, p := range points {
		out = append(out, growthPoint{p.n, p.scale, spreadOf(ratios[p], func(x float64) bool { return x < Targets.RegionGrowth })})
	}
	return out
}

// frontierMarkdown is the section on calls against overhead; empty
// without runs.
func frontierMarkdown(runs []FrontierRun) string {
	if len(runs) == 0 {
		return ""
	}
	seeds := map[int64]bool{}
	var seedList []string
	for _, r := range runs {
		if !seeds[r.Seed] {
			seeds[r.Seed] = true
			seedList = append(seedList, fmt.Sprint(r.Seed))
		}
	}
	var b strings.Builder
	b.WriteString("## Calls against overhead\n\n")
	fmt.Fprintf(&b, frontierProse, len(seedList), strings.Join(seedList, ", "))
	b.WriteString("| fleet | PollScale | calls / floor: mean (least–most) | seeds at <= 1.3x | overhead: mean (most) | seeds at <= 1% | seeds at both |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|\n")
	points := frontierPoints(runs)
	for _, p := range points {
		status := ""
		if p.failed > 0 {
			status = fmt.Sprintf(" (%d did not pass)", p.failed)
		}
		fmt.Fprintf(&b, "| %s | %g | %.2fx (%.2fx–%.2fx) | %d of %d | %.2f%% (%.2f%%) | %d of %d | %d of %d%s |\n",
			p.fleet, p.scale, p.ratio.mean, p.ratio.lo, p.ratio.hi, p.ratio.met, p.ratio.n,
			p.overhead.mean, p.overhead.hi, p.overhead.met, p.overhead.n, p.both, p.ratio.n, status)
	}
	if gs := growthPoints(runs); len(gs) > 0 {
		b.WriteString("\n| instances | PollScale | calls per instance, 8 account-regions / 1: mean (least–most) | seeds under 1.5x |\n|--:|--:|--:|--:|\n")
		for _, g := range gs {
			fmt.Fprintf(&b, "| %d | %g | %.2fx (%.2fx–%.2fx) | %d of %d |\n", g.instances, g.scale, g.growth.mean, g.growth.lo, g.growth.hi, g.growth.met, g.growth.n)
		}
	}
	b.WriteString("\n" + frontierVerdicts(points))
	return b.String()
}

// frontierVerdicts says, per case, at which spacings the mean run meets
// the floor target with the overhead target, or how near the sparsest
// spacing measured comes.
func frontierVerdicts(points []frontierPoint) string {
	var b strings.Builder
	var fleets []Fleet
	by := map[Fleet][]frontierPoint{}
	for _, p := range points {
		if _, ok := by[p.fleet]; !ok {
			fleets = append(fleets, p.fleet)
		}
		by[p.fleet] = append(by[p.fleet], p)
	}
	for _, f := range fleets {
		ps := by[f]
		var met []string
		for _, p := range ps {
			if p.ratio.mean <= Targets.FloorRatio && p.overhead.mean <= Targets.OverheadPct {
				met = append(met, fmt.Sprintf("%g (%.2fx, %.2f%%)", p.scale, p.ratio.mean, p.overhead.mean))
			}
		}
		if len(met) > 0 {
			fmt.Fprintf(&b, "- **%s:** both targets on average at PollScale %s.\n", f, strings.Join(met, ", "))
			continue
		}
		fewest := ps[0]
		for _, p := range ps {
			if p.ratio.mean < fewest.ratio.mean {
				fewest = p
			}
		}
		fmt.Fprintf(&b, "- **%s:** no PollScale measured meets both on average. The fewest calls, at PollScale %g, are %.2fx the floor, with %.2f%% overhead.\n",
			f, fewest.scale, fewest.ratio.mean, fewest.overhead.mean)
	}
	return b.String()
}
