package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/awsconnect"
	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/memnet"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
	"github.com/patchgate/patchgate/internal/rollout"
)

// Way is how a fleet is patched: by patchgate, or the naive reference.
type Way string

const (
	Patchgate Way = "patchgate"
	Script    Way = "script" // the competent script (script.go)
	Naive     Way = "naive"  // the SDK's waiter per instance (naive.go)
)

// Measurement is what one run of one fleet cost.
type Measurement struct {
	Fleet   Fleet  `json:"fleet"`
	Way     Way    `json:"way"`
	Seed    int64  `json:"seed"` // of the realistic fleet model
	Status  string `json:"status"`
	Summary string `json:"summary,omitempty"` // the run's own sentence when it did not pass
	Patched int    `json:"patched"`           // instances whose patch succeeded
	// Calls are the simulator's API calls by operation ("ssm:SendCommand").
	Calls            map[string]int `json:"calls"`
	TotalCalls       int            `json:"totalCalls"`
	CallsPerInstance float64        `json:"callsPerInstance"`
	// Duration is the run's clock time; PatchTime the simulated work on its
	// longest account-region (patching, soaks, Inspector's rescans), which
	// no orchestrator can shorten; Overhead the difference.
	Duration  time.Duration `json:"duration"`
	PatchTime time.Duration `json:"patchTime"`
	// IndependentPatchTime is the longest account-region's own work, as if
	// phases were not a barrier across account-regions (PatchTime is).
	IndependentPatchTime time.Duration `json:"independentPatchTime"`
	Overhead             time.Duration `json:"overhead"`
	OverheadPct          float64       `json:"overheadPct"`
	// Wall is the real time the measurement took on this machine (CPU cost
	// of the orchestrator, the SDK and the simulator together).
	Wall     time.Duration `json:"wall"`
	PeakHeap uint64        `json:"peakHeap"` // bytes, sampled
	PeakRSS  uint64        `json:"peakRss"`  // bytes (VmHWM), 0 when unknown
	// Report sizes and the time to render the job summary (patchgate only).
	SummaryBytes int           `json:"summaryBytes,omitempty"`
	CommentBytes int           `json:"commentBytes,omitempty"`
	JSONBytes    int           `json:"jsonBytes,omitempty"`
	RenderTime   time.Duration `json:"renderTime,omitempty"`
	// RenderRatio is the median, over renderReps, of the summary's and the
	// comment's render time over json.Marshal of the same result (the
	// larger of the two), patchgate only.
	RenderRatio float64 `json:"renderRatio,omitempty"`
	// Floor is the computed floor of the case (floor.go), the same for
	// every way.
	Floor Floor `json:"floor"`
	// KnownEnds is patchgate's calls had it known when each wave would
	// end (knownEnds); patchgate only.
	KnownEnds int `json:"knownEnds,omitempty"`
	// Throttled are the calls the simulator answered ThrottlingException,
	// by operation; ThrottleVerdict is whether throttling reached the
	// verdict (the run did not pass, or its result mentions throttling).
	Throttled       map[string]int `json:"throttled,omitempty"`
	ThrottleVerdict bool           `json:"throttleVerdict,omitempty"`
	// floorInputs are the floor's phases of every account-region (tests).
	floorInputs []FloorPhase
}

// Config shapes a measurement.
type Config struct {
	// Latency is each API call's latency (clock time); default 20ms.
	Latency time.Duration
	// Parallel is patchgate's account-region parallelism; 0: its default
	// (16), or every account-region at once above 16 of them, as a user
	// runs 40 (--parallel 40): each has its own SSM rate limits.
	Parallel int
	// PollScale spaces patchgate's polls (rollout.Options.PollScale);
	// 0: its default.
	PollScale float64
}

