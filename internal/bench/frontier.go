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
	KnownEnds   int     `json:"knownEnds"` // Measurement.KnownEnds
}

// FromMeasurement is the frontier's record of a measurement.
func FromMeasurement(m *Measurement, seed int64, scale float64) FrontierRun {
	return FrontierRun{Fleet: m.Fleet, Seed: seed, Scale: scale, Calls: m.TotalCalls, Floor: m.Floor.Total, OverheadPct: m.OverheadPct, Status: m.Status,
		KnownEnds: m.KnownEnds}
}

// spread is a figure over the seeds whose runs passed: its mean, least
// and greatest, and how many seeds meet its target (a run that did not
// pass meets none: n counts every seed).
type spread struct {
	mean, lo, hi float64
	met, n       int
}

// spreadOf is the spread of xs, the figures of the seeds that passed out
// of n seeds; NaN figures when none passed.
func spreadOf(xs []float64, n int, meets func(float64) bool) spread {
	if len(xs) == 0 {
		return spread{mean: math.NaN(), lo: math.NaN(), hi: math.NaN(), n: n}
	}
	s := spread{lo: math.Inf(1), hi: math.Inf(-1), n: n}
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
	known    spread // KnownEnds / floor
	both     int    // seeds meeting both targets in one run
	failed   int    // runs that did not pass
}

