package verify

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/result"
)

// movingInspector: a and b were patched an hour ago and have been rescanned
// twice since (lastScannedAt moved on to 10 minutes ago); c, the phase's
// last patch, ended 5 minutes ago and is rescanned 20 minutes from now.
type movingInspector struct {
	pagedInspector
	start time.Time
	polls []time.Time
}

func (m *movingInspector) ListCoverage(_ context.Context, in *inspector2.ListCoverageInput, _ ...func(*inspector2.Options)) (*inspector2.ListCoverageOutput, error) {
	m.polls = append(m.polls, time.Now())
	out := &inspector2.ListCoverageOutput{}
	for _, f := range in.FilterCriteria.ResourceId {
		id := aws.ToString(f.Value)
		at := m.start.Add(-10 * time.Minute)
		if id == "c" {
			at = m.start.Add(-40 * time.Minute)
			if rescan := m.start.Add(20 * time.Minute); !time.Now().Before(rescan) {
				at = rescan
			}
		}
		out.CoveredResources = append(out.CoveredResources, insptypes.CoveredResource{ResourceId: aws.String(id), LastScannedAt: aws.Time(at),
			ScanStatus: &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCodeActive, Reason: insptypes.ScanStatusReasonSuccessful}})
	}
	return out, nil
}

// TestLastRescanSeenWithinMinutes: the instances rescanned before the first
// poll say nothing of the delay (their scan time moved on with later
// inventory passes; taken as delays, 50 minutes, the old pace looked 10
// minutes late), so the last instance is polled every rescanPollTail and its
// rescan is seen within that, for a call a poll.
func TestLastRescanSeenWithinMinutes(t *testing.T) {
	polls, lag := movingWait(t, nil)
	if lag < 0 || lag > rescanPollTail {
		t.Errorf("c's rescan seen %s after it happened, want within %s (polls at %v)", lag, rescanPollTail, polls)
	}
	if len(polls) > 12 {
		t.Errorf("%d coverage polls for one instance's 20 minutes, want at most 12", len(polls))
	}
}

// movingWait runs the rescan wait against movingInspector (c rescanned 20
// minutes in), with the account-region's chance of ending the phase last
// (nil: alone); it returns the coverage polls and how long after c's
// rescan the last of them came.
func movingWait(t *testing.T, chance func() float64) (polls []time.Time, lag time.Duration) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ended := map[string]time.Time{"a": start.Add(-time.Hour), "b": start.Add(-time.Hour), "c": start.Add(-5 * time.Minute)}
		insp := &movingInspector{start: start}
		v := &Verifier{Inspector: insp, Clock: clock.Real{}}
		res := &result.Verification{Verdict: result.StatusPassed}
		s := Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: 2 * time.Hour, LastChance: chance}
		if err := v.inspector(context.Background(), s, &Snapshot{Taken: start.Add(-2 * time.Hour)}, ended, res); err != nil {
			t.Fatal(err)
		}
		if len(res.Inspector.Uncovered) != 0 || res.Verdict != result.StatusPassed {
			t.Fatalf("uncovered %d, verdict %s %+v", len(res.Inspector.Uncovered), res.Verdict, res.Reasons)
		}
		polls, lag = insp.polls, insp.polls[len(insp.polls)-1].Sub(start.Add(20*time.Minute))
	})
	return polls, lag
}

// TestRescanWaitWeighsItsChance: the same wait in an account-region with
// one chance in four of ending the phase last looks half as often through
// c's window, and sees its rescan within twice the tail.
func TestRescanWaitWeighsItsChance(t *testing.T) {
	alone, _ := movingWait(t, nil)
	quarter, lag := movingWait(t, func() float64 { return 0.25 })
	if len(quarter) >= len(alone) {
		t.Errorf("one chance in four: %d coverage polls, alone %d; want fewer", len(quarter), len(alone))
	}
	if lag < 0 || lag > 2*rescanPollTail {
		t.Errorf("one chance in four: c's rescan seen %s after it happened, want within %s", lag, 2*rescanPollTail)
	}
}

// scheduledInspector answers coverage by id: each instance's last scan is
// its rescan once that time has come, else an hour before the test.
type scheduledInspector struct {
	pagedInspector
	start  time.Time
	rescan map[string]time.Time
	polls  []time.Time
}