// Measure patches the fleet the given way in a synctest bubble and reports
// the cost. The bubble is why it needs a *testing.T: synctest runs only in
// tests; `make bench` runs it through `go test`.
func Measure(t *testing.T, f Fleet, way Way, cfg Config) (*Measurement, error) {
	if cfg.Latency == 0 {
		cfg.Latency = 20 * time.Millisecond
	}
	if cfg.Parallel == 0 && len(f.targets()) > 16 {
		cfg.Parallel = len(f.targets())
	}
	runtime.GC()
	resetPeakRSS()
	stopHeap := sampleHeap()
	wall := time.Now()
	m := &Measurement{Fleet: f, Way: way, Seed: realismSeed}
	var r *result.Run
	var err error
	synctest.Test(t, func(t *testing.T) {
		r, err = m.run(f, way, cfg)
	})
	m.Wall = time.Since(wall)
	m.PeakHeap = stopHeap()
	m.PeakRSS = peakRSS()
	if err != nil {
		return nil, err
	}
	// Above 50,000 instances, where it is not judged, rendering is
	// skipped: one summary and comment of a 200,000-instance result cost
	// over ten minutes of wall time on a busy 2-CPU machine.
	if r != nil && f.Instances <= 50000 {
		m.render(r)
	}
	return m, nil
}

// run happens inside the bubble: time.Now is fake there.
func (m *Measurement) run(f Fleet, way Way, cfg Config) (*result.Run, error) {
	ctx := context.Background()
	pol, err := f.Policy()
	if err != nil {
		return nil, err
	}
	sim := awssim.New(f.Scenario(cfg.Latency), clock.Real{})
	srv := memnet.Serve(sim)
	defer srv.Close()
	floorIn := []FloorTarget(nil)
	if m.Floor, floorIn, err = fleetFloor(pol, sim); err != nil {
		return nil, err
	}
	for _, t := range floorIn {
		m.floorInputs = append(m.floorInputs, t.Phases...)
	}

	conns := 0 // the SDK's default: unlimited per host
	if way == Naive {
		// A naive script's goroutine per instance would otherwise open a
		// connection per instance; 100 is a generous pool.
		conns = 100
	}
	base, err := awsapi.LoadConfig(ctx, awsapi.Options{Region: "us-east-1", Endpoint: srv.URL, RetryMaxBackoff: time.Second,
		Extra: []func(*config.LoadOptions) error{config.WithHTTPClient(srv.HTTPClient(conns)),
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(awssim.AccessKeyFor(accounts[0]), "bench", ""))}})
	if err != nil {
		return nil, err
	}
	factory := &awsapi.Factory{Base: base, SessionName: "patchgate-bench"}

	start := time.Now()
	var r *result.Run
	var spans map[string][]span
	var progressEvery time.Duration // patchgate's, for KnownEnds
	switch way {
	case Patchgate:
		opt := rollout.Options{RunID: "bench", ForceWindow: true, Parallel: cfg.Parallel, PollScale: cfg.PollScale,
			Connect: awsconnect.Rollout(factory, awsconnect.Evidence(clock.Real{})), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		r = rollout.New(opt).Run(ctx, []*policy.Policy{pol})
		m.Status = string(r.Status)
		if r.Status != result.StatusPassed {
			m.Summary = r.Summary
			for _, p := range r.Policies {
				for _, t := range p.Targets {
					if t.Status != result.StatusPassed {
						m.Summary += fmt.Sprintf("; %s/%s %s: %s", t.AccountID, t.Region, t.Status, t.Reason)
					}
				}
			}
		}
		spans = resultSpans(r, sim)
		progressEvery = opt.ProgressEvery()
	case Script:
		var sr *scriptRun
		sr, err = runScript(ctx, factory, pol)
		if err != nil {
			return nil, err
		}
		m.Status, m.Summary, m.Patched, spans = sr.status, sr.reason, sr.patched, sr.spans(sim)
	case Naive:
		var n *naiveRun
		n, err = runNaive(ctx, factory, pol, f)
		if err != nil {
			return nil, err
		}
		m.Status, m.Summary, m.Patched, spans = n.status, n.reason, n.patched, n.spans(sim)
	default:
		return nil, fmt.Errorf("unknown way %q", way)
	}
	m.Duration = time.Since(start)
	m.Throttled = throttled(sim)
	m.ThrottleVerdict = m.Status != "passed" && mentionsThrottling(m.Summary)
	if r != nil {
		// Any error, reason or warning of the result that names throttling
		// reached what the user reads, passed or not.
		js, jerr := json.Marshal(r)
		m.ThrottleVerdict = m.ThrottleVerdict || jerr != nil || mentionsThrottling(string(js))
	}
	m.Calls = sim.Calls()
	for _, n := range m.Calls {
		m.TotalCalls += n
	}
	m.CallsPerInstance = float64(m.TotalCalls) / float64(f.Instances)
	if way == Patchgate {
		var waves []time.Duration
		for _, ss := range spans {
			for _, sp := range ss {
				waves = append(waves, sp.waves...)
			}
		}
		m.KnownEnds = knownEnds(m.TotalCalls, m.Calls["ssm:ListCommands"], waves, progressEvery)
	}
	m.PatchTime, m.IndependentPatchTime = patchTimes(spans)
	m.Overhead = m.Duration - m.PatchTime
	if m.PatchTime > 0 {
		m.OverheadPct = 100 * float64(m.Overhead) / float64(m.PatchTime)
	}
	if r != nil {
		for _, p := range r.Policies {
			for _, t := range p.Targets {
				for _, ph := range t.Phases {
					m.Patched += ph.Counts.Succeeded
				}
			}
		}
	}
	return r, nil
}

