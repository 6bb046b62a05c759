package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

var (
	fleetRun     = flag.Bool("fleet", false, "run the fleet benchmarks (make bench)")
	fleetSizes   = flag.String("fleet.sizes", "100,1000,10000,50000", "fleet sizes")
	fleetRegions = flag.String("fleet.regions", "1,8", "account-region counts")
	fleetNaive   = flag.Int("fleet.naive-max", 10000, "largest fleet the naive waiter reference runs on (0: none; at 50,000 it costs ~5 min of wall time per case)")
	fleetWays    = flag.String("fleet.ways", "patchgate,script,naive", "ways to measure (a subset narrows a look; targets need all)")
	fleetExtra   = flag.String("fleet.extra", "200000x40", "further cases, instances x account-regions, comma-separated (reported, not judged; empty: none)")
	fleetOut     = flag.String("fleet.out", "", "write BENCHMARKS.md here")
	fleetGoBench = flag.String("fleet.gobench", "", "`go test -bench` output to include")
	fleetCheck   = flag.Bool("fleet.check", false, "fail when a target is not met")
	fleetSeed    = flag.Int64("fleet.seed", realismSeed, "seed of the realistic fleet model (BENCHMARKS.md is seed 19)")
	// The frontier: each judged case among those run, patchgate only, at
	// each PollScale and seed.
	fleetFrontier      = flag.String("fleet.frontier", "0.5,1,1.5,2,4,8", "PollScales of the frontier, comma-separated (empty: none)")
	fleetFrontierSeeds = flag.String("fleet.frontier-seeds", "19,7,3,11,23,5,29,31", "seeds of the frontier")
)

// caseEnv makes the test binary measure one case and print it: each case
// runs in its own process so that its peak RSS and heap are its own.
const caseEnv = "PATCHGATE_BENCH_CASE"

const resultPrefix = "PATCHGATE-BENCH-RESULT "

// seedEnv passes -fleet.seed to the child processes, scaleEnv a
// frontier run's PollScale.
const (
	seedEnv  = "PATCHGATE_BENCH_SEED"
	scaleEnv = "PATCHGATE_BENCH_SCALE"
)

func TestFleetCase(t *testing.T) {
	spec := os.Getenv(caseEnv)
	if spec == "" {
		t.Skip("run by TestFleet in a child process")
	}
	var n, regions int
	var way string
	if _, err := fmt.Sscanf(spec, "%d %d %s", &n, &regions, &way); err != nil {
		t.Fatalf("%s=%q: %v", caseEnv, spec, err)
	}
	if s := os.Getenv(seedEnv); s != "" {
		seed, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, s, err)
		}
		realismSeed = seed
	}
	var cfg Config
	if s := os.Getenv(scaleEnv); s != "" {
		scale, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", scaleEnv, s, err)
		}
		cfg.PollScale = scale
	}
	m, err := Measure(t, Fleet{Instances: n, Regions: regions}, Way(way), cfg)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(m)
	fmt.Println(resultPrefix + string(js))
}

func ints(t *testing.T, s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("bad list %q", s)
		}
		out = append(out, n)
	}
	return out
}