func (s *scheduledInspector) ListCoverage(_ context.Context, in *inspector2.ListCoverageInput, _ ...func(*inspector2.Options)) (*inspector2.ListCoverageOutput, error) {
	s.polls = append(s.polls, time.Now())
	out := &inspector2.ListCoverageOutput{}
	for _, f := range in.FilterCriteria.ResourceId {
		id := aws.ToString(f.Value)
		at := s.start.Add(-time.Hour)
		if r := s.rescan[id]; !time.Now().Before(r) {
			at = r
		}
		out.CoveredResources = append(out.CoveredResources, insptypes.CoveredResource{ResourceId: aws.String(id), LastScannedAt: aws.Time(at),
			ScanStatus: &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCodeActive, Reason: insptypes.ScanStatusReasonSuccessful}})
	}
	return out, nil
}

func waitFor(t *testing.T, ended, rescan map[string]time.Time, start time.Time) []time.Time {
	t.Helper()
	insp := &scheduledInspector{start: start, rescan: rescan}
	v := &Verifier{Inspector: insp}
	res := &result.Verification{Verdict: result.StatusPassed}
	if err := v.inspector(context.Background(), Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: 2 * time.Hour}, &Snapshot{}, ended, res); err != nil {
		t.Fatal(err)
	}
	if len(res.Inspector.Uncovered) != 0 {
		t.Fatalf("uncovered %+v", res.Inspector.Uncovered)
	}
	return insp.polls
}

// TestTenWaitingAreTheTail: ten waiting instances are one call by id, so
// they are polled every rescanPollTail and their rescan is seen within it.
func TestTenWaitingAreTheTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ended, rescan := map[string]time.Time{}, map[string]time.Time{}
		for _, id := range instanceIDs(filterBatch) {
			ended[id], rescan[id] = start.Add(-5*time.Minute), start.Add(20*time.Minute)
		}
		polls := waitFor(t, ended, rescan, start)
		if lag := polls[len(polls)-1].Sub(start.Add(20 * time.Minute)); lag > rescanPollTail {
			t.Errorf("ten instances' rescan seen %s late, want within %s (polls %v)", lag, rescanPollTail, polls)
		}
	})
}

// TestNextLook: when an instance still waiting is looked at next, from
// when a poll last found it waiting. With the default cadence (30m) and
// spread (6m); the patch ended at t0.
func TestNextLook(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tc := range []struct {
		name   string
		prev   time.Time // zero: no previous scan known
		seen   time.Time
		latest time.Time
		want   time.Time
	}{
		// Scanned 10m before the patch: due at +20m, its window opens at
		// +14m; a look then would find nothing, one 2m later sees a rescan
		// in between as promptly.
		{"its window ahead: a tail after its opening", at(-10 * time.Minute), at(time.Minute), at(14 * time.Minute), at(16 * time.Minute)},
		{"in its window: every rescanPollTail", at(-10 * time.Minute), at(15 * time.Minute), at(14 * time.Minute), at(17 * time.Minute)},
		{"at the very end of its window", at(-10 * time.Minute), at(26 * time.Minute), at(14 * time.Minute), at(28 * time.Minute)},
		// Scanned just before the patch: due at +29m, window from +23m;
		// the scan may have been off the cadence, so a look within 15m.
		{"its window far ahead: within rescanPollMax", at(-time.Minute), at(time.Minute), at(23 * time.Minute), at(time.Minute + rescanPollMax)},
		// Due at +5m (window -1m..+11m), but another instance's window
		// opens only at +14m: nothing ends the wait before, one look with
		// that instance's first.
		{"an earlier window waits for the latest to open", at(-25 * time.Minute), at(time.Minute), at(14 * time.Minute), at(16 * time.Minute)},
		{"the same, not rescanned by then: missed, steadily", at(-25 * time.Minute), at(16 * time.Minute), at(14 * time.Minute), at(18 * time.Minute)},
		// Due at +10m, window to +16m, not seen by +17m: regular polling.
		{"a missed window: steadily while it can come", at(-20 * time.Minute), at(17 * time.Minute), at(14 * time.Minute), at(19 * time.Minute)},
		// Its last scan 50m before the patch: the pass at -20m never came.
		{"a skipped pass: regular polling", at(-50 * time.Minute), at(time.Minute), at(14 * time.Minute), at(3 * time.Minute)},
		{"no previous scan: steadily within a pass of the patch", time.Time{}, at(10 * time.Minute), time.Time{}, at(12 * time.Minute)},
		{"no previous scan, a pass gone by: later", time.Time{}, at(40 * time.Minute), time.Time{}, at(44 * time.Minute)},
		{"no previous scan, just past the pass: not sooner than the tail", time.Time{}, at(36*time.Minute + 30*time.Second), time.Time{}, at(38*time.Minute + 30*time.Second)},
		{"no previous scan, long overdue: capped", time.Time{}, at(2 * time.Hour), time.Time{}, at(2*time.Hour + rescanPollMax)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &watch{ended: t0, prev: tc.prev, seen: tc.seen}
			if got := nextLook(w, inventoryInterval, inventoryInterval/5, tc.latest, rescanPollTail); !got.Equal(tc.want) {
				t.Fatalf("nextLook = %s, want %s", got.Sub(t0), tc.want.Sub(t0))
			}
		})
	}
}