// renderReps is how many times render times the reports against
// json.Marshal; the median ratio damps a busy machine.
const renderReps = 5

// render measures the reports of a run: sizes, the fastest job-summary
// rendering, and the render ratio: per repetition, the summary's and the
// comment's time over json.Marshal's of the same result in the same
// process (so a slow machine slows both), the larger of the two; the
// median of the repetitions.
func (m *Measurement) render(r *result.Run) {
	ratios := make([]float64, 0, renderReps)
	for i := 0; i < renderReps; i++ {
		t0 := time.Now()
		js, err := json.Marshal(r)
		tj := time.Since(t0)
		if err != nil {
			return
		}
		m.JSONBytes = len(js)
		t0 = time.Now()
		s := report.Run(r, report.Summary)
		ts := time.Since(t0)
		t0 = time.Now()
		c := report.Run(r, report.Comment)
		tc := time.Since(t0)
		m.SummaryBytes, m.CommentBytes = len(s), len(c)
		if m.RenderTime == 0 || ts < m.RenderTime {
			m.RenderTime = ts
		}
		ratios = append(ratios, float64(max(ts, tc))/float64(max(tj, time.Microsecond)))
	}
	sort.Float64s(ratios)
	m.RenderRatio = ratios[len(ratios)/2]
}

// mentionsThrottling reports whether text names AWS throttling.
func mentionsThrottling(text string) bool {
	t := strings.ToLower(text)
	return strings.Contains(t, "throttl") || strings.Contains(t, "rate exceeded") || strings.Contains(t, "too many requests")
}

// span is one account-region's simulated work.
type span struct {
	work  []interval    // SendCommand to its last invocation's end
	waits time.Duration // soaks and Inspector rescan waits
	// waves are patchgate's waves' times, from each wave's first
	// SendCommand to its last invocation's end (for KnownEnds).
	waves []time.Duration
	// phase is the policy phase of this span (0 for the references, which
	// do not wait for other account-regions between phases).
	phase int
}

type interval struct{ from, to time.Time }

// total is the union of the work intervals plus the waits.
func (s span) total() time.Duration {
	iv := append([]interval(nil), s.work...)
	sort.Slice(iv, func(i, j int) bool { return iv[i].from.Before(iv[j].from) })
	var sum time.Duration
	var cur interval
	for i, x := range iv {
		switch {
		case i == 0:
			cur = x
		case x.from.After(cur.to):
			sum += cur.to.Sub(cur.from)
			cur = x
		case x.to.After(cur.to):
			cur.to = x.to
		}
	}
	if len(iv) > 0 {
		sum += cur.to.Sub(cur.from)
	}
	return sum + s.waits
}