func TestFleet(t *testing.T) {
	if !*fleetRun {
		t.Skip("fleet benchmarks run with -fleet (make bench)")
	}
	var cases []Fleet
	for _, n := range ints(t, *fleetSizes) {
		for _, r := range ints(t, *fleetRegions) {
			cases = append(cases, Fleet{Instances: n, Regions: r})
		}
	}
	for _, c := range strings.Split(*fleetExtra, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		var f Fleet
		if _, err := fmt.Sscanf(c, "%dx%d", &f.Instances, &f.Regions); err != nil {
			t.Fatalf("-fleet.extra %q: want instances x account-regions, e.g. 200000x40", c)
		}
		cases = append(cases, f)
	}
	var ms []*Measurement
	for _, f := range cases {
		for _, w := range strings.Split(*fleetWays, ",") {
			way := Way(strings.TrimSpace(w))
			// The waiter makes ~50 calls per instance: above naive-max its
			// figures cost minutes of wall time and say nothing new.
			if way == Naive && f.Instances > *fleetNaive {
				continue
			}
			start := time.Now()
			m, err := measureChild(f, way, *fleetSeed, 0)
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
			fmt.Printf("%-40s %-9s %-7s %9d calls %7.3f/instance floor %6d  clock %-10s overhead %-8s (%.2f%%)  heap %-8s wall %s (%s)\n",
				m.Fleet, m.Way, m.Status, m.TotalCalls, m.CallsPerInstance, m.Floor.Total, round(m.Duration), round(m.Overhead), m.OverheadPct,
				mib(m.PeakHeap), m.Wall.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		}
	}
	frontier, err := runFrontier(cases)
	if err != nil {
		t.Fatal(err)
	}
	checks := Checks(ms)
	for _, c := range checks {
		mark := "ok  "
		if !c.Met {
			mark = "MISS"
		}
		fmt.Printf("%s %s: %s (target %s)\n", mark, c.What, c.Got, c.Target)
	}
	if *fleetOut != "" {
		gob := ""
		if *fleetGoBench != "" {
			data, err := os.ReadFile(*fleetGoBench)
			if err != nil {
				t.Fatal(err)
			}
			gob = string(data)
		}
		if err := os.WriteFile(*fleetOut, []byte(Markdown(ms, checks, frontier, 20*time.Millisecond, gob)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Missed(checks); *fleetCheck && err != nil {
		t.Fatal(err)
	}
}

// measureChild measures one case in a child process (its own peak RSS
// and heap) at a seed and PollScale (0: the default).
func measureChild(f Fleet, way Way, seed int64, scale float64) (*Measurement, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestFleetCase$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %d %s", caseEnv, f.Instances, f.Regions, way), fmt.Sprintf("%s=%d", seedEnv, seed))
	if scale != 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%g", scaleEnv, scale))
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s, %s, seed %d, PollScale %g: %w\n%s%s", f, way, seed, scale, err, out.String(), errOut.String())
	}
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if js, ok := strings.CutPrefix(sc.Text(), resultPrefix); ok {
			m := &Measurement{}
			if err := json.Unmarshal([]byte(js), m); err != nil {
				return nil, err
			}
			return m, nil
		}
	}
	return nil, fmt.Errorf("%s, %s, seed %d: no result from the child:\n%s", f, way, seed, out.String())
}

// runFrontier measures patchgate on each judged case among cases at each
// of -fleet.frontier's PollScales and -fleet.frontier-seeds' seeds, two
// children at a time (their figures are clock figures, the same however
// many run beside them). A child that fails is a run that did not pass,
// reported with the others rather than losing them.
func runFrontier(cases []Fleet) ([]FrontierRun, error) {
	if strings.TrimSpace(*fleetFrontier) == "" || strings.TrimSpace(*fleetFrontierSeeds) == "" {
		return nil, nil
	}
	var scales []float64
	for _, s := range strings.Split(*fleetFrontier, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) || slices.Contains(scales, v) {
			return nil, fmt.Errorf("-fleet.frontier %q: want distinct positive PollScales, e.g. 1,2,4", *fleetFrontier)
		}
		scales = append(scales, v)
	}
	var seeds []int64
	for _, s := range strings.Split(*fleetFrontierSeeds, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || slices.Contains(seeds, v) {
			return nil, fmt.Errorf("-fleet.frontier-seeds %q: want distinct integers", *fleetFrontierSeeds)
		}
		seeds = append(seeds, v)
	}
	type job struct {
		f     Fleet
		seed  int64
		scale float64
	}
	var jobs []job
	for _, f := range cases {
		if !judged(f) {
			continue
		}
		for _, scale := range scales {
			for _, seed := range seeds {
				jobs = append(jobs, job{f, seed, scale})
			}
		}
	}
	runs := make([]FrontierRun, len(jobs))
	var g errgroup.Group
	g.SetLimit(2)
	for i, j := range jobs {
		g.Go(func() error {
			m, err := measureChild(j.f, Patchgate, j.seed, j.scale)
			if err != nil {
				fmt.Printf("frontier %s seed %d PollScale %g: %v\n", j.f, j.seed, j.scale, err)
				runs[i] = FrontierRun{Fleet: j.f, Seed: j.seed, Scale: j.scale, Status: "error"}
				return nil
			}
			runs[i] = FromMeasurement(m, j.seed, j.scale)
			fmt.Printf("frontier %-40s seed %-3d PollScale %-4g %6d calls (%.2fx the floor) overhead %.2f%% %s\n",
				j.f, j.seed, j.scale, m.TotalCalls, float64(m.TotalCalls)/float64(max(m.Floor.Total, 1)), m.OverheadPct, m.Status)
			return nil
		})
	}
	return runs, g.Wait()
}