// TestTailSpacing: looks through a rescan window are sqrt(1/chance) times
// further apart when another account-region may end the phase last.
func TestTailSpacing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chance func() float64
		want   time.Duration
	}{
		{"no share", nil, rescanPollTail},
		{"alone", func() float64 { return 1 }, rescanPollTail},
		{"one chance in four", func() float64 { return 0.25 }, 2 * rescanPollTail},
		{"one in a hundred: at most rescanPollMax", func() float64 { return 0.01 }, rescanPollMax},
		{"surely not last", func() float64 { return 0 }, rescanPollMax},
	} {
		if got := tailSpacing(Settings{LastChance: tc.chance}); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// The spacing is what nextLook steps by through the window.
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	w := &watch{ended: t0, prev: t0.Add(-25 * time.Minute), seen: t0.Add(3 * time.Minute)}
	if got := nextLook(w, inventoryInterval, inventoryInterval/5, time.Time{}, 2*rescanPollTail); !got.Equal(t0.Add(3*time.Minute + 2*rescanPollTail)) {
		t.Errorf("in its window at a spacing of %s: next look at %s, want %s", 2*rescanPollTail, got.Sub(t0), 3*time.Minute+2*rescanPollTail)
	}
}

// TestCadence: the interval is learnt from an instance's scan before its
// patch and its rescan, once three are seen (the default until then), and
// only when the instance was seen waiting past the midpoint of the two (so
// no other pass fits between them); the spread is the widest deviation
// seen, at least 6 minutes, at most half the interval.
func TestCadence(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		gaps     []time.Duration // each seen waiting 40 minutes after the previous scan
		interval time.Duration
		spread   time.Duration
	}{
		{"nothing seen: the default", nil, 30 * time.Minute, 6 * time.Minute},
		{"two seen: still the default", []time.Duration{60 * time.Minute, 60 * time.Minute}, 30 * time.Minute, 6 * time.Minute},
		{"three: their median", []time.Duration{58 * time.Minute, 62 * time.Minute, 60 * time.Minute}, 60 * time.Minute, 6 * time.Minute},
		{"a wide deviation widens the spread", []time.Duration{50 * time.Minute, 70 * time.Minute, 60 * time.Minute}, 60 * time.Minute, 10 * time.Minute},
		{"at most half the interval", []time.Duration{45 * time.Minute, 79 * time.Minute, 50 * time.Minute}, 50 * time.Minute, 25 * time.Minute},
		// Seen waiting 40 minutes after the previous scan, a rescan 90
		// minutes after it may be the second pass: not an interval.
		{"past the midpoint only", []time.Duration{90 * time.Minute, 90 * time.Minute, 90 * time.Minute}, 30 * time.Minute, 6 * time.Minute},
		{"shorter than a minute: no interval", []time.Duration{30 * time.Second, 30 * time.Second, 30 * time.Second}, 30 * time.Minute, 6 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c cadence
			for _, g := range tc.gaps {
				seen := t0.Add(min(40*time.Minute, g/2+time.Second))
				c.add(t0, seen, t0.Add(g))
			}
			c.add(time.Time{}, t0, t0.Add(time.Hour)) // no previous scan: nothing learnt
			if got, spread := c.interval(), c.spread(); got != tc.interval || spread != tc.spread {
				t.Fatalf("interval %s spread %s, want %s and %s", got, spread, tc.interval, tc.spread)
			}
		})
	}
}

// plannedInspector answers coverage by id from a plan: each instance's
// scan before the patch (zero: not listed at all) and its rescan (zero:
// never), as of the fake clock.
type plannedInspector struct {
	pagedInspector
	prev, rescan map[string]time.Time
	polls        [][]string
	seen         map[string]time.Time // when each rescan was first answered
	inactive     map[string]bool      // scan status INACTIVE
}