// patchTimes are the simulated work's critical path. A policy's phase is
// a barrier across account-regions (production starts nowhere before
// staging has passed everywhere), so no orchestrator that honours the
// policy can go faster than the sum, over phases, of each phase's longest
// account-region: that is barrier. independent is the longest
// account-region's own work, as if account-regions did not wait for each
// other; the difference is what the barrier costs, not patchgate.
// Spans are per target and phase; a target is spans with the same key.
func patchTimes(spans map[string][]span) (barrier, independent time.Duration) {
	phaseMax := map[int]time.Duration{}
	for _, ss := range spans {
		var own time.Duration
		for _, s := range ss {
			d := s.total()
			own += d
			phaseMax[s.phase] = max(phaseMax[s.phase], d)
		}
		independent = max(independent, own)
	}
	for _, d := range phaseMax {
		barrier += d
	}
	return barrier, independent
}

// resultSpans reads each target's work from the simulator (commands sent
// and when their invocations ended) and its waits from the result and the
// simulator: the soak, and Inspector's rescans of the instances the gate
// judged after each phase's last patch, at the time each rescan happened
// (not the scan time the run read, which moves on with every inventory
// pass and would hide a late look as work).
func resultSpans(r *result.Run, sim *awssim.Sim) map[string][]span {
	out := map[string][]span{}
	for pi, p := range r.Policies {
		for _, t := range p.Targets {
			fleet := map[string]*awssim.Instance{}
			for _, in := range sim.Instances(t.AccountID, t.Region) {
				fleet[in.ID] = in
			}
			key := fmt.Sprintf("%d/%s/%s", pi, t.AccountID, t.Region)
			for phaseNo, ph := range t.Phases {
				s := span{phase: phaseNo}
				var lastPatch time.Time
				for _, w := range ph.Waves {
					var first, last time.Time
					for _, c := range w.Commands {
						if sent, ended, ok := sim.CommandSpan(c.CommandID); ok {
							s.work = append(s.work, interval{sent, ended})
							if first.IsZero() || sent.Before(first) {
								first = sent
							}
							if ended.After(last) {
								last = ended
							}
						}
					}
					if !first.IsZero() && last.After(first) {
						s.waves = append(s.waves, last.Sub(first))
					}
					if last.After(lastPatch) {
						lastPatch = last
					}
				}
				s.waits += time.Duration(ph.SoakSeconds * float64(time.Second))
				if v := ph.Verification; v != nil && v.Inspector != nil {
					var lastScan time.Time
					for _, e := range v.Inspector.Evidence {
						in := fleet[e.InstanceID]
						if in == nil {
							continue
						}
						if at, ok := in.RescanAfterPatch(); ok && at.After(lastScan) {
							lastScan = at
						}
					}
					if lastScan.After(lastPatch) && !lastPatch.IsZero() {
						s.waits += lastScan.Sub(lastPatch)
					}
				}
				out[key] = append(out[key], s)
			}
		}
	}
	return out
}

// knownEnds is what a run of total calls, listCommands of them
// ListCommands, would have cost had each wave's end been known: every
// ListCommands replaced by one look at each wave's end and the looks
// for progress that come before it, one every progressEvery (patchgate
// keeps them whatever it predicts: the net under a wave's MaxErrors).
// Everything else (sends, reads, intents, the lock, sessions, the
// rescan wait, naming failures) stays as measured. The listings that
// find earlier commands go too, so this is if anything low.
func knownEnds(total, listCommands int, waves []time.Duration, progressEvery time.Duration) int {
	n := total - listCommands
	for _, d := range waves {
		n += int(d/progressEvery) + 1
	}
	return n
}

// sampleHeap samples the live heap every 2ms of wall time until stopped,
// and returns the peak.
func sampleHeap() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > peak {
			peak = v
		}
	}
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			read()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		read()
		return peak
	}
}

// resetPeakRSS resets the kernel's high-water mark of this process's
// resident set (Linux 4.0+), so that each measurement's peak is its own.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is VmHWM from /proc/self/status, 0 where unavailable.
func peakRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