// frontierPoints groups runs by case and scale, in case then scale order.
func frontierPoints(runs []FrontierRun) []frontierPoint {
	type key struct {
		f     Fleet
		scale float64
	}
	var g groups[key, FrontierRun]
	for _, r := range runs {
		g.add(key{r.Fleet, r.Scale}, r)
	}
	by, keys := g.by, g.keys
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
		var ratios, overheads, known []float64
		for _, r := range by[k] {
			if r.Status != "passed" {
				// Its figures say nothing of the trade: it meets no target.
				p.failed++
				continue
			}
			ratio := float64(r.Calls) / float64(max(r.Floor, 1))
			ratios, overheads = append(ratios, ratio), append(overheads, r.OverheadPct)
			known = append(known, float64(r.KnownEnds)/float64(max(r.Floor, 1)))
			if floorMet(ratio) && overheadMet(r.OverheadPct) {
				p.both++
			}
		}
		n := len(by[k])
		p.ratio, p.overhead, p.known = spreadOf(ratios, n, floorMet), spreadOf(overheads, n, overheadMet), spreadOf(known, n, floorMet)
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

// growthPoints pairs each seed's run over 8 account-regions with its run
// over 1 at the same size and PollScale, in the runs' order (so that the
// sums, and the figures, are the same on every run); pairs with a run
// that did not pass are left out.
func growthPoints(runs []FrontierRun) []growthPoint {
	type key struct {
		n     int
		scale float64
		seed  int64
	}
	one := map[key]FrontierRun{}
	for _, r := range runs {
		if r.Fleet.Regions == 1 && r.Status == "passed" {
			one[key{r.Fleet.Instances, r.Scale, r.Seed}] = r
		}
	}
	type point struct {
		n     int
		scale float64
	}
	var g groups[point, float64]
	for _, r := range runs {
		o, ok := one[key{r.Fleet.Instances, r.Scale, r.Seed}]
		if r.Fleet.Regions != 8 || r.Status != "passed" || !ok || o.Calls == 0 {
			continue
		}
		g.add(point{r.Fleet.Instances, r.Scale}, float64(r.Calls)/float64(o.Calls))
	}
	ratios, points := g.by, g.keys
	sort.Slice(points, func(i, j int) bool {
		return points[i].n < points[j].n || points[i].n == points[j].n && points[i].scale < points[j].scale
	})
	var out []growthPoint
	for _, p := range points {
		out = append(out, growthPoint{p.n, p.scale, spreadOf(ratios[p], len(ratios[p]), growthMet)})
	}
	return out
}

// groups gathers values by key, keeping the keys in the order first met.
type groups[K comparable, V any] struct {
	by   map[K][]V
	keys []K
}

func (g *groups[K, V]) add(k K, v V) {
	if g.by == nil {
		g.by = map[K][]V{}
	}
	if _, ok := g.by[k]; !ok {
		g.keys = append(g.keys, k)
	}
	g.by[k] = append(g.by[k], v)
}

// frontierMarkdown is the section on calls against overhead; empty
// without runs. judgedSeed is the seed of the judged figures.
func frontierMarkdown(runs []FrontierRun, judgedSeed int64) string {
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
	fmt.Fprintf(&b, frontierProse, len(seedList), strings.Join(seedList, ", "), judgedSeed)
	fmt.Fprintf(&b, "| fleet | PollScale | calls / floor: mean (least–most) | seeds at <= %gx | overhead: mean (most) | seeds at <= %g%% | seeds at both | ends known: calls / floor |\n",
		Targets.FloorRatio, Targets.OverheadPct)
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	points := frontierPoints(runs)
	for _, p := range points {
		status := ""
		if p.failed > 0 {
			status = fmt.Sprintf(" (%d did not pass)", p.failed)
		}
		if p.failed == p.ratio.n {
			fmt.Fprintf(&b, "| %s | %g | no run passed | 0 of %d | | 0 of %d | 0 of %d%s | |\n", p.fleet, p.scale, p.ratio.n, p.ratio.n, p.ratio.n, status)
			continue
		}
		fmt.Fprintf(&b, "| %s | %g | %.2fx (%.2fx–%.2fx) | %d of %d | %.2f%% (%.2f%%) | %d of %d | %d of %d%s | %.2fx (%.2fx–%.2fx) |\n",
			p.fleet, p.scale, p.ratio.mean, p.ratio.lo, p.ratio.hi, p.ratio.met, p.ratio.n,
			p.overhead.mean, p.overhead.hi, p.overhead.met, p.overhead.n, p.both, p.ratio.n, status,
			p.known.mean, p.known.lo, p.known.hi)
	}
	if gs := growthPoints(runs); len(gs) > 0 {
		fmt.Fprintf(&b, "\n| instances | PollScale | calls per instance, 8 account-regions / 1: mean (least–most) | seeds under %gx |\n|--:|--:|--:|--:|\n", Targets.RegionGrowth)
		for _, g := range gs {
			fmt.Fprintf(&b, "| %d | %g | %.2fx (%.2fx–%.2fx) | %d of %d |\n", g.instances, g.scale, g.growth.mean, g.growth.lo, g.growth.hi, g.growth.met, g.growth.n)
		}
	}
	b.WriteString("\n" + frontierVerdicts(points))
	return b.String()
}

// frontierVerdicts says, per case, at which spacings the mean of the
// seeds meets the floor target with the overhead target (and on how many
// seeds one run meets both), or else the fewest mean calls measured and
// the fewest within the overhead target; and what knowing each wave's end
// would have cost at the default spacing.
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
	meets := func(p frontierPoint) bool {
		return p.failed == 0 && floorMet(p.ratio.mean) && overheadMet(p.overhead.mean)
	}
	for _, f := range fleets {
		ps := by[f]
		var met []string
		var fewest, fewestWithin *frontierPoint
		var known string
		for i := range ps {
			p := &ps[i]
			if meets(*p) {
				met = append(met, fmt.Sprintf("%g (%.2fx, %.2f%%; %d of %d seeds at both)", p.scale, p.ratio.mean, p.overhead.mean, p.both, p.ratio.n))
			}
			if p.failed == p.ratio.n {
				continue
			}
			if fewest == nil || p.ratio.mean < fewest.ratio.mean {
				fewest = p
			}
			if overheadMet(p.overhead.mean) && (fewestWithin == nil || p.ratio.mean < fewestWithin.ratio.mean) {
				fewestWithin = p
			}
			if p.scale == 1 {
				known = fmt.Sprintf(" With every wave's end known, at PollScale 1: %.2fx the floor (%.2fx–%.2fx; %d of %d seeds at <= %gx).",
					p.known.mean, p.known.lo, p.known.hi, p.known.met, p.known.n, Targets.FloorRatio)
			}
		}
		switch {
		case len(met) > 0:
			fmt.Fprintf(&b, "- **%s:** both targets on average at PollScale %s.%s\n", f, strings.Join(met, ", "), known)
		case fewest == nil:
			fmt.Fprintf(&b, "- **%s:** no run passed.\n", f)
		default:
			within := fmt.Sprintf(" No PollScale keeps the overhead within %g%% on average.", Targets.OverheadPct)
			if fewestWithin != nil {
				within = fmt.Sprintf(" Within %g%% overhead on average, the fewest are %.2fx, at PollScale %g.", Targets.OverheadPct, fewestWithin.ratio.mean, fewestWithin.scale)
			}
			fmt.Fprintf(&b, "- **%s:** no PollScale measured meets both on average. The fewest calls on average, at PollScale %g, are %.2fx the floor, with %.2f%% overhead.%s%s\n",
				f, fewest.scale, fewest.ratio.mean, fewest.overhead.mean, within, known)
		}
	}
	return b.String()
}