func (p *plannedInspector) ListCoverage(_ context.Context, in *inspector2.ListCoverageInput, _ ...func(*inspector2.Options)) (*inspector2.ListCoverageOutput, error) {
	out := &inspector2.ListCoverageOutput{}
	var asked []string
	for _, f := range in.FilterCriteria.ResourceId {
		id := aws.ToString(f.Value)
		asked = append(asked, id)
		at := p.prev[id]
		if r := p.rescan[id]; !r.IsZero() && !time.Now().Before(r) {
			at = r
			if _, ok := p.seen[id]; !ok {
				if p.seen == nil {
					p.seen = map[string]time.Time{}
				}
				p.seen[id] = time.Now()
			}
		}
		if at.IsZero() {
			continue
		}
		st := &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCodeActive, Reason: insptypes.ScanStatusReasonSuccessful}
		if p.inactive[id] {
			st = &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCodeInactive, Reason: insptypes.ScanStatusReasonNoInventory}
		}
		out.CoveredResources = append(out.CoveredResources, insptypes.CoveredResource{ResourceId: aws.String(id), LastScannedAt: aws.Time(at), ScanStatus: st})
	}
	p.polls = append(p.polls, asked)
	return out, nil
}

// TestFailedPredictionHoldsNoOneBack: a's last scan was 40 minutes before
// its patch, so the pass due 10 minutes before the patch never came: its
// prediction failed, and it is polled regularly (it is rescanned 12
// minutes after the patch). Its next predicted window (+14m..+26m) is not
// the latest window the others wait for: b, due 5 minutes after the patch,
// is seen within a tail of its rescan, not once a is seen.
func TestFailedPredictionHoldsNoOneBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		insp := &plannedInspector{
			prev:   map[string]time.Time{"a": start.Add(-40 * time.Minute), "b": start.Add(-25 * time.Minute)},
			rescan: map[string]time.Time{"a": start.Add(12 * time.Minute), "b": start.Add(6 * time.Minute)},
		}
		v := &Verifier{Inspector: insp, Clock: clock.Real{}}
		res := &result.Verification{Verdict: result.StatusPassed}
		ended := map[string]time.Time{"a": start, "b": start}
		if err := v.inspector(context.Background(), Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: 2 * time.Hour}, &Snapshot{}, ended, res); err != nil {
			t.Fatal(err)
		}
		if len(res.Inspector.Uncovered) != 0 {
			t.Fatalf("uncovered %+v", res.Inspector.Uncovered)
		}
		if got := insp.seen["b"]; got.Sub(start.Add(6*time.Minute)) > rescanPollTail || got.Before(start.Add(6*time.Minute)) {
			t.Errorf("b's rescan (at +6m) seen at %s, want within %s (polls %v)", got.Sub(start), rescanPollTail, insp.polls)
		}
	})
}

// TestLooksAMinuteApartShareAPoll: two instances never rescanned, patched
// 30 seconds apart and an inventory pass ago, are looked at less and less
// often on schedules 30 seconds apart: each poll asks for both (one call),
// not each on its own.
func TestLooksAMinuteApartShareAPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		insp := &plannedInspector{prev: map[string]time.Time{"a": start.Add(-3 * time.Hour), "b": start.Add(-3 * time.Hour)}}
		v := &Verifier{Inspector: insp, Clock: clock.Real{}}
		res := &result.Verification{Verdict: result.StatusPassed}
		ended := map[string]time.Time{"a": start.Add(-40 * time.Minute), "b": start.Add(-40*time.Minute + 30*time.Second)}
		if err := v.inspector(context.Background(), Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: time.Hour}, &Snapshot{}, ended, res); err != nil {
			t.Fatal(err)
		}
		if res.Verdict != result.StatusInconclusive || len(res.Inspector.Uncovered) != 2 {
			t.Fatalf("verdict %s, uncovered %+v", res.Verdict, res.Inspector.Uncovered)
		}
		for i, p := range insp.polls {
			if len(p) != 2 {
				t.Fatalf("poll %d of %d asks for %v, want both", i+1, len(insp.polls), p)
			}
		}
	})
}

