package rollout

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
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

// history is a record of completions: n at each offset after the send.
func history(at map[time.Duration]int) *completions {
	h := &completions{}
	for off, n := range at {
		h.add(off, n)
	}
	return h
}

func TestPacer(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	far := t0.Add(24 * time.Hour)
	chunk := func(total, completed int, terminal bool) chunkProgress {
		return chunkProgress{sent: t0, perRound: total / 2, total: total, completed: completed, terminal: terminal}
	}
	p := pacer{min: 5 * time.Second, max: 15 * time.Minute}
	typed := p
	typed.typical = 30 * time.Minute
	// Earlier waves: most done by 20 minutes, a long tail to 3 hours; the
	// 99th percentile is the 2-hour straggler.
	tailed := p
	tailed.typical = 30 * time.Minute
	tailed.seen = history(map[time.Duration]int{20 * time.Minute: 98, 2 * time.Hour: 1, 3 * time.Hour: 1})
	// Too few completions to predict an end from (inspect): the tail rule.
	thin := p
	thin.seen = history(map[time.Duration]int{20 * time.Minute: 2, 2 * time.Hour: 1})
	// A decline from 1000 to 100 running over the 20 minutes before now.
	decline := func(at time.Duration) []remainingAt {
		return []remainingAt{{t0.Add(at - 20*time.Minute), 1000}, {t0.Add(at), 100}}
	}
	for _, tc := range []struct {
		name     string
		p        pacer
		at       time.Duration // since the chunks were sent
		chunks   []chunkProgress
		trail    []remainingAt
		waiting  bool
		last     time.Duration
		deadline time.Time
		want     time.Duration
	}{
		{"unknown pace: first look soon after sending", p, 0, []chunkProgress{chunk(50, 0, false)}, nil, false, 0, far, 5 * time.Second},
		{"unknown pace doubles", p, time.Minute, []chunkProgress{chunk(50, 0, false)}, nil, false, 40 * time.Second, far, 80 * time.Second},
		{"unknown pace is capped", p, time.Hour, []chunkProgress{chunk(50, 0, false)}, nil, false, 10 * time.Minute, far, 15 * time.Minute},
		{"typical known: first completions one invocation after the send", typed, 20 * time.Minute, []chunkProgress{chunk(50, 0, false)}, nil, false, 0, far, 10*time.Minute + 5*time.Second},
		// The bulk: sleep until the earlier completions say the wave is
		// down to its tail (the 99th percentile, 2h after the send)...
		{"bulk: until the tail is due", tailed, 90 * time.Minute, []chunkProgress{chunk(1000, 700, false)}, nil, false, time.Hour, far, 30*time.Minute + 15*time.Second + 5*time.Second},
		// ...but never longer than the wave's age: a doubling at worst.
		{"bulk: at most the wave's age", tailed, 40 * time.Minute, []chunkProgress{chunk(1000, 700, false)}, nil, false, time.Hour, far, 40 * time.Minute},
		{"bulk: the last chunk sent decides", tailed, 90 * time.Minute, []chunkProgress{chunk(500, 300, false), {sent: t0.Add(10 * time.Minute), total: 500, completed: 300}}, nil, false, time.Hour, far, 40*time.Minute + 15*time.Second + 5*time.Second},
		// Past the prediction: this wave's own decline, projected to its tail.
		{"projected decline", tailed, 2*time.Hour + 30*time.Minute, []chunkProgress{chunk(1000, 900, false)}, decline(2*time.Hour + 30*time.Minute), false, time.Minute, far, 20 * time.Minute},
		{"projected decline without history", typed, 40 * time.Minute, []chunkProgress{chunk(1000, 900, false)}, decline(40 * time.Minute), false, time.Minute, far, 20 * time.Minute},
		// The tail (1% or 3 still running): every 1/90 of the wave's age.
		{"tail of a large wave", tailed, 2 * time.Hour, []chunkProgress{chunk(1000, 990, false)}, nil, false, time.Hour, far, 80 * time.Second},
		{"tail of a small wave", tailed, 2 * time.Hour, []chunkProgress{chunk(62, 59, false)}, nil, false, time.Hour, far, 80 * time.Second},
		{"tail watch at most max apart", tailed, 23 * time.Hour, []chunkProgress{chunk(62, 61, false)}, nil, false, time.Hour, far, 15 * time.Minute},
		{"tail watch at least min apart", thin, time.Minute, []chunkProgress{chunk(62, 61, false)}, nil, false, time.Hour, far, 5 * time.Second},
		{"finished chunks do not count", tailed, 2 * time.Hour, []chunkProgress{chunk(50, 50, true), chunk(1000, 995, false)}, nil, false, time.Hour, far, 80 * time.Second},
		// Chunks waiting for the budget: the first running one's end.
		// Never more than an hour (4*PollMax) between looks, for progress.
		{"waiting: the latest earlier completion", tailed, 2 * time.Hour, []chunkProgress{chunk(50, 30, false)}, nil, true, time.Minute, far, time.Hour},
		{"waiting: its rounds of typical invocations", typed, 45 * time.Minute, []chunkProgress{chunk(50, 30, false)}, nil, true, time.Minute, far, 15*time.Minute + 5*time.Second},
		{"waiting, overdue: the tail watch", typed, 2 * time.Hour, []chunkProgress{chunk(50, 30, false)}, nil, true, time.Minute, far, 80 * time.Second},
		{"waiting, unknown pace doubles", p, time.Minute, []chunkProgress{chunk(50, 0, false)}, nil, true, 40 * time.Second, far, 80 * time.Second},
		{"deadline first", tailed, 2 * time.Hour, []chunkProgress{chunk(1000, 995, false)}, nil, false, time.Minute, t0.Add(2*time.Hour + time.Minute), time.Minute},
		{"past the deadline", tailed, 2 * time.Hour, []chunkProgress{chunk(1000, 995, false)}, nil, false, time.Minute, t0, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.next(t0.Add(tc.at), tc.chunks, tc.trail, tc.waiting, tc.last, tc.deadline); got != tc.want {
				t.Fatalf("next = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCompletions(t *testing.T) {
	var none *completions
	if !none.empty(time.Now()) {
		t.Fatal("a nil record is not empty")
	}
	if _, ok := none.quantile(time.Now(), 0.5); ok {
		t.Fatal("a quantile of nothing")
	}
	// A completion seen at the send itself (an instance with nothing to
	// install, polled at once) is a completion, in the first grain.
	at0 := &completions{}
	at0.add(0, 3)
	if got, ok := at0.quantile(time.Now(), 1); !ok || got != completionGrain {
		t.Fatalf("completions at the send: quantile(1) = %s, %v", got, ok)
	}
	h := history(map[time.Duration]int{10 * time.Second: 2, 20 * time.Minute: 7, time.Hour: 1})
	h.add(-time.Second, 5) // before the send: ignored
	h.add(time.Hour, 0)    // nothing
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.1, 15 * time.Second}, // bucket ends: 15 s grains
		{0.2, 15 * time.Second},
		{0.21, 20*time.Minute + 15*time.Second},
		{0.9, 20*time.Minute + 15*time.Second},
		{0.91, time.Hour + 15*time.Second},
		{1, time.Hour + 15*time.Second},
	} {
		if got, ok := h.quantile(time.Now(), tc.q); !ok || got != tc.want {
			t.Errorf("quantile(%v) = %s, %v; want %s", tc.q, got, ok, tc.want)
		}
	}
}

func TestProjectDecline(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for _, tc := range []struct {
		name           string
		trail          []remainingAt
		running, total int
		want           time.Duration
		ok             bool
	}{
		{"one poll: no decline yet", []remainingAt{{at(10), 100}}, 100, 100, 0, false},
		{"no decline", []remainingAt{{at(10), 100}, {at(20), 100}}, 100, 100, 0, false},
		// 1000 -> 100 in 20 min: down to the tail of 10 in 20 more.
		{"tenfold in 20 minutes", []remainingAt{{at(0), 1000}, {at(20), 100}}, 100, 1000, 20 * time.Minute, true},
		// The rate counts idle polls since the last decline: slower.
		{"idle polls slow the rate", []remainingAt{{at(0), 1000}, {at(20), 100}, {at(40), 100}}, 100, 1000, 40 * time.Minute, true},
		// A small wave's tail is 3 instances: 12 -> 6 in 10 min, to 3 in 10.
		{"small wave", []remainingAt{{at(0), 12}, {at(10), 6}}, 6, 62, 10 * time.Minute, true},
		// Nothing running: nothing to project (a log of zero).
		{"nothing running", []remainingAt{{at(0), 100}, {at(10), 50}}, 0, 100, 0, false},
		// Two polls at the same instant give no rate (a division by zero).
		{"no time between the polls", []remainingAt{{at(10), 100}, {at(10), 50}}, 50, 100, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.trail[len(tc.trail)-1].at
			got, ok := projectDecline(tc.trail, now, tc.running, tc.total)
			if ok != tc.ok || (ok && (got-tc.want).Abs() > time.Second) {
				t.Fatalf("projectDecline = %s, %v; want %s, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

const spreadPolicy = `apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: web}
spec:
  operatingSystem: AMAZON_LINUX_2023
  baseline: {approvalRules: [{classifications: [Security], approveAfterDays: 7}]}
  install: {executionTimeout: 8h}
  accounts: [{id: "111122223333"}]
  regions: [us-east-1]
  phases:
    - name: staging
      targets: {tags: {Environment: staging, App: web}}
      maxConcurrency: "50%"
    - name: production
      targets: {tags: {Environment: production, App: web}}
      maxConcurrency: "50%"
      maxErrors: "5%"
      successThreshold: "95%"
      waves: ["10%", "50%", "100%"]
`

// On a realistic fleet (install times spread from minutes to hours) the
// pacer watches each wave's tail closely and its bulk hardly at all: every
// wave's end is seen within 1/90 of the wave's duration (plus the poll
// floor), with few polls. A pacer that expects rounds of one typical
// duration polls again and again once its round is overdue, and sees the
// end of a long tail up to PollMax late.
func TestPacingOnASpreadFleet(t *testing.T) { synctest.Test(t, testPacingOnASpreadFleet) }

// spreadHarness is a realistic fleet of 1,040 instances (install times
// spread from minutes to hours) without failures or throttling: pacing
// only.
func spreadHarness(t *testing.T) *harness {
	r := &awssim.Realism{Seed: 3, FailureShare: -1, TimeoutShare: -1, UndeliverableShare: -1, FindingsMean: -1, RateLimits: map[string]float64{}}
	for op := range awssim.DefaultRateLimits {
		r.RateLimits[op] = -1 // the harness retries throttling within 10 ms: pacing only here
	}
	sc := &awssim.Scenario{Accounts: []string{"111122223333"}, Realism: r, Groups: []awssim.Group{
		{Region: "us-east-1", Count: 40, Name: "stg", Tags: map[string]string{"Environment": "staging", "App": "web"}, Missing: 4},
		{Region: "us-east-1", Count: 1000, Name: "prd", Tags: map[string]string{"Environment": "production", "App": "web"}, Missing: 4},
	}}
	h := newHarness(t, sc)
	h.opt.PollMin, h.opt.PollMax = 5*time.Second, 15*time.Minute // the defaults
	return h
}

// PollScale reaches the pacer: the same fleet at PollScale 4 is looked
// at markedly less often, and its run still passes.
func TestPollScaleSpacesTheLooks(t *testing.T) {
	looks := map[float64]int{}
	for _, scale := range []float64{1, 4} {
		synctest.Test(t, func(t *testing.T) {
			h := spreadHarness(t)
			h.opt.PollScale = scale
			run := h.run(context.Background(), mustPolicy(t, spreadPolicy))
			if run.Status != result.StatusPassed {
				t.Fatalf("PollScale %g: status %s: %s", scale, run.Status, run.Summary)
			}
			looks[scale] = h.sim.Calls()["ssm:ListCommands"]
		})
	}
	t.Logf("ListCommands: %d at PollScale 1, %d at 4", looks[1], looks[4])
	if looks[4] > looks[1]*3/4 {
		t.Errorf("%d ListCommands at PollScale 4 against %d at 1: want at most three quarters", looks[4], looks[1])
	}
}

func testPacingOnASpreadFleet(t *testing.T) {
	h := spreadHarness(t)
	run := h.run(context.Background(), mustPolicy(t, spreadPolicy))
	if run.Status != result.StatusPassed {
		t.Fatalf("status %s: %s %+v", run.Status, run.Summary, run.Policies)
	}
	var waves []result.Wave
	for _, ph := range run.Policies[0].Targets[0].Phases {
		waves = append(waves, ph.Waves...)
	}
	if len(waves) != 4 {
		t.Fatalf("%d waves, want staging's one and production's three", len(waves))
	}
	slowest := time.Duration(0)
	for i, w := range waves[:len(waves)-1] {
		var ended time.Time
		for _, c := range w.Commands {
			_, e, ok := h.sim.CommandSpan(c.CommandID)
			if !ok {
				t.Fatalf("wave %d: command %s never ends", i+1, c.CommandID)
			}
			if e.After(ended) {
				ended = e
			}
		}
		took := ended.Sub(w.StartedAt)
		slowest = max(slowest, took)
		// The next wave starts at the poll that saw this one end.
		lag := waves[i+1].StartedAt.Sub(ended)
		t.Logf("wave %d: took %s, seen done %s late", i+1, took.Round(time.Second), lag.Round(time.Second))
		if limit := took/90 + h.opt.PollMin; lag > limit {
			t.Errorf("wave %d took %s and was seen done %s late; the tail watch promises at most %s", i+1, took.Round(time.Second), lag.Round(time.Second), limit.Round(time.Second))
		}
	}
	if slowest < 90*time.Minute {
		t.Fatalf("the slowest wave took %s: the fleet has no long tail, so the test shows nothing", slowest)
	}
	polls := h.sim.Calls()["ssm:ListCommands"]
	t.Logf("%d ListCommands calls", polls)
	// Staging allows no error (maxErrors 0), so its wave is looked at every
	// PollMax at least, about 17 of these calls.
	if polls > 140 {
		t.Errorf("%d ListCommands calls for 4 waves, want at most 140", polls)
	}
}