// TestInactiveScanPredictsNothing: x's scanning is INACTIVE, so its last
// scan (5 minutes before the patch) predicts no rescan, and its window
// (+19m..+31m) is not one the others wait for: y, due 5 minutes after the
// patch, is seen within a tail of its rescan. Nor is x polled steadily as
// if its rescan were due: ever less often from its patch on.
func TestInactiveScanPredictsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		insp := &plannedInspector{
			prev:     map[string]time.Time{"x": start.Add(-5 * time.Minute), "y": start.Add(-25 * time.Minute)},
			rescan:   map[string]time.Time{"y": start.Add(6 * time.Minute)},
			inactive: map[string]bool{"x": true},
		}
		v := &Verifier{Inspector: insp, Clock: clock.Real{}}
		res := &result.Verification{Verdict: result.StatusPassed}
		ended := map[string]time.Time{"x": start, "y": start}
		if err := v.inspector(context.Background(), Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: time.Hour}, &Snapshot{}, ended, res); err != nil {
			t.Fatal(err)
		}
		if got := insp.seen["y"]; got.Sub(start.Add(6*time.Minute)) > rescanPollTail || got.Before(start.Add(6*time.Minute)) {
			t.Errorf("y's rescan (at +6m) seen at %s, want within %s (polls %v)", got.Sub(start), rescanPollTail, insp.polls)
		}
		if len(res.Inspector.Uncovered) != 1 || res.Inspector.Uncovered[0].InstanceID != "x" || res.Inspector.Uncovered[0].Reason != "NO_INVENTORY" || res.Verdict != result.StatusInconclusive {
			t.Fatalf("verdict %s, uncovered %+v", res.Verdict, res.Inspector.Uncovered)
		}
		// At 0, 2m, 4m, 8m, 16m, 31m, 46m and the hour's end.
		xPolls := 0
		for _, p := range insp.polls {
			if slices.Contains(p, "x") {
				xPolls++
			}
		}
		if xPolls != 8 {
			t.Errorf("x polled %d times in the hour %v, want 8", xPolls, insp.polls)
		}
	})
}

// TestOffCadenceScanBeforeThePatch: Inspector scanned c off its inventory
// cadence 2 minutes before the patch (a new CVE), so its predicted window
// opens only at +22m, while its inventory pass rescans it at +10m. It is
// seen by rescanPollMax after the first poll, not when the window opens.
func TestOffCadenceScanBeforeThePatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		insp := &plannedInspector{prev: map[string]time.Time{"c": start.Add(-2 * time.Minute)}, rescan: map[string]time.Time{"c": start.Add(10 * time.Minute)}}
		v := &Verifier{Inspector: insp, Clock: clock.Real{}}
		res := &result.Verification{Verdict: result.StatusPassed}
		if err := v.inspector(context.Background(), Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: time.Hour}, &Snapshot{}, map[string]time.Time{"c": start}, res); err != nil {
			t.Fatal(err)
		}
		if got := insp.seen["c"]; got.IsZero() || got.After(start.Add(rescanPollMax)) {
			t.Errorf("c's rescan (at +10m) seen at %s, want by %s (polls %v)", got.Sub(start), rescanPollMax, insp.polls)
		}
		if res.Verdict != result.StatusPassed || len(insp.polls) != 2 {
			t.Fatalf("verdict %s, %d polls %v, want 2 (at 0 and 15m)", res.Verdict, len(insp.polls), insp.polls)
		}
	})
}

// TestDue: the next scan is due an interval after the previous one; a
// window gone by without it moves the due time a whole number of intervals
// on, to the first window not yet over when the instance was seen.
func TestDue(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		prev, seen time.Time
		due        time.Time
		missed     bool
	}{
		{"ahead", t0.Add(-10 * time.Minute), t0, t0.Add(20 * time.Minute), false},
		{"its window just over when seen", t0.Add(-36 * time.Minute), t0, t0.Add(-6 * time.Minute), false},
		{"a second past it", t0.Add(-36*time.Minute - time.Second), t0, t0.Add(24*time.Minute - time.Second), true},
		{"one pass skipped", t0.Add(-50 * time.Minute), t0.Add(time.Minute), t0.Add(10 * time.Minute), true},
		{"a month of passes", t0.Add(-30 * 24 * time.Hour), t0, t0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &watch{prev: tc.prev, seen: tc.seen}
			if due, missed := w.due(inventoryInterval, inventoryInterval/5); !due.Equal(tc.due) || missed != tc.missed {
				t.Fatalf("due %s missed %v, want %s %v", due.Sub(t0), missed, tc.due.Sub(t0), tc.missed)
			}
		})
	}
}
