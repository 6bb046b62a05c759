package rollout

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/gate"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

// spreadRecord is a record of 1000 earlier completions spread like a real
// fleet's: most within an hour of their send, a tail to three hours.
func spreadRecord() *completions {
	h := &completions{}
	for i := 0; i < 1000; i++ {
		// Quantiles of a long tail: 50% by 40 min, 90% by 80 min, the
		// last 1% between 2 and 3 hours.
		q := float64(i) / 1000
		var off time.Duration
		switch {
		case q < 0.5:
			off = time.Duration(10+q*60) * time.Minute
		case q < 0.9:
			off = time.Duration(40+(q-0.5)*100) * time.Minute
		case q < 0.99:
			off = time.Duration(80+(q-0.9)*444) * time.Minute
		default:
			off = time.Duration(120+(q-0.99)*6000) * time.Minute
		}
		h.add(off, 1)
	}
	return h
}

func TestInspect(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	p := pacer{min: 5 * time.Second, max: 15 * time.Minute, seen: spreadRecord()}
	running := func(total, completed int) []chunkProgress {
		return []chunkProgress{{sent: t0, total: total, completed: completed, perRound: total / 2}}
	}
	quiet := quietFactor * p.max
	at := func(p pacer, age time.Duration, ch []chunkProgress) time.Duration {
		t.Helper()
		d, ok := p.inspect(t0.Add(age), ch)
		if !ok {
			t.Fatalf("inspect at %s: no prediction", age)
		}
		return d
	}

	// The bulk: many invocations run and the last is hours away: a look
	// an hour on (for progress), not before.
	if d := at(p, 20*time.Minute, running(1000, 100)); d != quiet {
		t.Errorf("bulk: sleep %s, want the quiet %s", d, quiet)
	}
	// Errors at half the limit: at least every PollMax.
	alert := p
	alert.alert = true
	if d := at(alert, 20*time.Minute, running(1000, 100)); d != p.max {
		t.Errorf("bulk near the error limit: sleep %s, want %s", d, p.max)
	}
	// The record's shape decides: one straggler at 90 minutes is due
	// within the next half hour by the record (1% of completions come
	// after 2 h); the looks come every few minutes, not every hour.
	one := at(p, 90*time.Minute, running(1000, 999))
	if one <= 30*time.Second || one > 10*time.Minute {
		t.Errorf("one straggler at 90 min: sleep %s, want between 30 s and 10 min", one)
	}
	// Three stragglers end later than one: the first look at their end
	// comes later.
	if three := at(p, 90*time.Minute, running(1000, 997)); three <= one {
		t.Errorf("three stragglers: sleep %s, want longer than one straggler's %s", three, one)
	}
	// Among peers, a look here matters only if this account-region ends
	// last: rarer looks.
	peers := p
	peers.rarity = 8
	if d := at(peers, 90*time.Minute, running(1000, 999)); d <= one {
		t.Errorf("one chance in 8 of ending last: sleep %s, want longer than alone (%s)", d, one)
	}
	// The record knows nothing later than the oldest chunk's age (a
	// wave's own completions, or a straggler older than all): no
	// prediction; the tail rule looks every tailShare of the age.
	if _, ok := p.inspect(t0.Add(3*time.Hour+time.Minute), running(1000, 999)); ok {
		t.Error("a straggler older than every recorded completion: inspect predicted its end")
	}
	thin := p
	thin.seen = history(map[time.Duration]int{10 * time.Minute: minRecord - 10, 3 * time.Hour: 9})
	if _, ok := thin.inspect(t0.Add(time.Hour), running(100, 99)); ok {
		t.Errorf("%d completions recorded: inspect predicted from fewer than minRecord", minRecord-1)
	}
	enough := p
	enough.seen = history(map[time.Duration]int{10 * time.Minute: minRecord - minLater, 3 * time.Hour: minLater})
	if _, ok := enough.inspect(t0.Add(time.Hour), running(100, 99)); !ok {
		t.Errorf("minRecord completions, minLater of them later: no prediction")
	}
	few := p
	few.seen = history(map[time.Duration]int{10 * time.Minute: minRecord, 3 * time.Hour: minLater - 1})
	if _, ok := few.inspect(t0.Add(time.Hour), running(100, 99)); ok {
		t.Errorf("%d completions later than the wave's age: inspect predicted from fewer than minLater", minLater-1)
	}
	// Finished chunks do not count; none running: nothing to predict.
	if _, ok := p.inspect(t0.Add(time.Hour), []chunkProgress{{sent: t0, total: 50, completed: 50, terminal: true}}); ok {
		t.Error("no chunk running: inspect predicted an end")
	}
}

// On waves drawn from the record's own distribution, the inspection
// density sees each end within a minute or so for about 15 looks a wave;
// the rules without a record (one typical invocation, then the tail
// watch) look several times as often.
func TestInspectFollowsTheRecord(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	rec := spreadRecord()
	// Each wave: 500 invocations whose ends are the record's quantiles,
	// shifted so that waves differ.
	type outcome struct {
		polls int
		lag   time.Duration
	}
	follow := func(p pacer, shift int) outcome {
		ends := make([]time.Duration, 500)
		for i := range ends {
			q := float64((i*7+shift*131)%1000) / 1000
			off, _ := rec.quantile(t0, max(q, 0.001))
			ends[i] = off
		}
		last := time.Duration(0)
		for _, e := range ends {
			last = max(last, e)
		}
		now, slept, polls := time.Duration(0), time.Duration(0), 0
		for {
			polls++
			done := 0
			for _, e := range ends {
				if e <= now {
					done++
				}
			}
			if done == len(ends) {
				return outcome{polls, now - last}
			}
			ch := []chunkProgress{{sent: t0, total: len(ends), completed: done, perRound: 250}}
			slept = p.next(t0.Add(now), ch, nil, false, slept, t0.Add(24*time.Hour))
			now += slept
		}
	}
	withRecord := pacer{min: 5 * time.Second, max: 15 * time.Minute, seen: rec}
	tailOnly := pacer{min: 5 * time.Second, max: 15 * time.Minute, typical: 30 * time.Minute}
	var a, b outcome
	for shift := 0; shift < 20; shift++ {
		x, y := follow(withRecord, shift), follow(tailOnly, shift)
		a.polls, a.lag = a.polls+x.polls, a.lag+x.lag
		b.polls, b.lag = b.polls+y.polls, b.lag+y.lag
	}
	t.Logf("20 waves: from the record %d looks, %s late in all; by the tail rule %d looks, %s late", a.polls, a.lag.Round(time.Second), b.polls, b.lag.Round(time.Second))
	if a.polls > 16*20 || a.lag > 90*time.Second*20 {
		t.Errorf("from the record: %d looks and %s of lag for 20 waves; want at most 16 looks and 90 s a wave", a.polls, a.lag)
	}
	if a.polls*3 > b.polls {
		t.Errorf("from the record: %d looks; without it %d; want a third at most", a.polls, b.polls)
	}
}

func TestLead(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	a, b, c := &target{}, &target{}, &target{}
	ps := newPhaseShare([]*target{a, b, c})
	check := func(what string, x *target, now time.Time, wantLead time.Duration) {
		t.Helper()
		// Marks are seen from the instant after they were made: the reads
		// come a second later, and the leads are to the minute.
		if lead := ps.lead(x, now); lead.Round(time.Minute) != wantLead {
			t.Errorf("%s: lead %s, want %s", what, lead, wantLead)
		}
	}
	// All three start wave 1 together: nobody leads.
	for _, x := range []*target{a, b, c} {
		ps.mark(x, 2, t0, false)
	}
	check("level start", a, t0.Add(time.Second), 0)

	// b ends wave 1 after 2 h and starts wave 2. Before any wave of the
	// phase ended nobody knows how long one takes, so b's lead over a
	// and c, still in wave 1, is not guessed.
	now := t0.Add(2*time.Hour + time.Second)
	ps.mark(b, 1, t0.Add(2*time.Hour), false)
	check("no wave ended yet", b, now, 0)
	// Now a wave takes 2 h here: a and c, in wave 1 since t0, are due at
	// wave 2 now, level with b: no lead.
	ps.waveEnded(t0.Add(2*time.Hour), 2*time.Hour)
	check("level at the mean pace", b, now, 0)
	// c a minute behind b: b leads by a minute.
	ps.mark(c, 2, t0.Add(time.Minute), false)
	check("c a minute behind", b, now, time.Minute)
	ps.mark(c, 2, t0.Add(59*time.Second), false)
	check("c 59 seconds behind", b, now, time.Minute)
	// What was recorded at an instant is seen from the next one only.
	check("a wave ended this instant is not seen yet", b, t0.Add(2*time.Hour), 0)
	// c began its wave 1 half an hour late (its send waited): b leads c
	// by 30 minutes; a is level with b. c, furthest behind, leads nobody.
	ps.mark(c, 2, t0.Add(30*time.Minute), false)
	check("c half an hour behind", b, now, 30*time.Minute)
	check("c furthest behind", c, now, 0)
	// An hour later a is still in wave 1, an hour overdue: a wave of its
	// own that has run long ends no sooner than now, so b (due at wave 3
	// at t0+4h) leads a by an hour, and a leads nobody.
	now = t0.Add(3 * time.Hour)
	ps.mark(c, -1, now.Add(-time.Minute), true) // c's phase ended: it no longer counts
	check("a overdue", b, now, time.Hour)
	check("a furthest behind", a, now, 0)
	// Waves of 1h30 and 2h30 as well: the mean stays 2 h, but wave times
	// spread by about 24.5 minutes, and a wave of a ending early would
	// make b the last: b's sure lead is the hour less twice the spread.
	ps.waveEnded(now.Add(-time.Minute), 90*time.Minute)
	ps.waveEnded(now.Add(-time.Minute), 150*time.Minute)
	check("spread wave times", b, now, 11*time.Minute)
	// One not at a wave yet starts when one that runs ends: nobody leads.
	q := &target{}
	ps.mark(q, 0, time.Time{}, false)
	check("one queued", b, now, 0)
	ps.mark(q, -1, now.Add(-time.Minute), true) // its phase ended
	check("none queued", b, now, 11*time.Minute)
	// A target alone (no share) leads nobody.
	var none *phaseShare
	if lead := none.lead(a, now); lead != 0 {
		t.Errorf("no share: lead %s", lead)
	}
}

// The chance of ending the phase last: alike before any wave ended, then
// a normal draw per account-region (wave times spread at least minSpread
// of their mean, a wave more for one a wave behind).
func TestLastChance(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	a, b, c := &target{}, &target{}, &target{}
	ps := newPhaseShare([]*target{a, b, c})
	near := func(what string, got, want, tol float64) {
		t.Helper()
		if !(math.Abs(got-want) <= tol) {
			t.Errorf("%s: chance %.4f, want %.4f", what, got, want)
		}
	}
	for _, x := range []*target{a, b, c} {
		ps.mark(x, 2, t0, false)
	}
	now := t0.Add(time.Second)
	near("three level, no wave ended", ps.lastChance(a, now), 1.0/3, 1e-9)
	// b is at wave 2 (no wave time known yet): a is alike only with c.
	ps.mark(b, 1, t0.Add(time.Minute), false)
	now = t0.Add(2 * time.Minute)
	near("two at wave 1", ps.lastChance(a, now), 0.5, 1e-9)
	// c's phase ended: it no longer counts, and a is alone at its wave
	// (b ahead of it).
	ps.mark(c, -1, t0.Add(2*time.Minute), true)
	near("c ended", ps.lastChance(a, t0.Add(3*time.Minute)), 1, 1e-9)

	// A wave of 2 h ended (spread 0: minSpread of it, 12 min, is
	// assumed). a is due at t0+2h, b 6 minutes later: b ends last with
	// the chance Φ(6/(12·√2)) = 0.638.
	ps = newPhaseShare([]*target{a, b})
	ps.mark(a, 2, t0, false)
	ps.mark(b, 2, t0.Add(6*time.Minute), false)
	ps.waveEnded(t0.Add(time.Hour), 2*time.Hour)
	now = t0.Add(time.Hour + time.Second)
	near("b 6 minutes behind", ps.lastChance(b, now), 0.6382, 0.002)
	near("a 6 minutes ahead", ps.lastChance(a, now), 0.3618, 0.002)
	// What was recorded at this instant is seen from the next only.
	near("a wave ended this instant is not seen yet", ps.lastChance(b, t0.Add(time.Hour)), 0.5, 1e-9)
	// a moves on to wave 2 at t0+1h (due t0+3h); b, still in wave 1, has
	// a wave more to run (due t0+4h, spread sqrt(2)·12 min): it ends
	// last almost surely.
	ps.mark(a, 1, t0.Add(time.Hour), false)
	now = t0.Add(time.Hour + time.Second)
	if got := ps.lastChance(b, now); !(got >= 0.99 && got <= 1) {
		t.Errorf("b a wave behind: chance %.4f, want above 0.99", got)
	}
	if got := ps.lastChance(a, now); !(got >= 0 && got <= 0.01) {
		t.Errorf("a a wave ahead: chance %.4f, want below 0.01", got)
	}
	// Two as overdue in the same wave: alike.
	ps = newPhaseShare([]*target{a, b})
	ps.mark(a, 2, t0, false)
	ps.mark(b, 2, t0, false)
	ps.waveEnded(t0.Add(time.Hour), 2*time.Hour)
	near("both overdue", ps.lastChance(a, t0.Add(3*time.Hour)), 0.5, 0.002)

	// A straggler 2 hours overdue may run as long again: it, not one due
	// in 5 minutes, ends the phase last (taken to end now, it would look
	// rarely while it holds the phase up).
	ps = newPhaseShare([]*target{a, b})
	ps.mark(a, 0, t0, false)
	ps.mark(b, 0, t0.Add(2*time.Hour+5*time.Minute), false)
	ps.waveEnded(t0.Add(time.Minute), time.Hour)
	ps.waveEnded(t0.Add(time.Minute), time.Hour)
	now = t0.Add(3 * time.Hour)
	if got := ps.lastChance(a, now); !(got >= 0.99 && got <= 1) {
		t.Errorf("a straggler 2 h overdue: chance %.4f, want above 0.99", got)
	}

	// Waves counted by what is left, not by number: a small account-region
	// with 2 waves at its last is level with a large one with 3 at its last.
	ps = newPhaseShare([]*target{a, b})
	ps.mark(a, 0, t0, false)
	ps.mark(b, 0, t0, false)
	ps.waveEnded(t0.Add(time.Minute), 2*time.Hour)
	near("two at their last wave", ps.lastChance(a, t0.Add(time.Hour)), 0.5, 0.002)

	// One not at a wave yet (waiting for a slot): it starts when one that
	// runs ends, so each that runs is alike, whatever their waves.
	ps = newPhaseShare([]*target{a, b, c})
	ps.mark(a, 0, t0, false)
	ps.mark(b, 2, t0.Add(30*time.Minute), false)
	ps.waveEnded(t0.Add(time.Minute), 2*time.Hour)
	near("c queued", ps.lastChance(a, t0.Add(time.Hour)), 0.5, 1e-9)
	ps.mark(c, 2, t0.Add(time.Hour), false)
	if got := ps.lastChance(a, t0.Add(time.Hour+time.Second)); !(got < 0.01) {
		t.Errorf("c started, a ahead by waves: chance %.4f, want below 0.01", got)
	}

	// A wave more is a wave's spread more: a, in wave 2 since t0+1h30,
	// is due in 2 h (spread 12 min); b, in wave 1 since t0-20m, is due
	// now+10m and has wave 2 to run: 2h10 away, spread 12·√2 min. b
	// ends last with the chance Φ(10/√(12²+2·12²)) = 0.685 (with the
	// spreads alike it would be 0.778).
	ps = newPhaseShare([]*target{a, b})
	ps.mark(b, 2, t0.Add(-20*time.Minute), false)
	ps.mark(a, 1, t0.Add(90*time.Minute), false)
	ps.waveEnded(t0.Add(time.Hour), 2*time.Hour)
	near("b a wave behind, 10 minutes later", ps.lastChance(b, t0.Add(90*time.Minute+time.Second)), 0.6848, 0.003)

	// Waves of a nanosecond: still a chance, not NaN.
	ps = newPhaseShare([]*target{a, b})
	ps.mark(a, 0, t0, false)
	ps.mark(b, 0, t0.Add(time.Minute), false)
	ps.waveEnded(t0.Add(time.Minute), time.Nanosecond)
	if got := ps.lastChance(a, t0.Add(time.Hour)); !(got >= 0 && got <= 1) {
		t.Errorf("waves of a nanosecond: chance %v, want a number in [0, 1]", got)
	}

	// Alone: 1.
	var none *phaseShare
	near("no share", none.lastChance(a, now), 1, 0)
}

// The pacer waits half a lead: a look here may come that much later, as
// another account-region is expected to end the phase later still.
func TestSlack(t *testing.T) {
	p := pacer{min: 5 * time.Second, max: 15 * time.Minute, lead: 40 * time.Minute}
	if got := p.slack(time.Hour); got != 20*time.Minute {
		t.Errorf("slack %s, want 20m", got)
	}
	if got := p.slack(10 * time.Minute); got != 10*time.Minute {
		t.Errorf("slack is bounded: %s, want 10m", got)
	}
	p.alert = true
	if got := p.slack(time.Hour); got != p.max {
		t.Errorf("near the error limit: slack %s, want PollMax %s", got, p.max)
	}
}

// countingCommands answers ListCommands from a fixed set and counts the
// calls by kind.
type countingCommands struct {
	Commands
	cmds          []ssmtypes.Command
	byID, listing int
}

func (c *countingCommands) ListCommands(_ context.Context, in *ssm.ListCommandsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	if id := aws.ToString(in.CommandId); id != "" {
		c.byID++
		for _, x := range c.cmds {
			if aws.ToString(x.CommandId) == id {
				return &ssm.ListCommandsOutput{Commands: []ssmtypes.Command{x}}, nil
			}
		}
		return &ssm.ListCommandsOutput{}, nil
	}
	c.listing++
	start := 0
	if tok := aws.ToString(in.NextToken); tok != "" {
		fmt.Sscan(tok, &start)
	}
	end := min(start+int(aws.ToInt32(in.MaxResults)), len(c.cmds))
	out := &ssm.ListCommandsOutput{Commands: c.cmds[start:end]}
	if end < len(c.cmds) {
		out.NextToken = aws.String(fmt.Sprint(end))
	}
	return out, nil
}

// A wave's last stragglers are read by id when that is fewer calls than
// the listing's pages; otherwise the listing.
func TestCommandStatesByID(t *testing.T) {
	var cmds []ssmtypes.Command
	var ids []string
	for i := range 473 {
		id := fmt.Sprintf("cmd-%03d", i)
		cmds = append(cmds, ssmtypes.Command{CommandId: aws.String(id), Status: ssmtypes.CommandStatusInProgress})
		ids = append(ids, id)
	}
	for _, tc := range []struct {
		name           string
		pending        []string
		byID, listings int
	}{
		{"the bulk: the listing (10 pages)", ids, 0, 10},
		{"nine stragglers: by id", ids[:9], 9, 0},
		{"ten stragglers: the listing is as cheap", ids[:10], 0, 10},
		{"one: by id", ids[5:6], 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &countingCommands{cmds: cmds}
			got, err := commandStates(context.Background(), c, DocumentName, tc.pending, time.Now(), len(cmds))
			if err != nil {
				t.Fatal(err)
			}
			if c.byID != tc.byID || c.listing != tc.listings {
				t.Errorf("%d calls by id and %d listing pages, want %d and %d", c.byID, c.listing, tc.byID, tc.listings)
			}
			for _, id := range tc.pending {
				if _, ok := got[id]; !ok {
					t.Errorf("%s not read", id)
				}
			}
		})
	}
}

// A wave's first look waits for the pacer: commands just sent have
// nothing to show (and may not be listed yet), so no ListCommands call
// comes in the first freshFor after the sends.
func TestFirstLookWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, groups(awssim.Group{Count: 100, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
		h.opt.PollMin = 5 * time.Second
		r := h.run(context.Background(), mustPolicy(t, oneWavePolicy("100%", "0")))
		if r.Status != result.StatusPassed {
			t.Fatalf("%s: %s", r.Status, r.Summary)
		}
		// Sleeps double from 5 s after the sends: looks at 5 and 15 s
		// would see nothing and are not made; at 35 and 75 s the
		// one-minute installs (and their agents' start) still run, at
		// 155 s they are done. Looking at once would make it 5 calls.
		if n := h.sim.Calls()["ssm:ListCommands"]; n != 3 {
			t.Errorf("%d ListCommands calls, want 3 (at 35, 75 and 155 s)", n)
		}
	})
}

// At an unknown pace sleeps double alone; at one chance in n of ending the
// phase last they grow 1+sqrt(n) times, up to PollMax.
func TestGrowAtUnknownPace(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	far := t0.Add(24 * time.Hour)
	wave := []chunkProgress{{sent: t0, total: 50, perRound: 50}}
	for _, tc := range []struct {
		rarity float64
		last   time.Duration
		want   time.Duration
	}{
		{1, 40 * time.Second, 80 * time.Second},
		{0, 40 * time.Second, 80 * time.Second}, // unset counts as alone
		{4, 40 * time.Second, 2 * time.Minute},
		{16, 2 * time.Minute, 10 * time.Minute},
		{16, 4 * time.Minute, 15 * time.Minute}, // PollMax
		{16, 0, 5 * time.Second},                // the first sleep: PollMin
	} {
		p := pacer{min: 5 * time.Second, max: 15 * time.Minute, rarity: tc.rarity}
		if got := p.next(t0.Add(tc.last), wave, nil, false, tc.last, far); got != tc.want {
			t.Errorf("rarity %g after %s: sleep %s, want %s", tc.rarity, tc.last, got, tc.want)
		}
		// Chunks waiting for a running one grow alike.
		if got := p.next(t0.Add(tc.last), wave, nil, true, tc.last, far); got != tc.want {
			t.Errorf("waiting, rarity %g after %s: sleep %s, want %s", tc.rarity, tc.last, got, tc.want)
		}
	}
}

// Once a wave's errors reach half its MaxErrors limit, no sleep is longer
// than PollMax, whatever predicts the next event: chunks waiting for one
// due in hours, a decline projected far ahead.
func TestAlertBoundsEverySleep(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	far := t0.Add(24 * time.Hour)
	base := pacer{min: 5 * time.Second, max: 15 * time.Minute, typical: 2 * time.Hour}
	// Chunks waiting for the running one, due two rounds of two hours
	// after its send.
	waiting := []chunkProgress{{sent: t0, total: 50, perRound: 25}}
	// A wave declining slowly, projected to reach its tail hours away.
	declining := []chunkProgress{{sent: t0, total: 1000, completed: 100, perRound: 1000}}
	trail := []remainingAt{{at: t0.Add(2 * time.Hour), remaining: 1000}, {at: t0.Add(3 * time.Hour), remaining: 900}}
	for _, tc := range []struct {
		name    string
		now     time.Time
		chunks  []chunkProgress
		trail   []remainingAt
		waiting bool
	}{
		{"waiting for a chunk due in hours", t0.Add(time.Hour), waiting, nil, true},
		{"a decline projected far ahead", t0.Add(3 * time.Hour), declining, trail, false},
	} {
		calm := base.next(tc.now, tc.chunks, tc.trail, tc.waiting, time.Minute, far)
		if calm <= base.max {
			t.Fatalf("%s: calm sleep %s; the case must sleep longer than PollMax to test the bound", tc.name, calm)
		}
		alert := base
		alert.alert = true
		if got := alert.next(tc.now, tc.chunks, tc.trail, tc.waiting, time.Minute, far); got > base.max {
			t.Errorf("%s, errors at half the limit: sleep %s, want at most %s", tc.name, got, base.max)
		}
	}
}

type noVerifier struct{ Verifier }

// A phase's last wave under an Inspector gate is followed by the wait for
// its rescans: a look may come later there at no cost. Not so for an
// earlier wave, a phase without the gate, or a run without a verifier.
func TestStandingOfTheLastWave(t *testing.T) {
	now := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	gated := &policy.Stage{Inspector: policy.Inspection{Enabled: true}}
	for _, tc := range []struct {
		name     string
		left     int
		st       *policy.Stage
		verifier Verifier
		want     time.Duration
	}{
		{"last wave, rescans follow", 0, gated, noVerifier{}, rescanHidden},
		{"an earlier wave", 1, gated, noVerifier{}, 0},
		{"no Inspector gate", 0, &policy.Stage{}, noVerifier{}, 0},
		{"no verifier", 0, gated, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &waveRun{t: &target{c: &Clients{Verifier: tc.verifier}}, st: tc.st, spec: waveSpec{left: tc.left}}
			rarity, lead := r.standing(now)
			if rarity != 1 || lead != tc.want {
				t.Errorf("rarity %g lead %s, want 1 and %s", rarity, lead, tc.want)
			}
		})
	}
}

// Completions seen only at a poll an hour after the last are spread over
// that hour as the record already spreads its completions there, or
// evenly: not piled at its middle, which would hide a wave's tail.
func TestCompletionsSpreadOverTheInterval(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	later := t0.Add(time.Second)
	h := &completions{}
	// Nothing known between 1 h and 2 h: 240 completions seen at a poll
	// at 2 h after one at 1 h spread evenly, one per 15 s.
	h.addOver(t0, "a", time.Hour, 2*time.Hour, 240)
	for _, q := range []float64{0.25, 0.5, 0.75, 1} {
		want := time.Hour + time.Duration(q*float64(time.Hour))
		if got, _ := h.quantile(later, q); got < want-completionGrain || got > want+completionGrain {
			t.Errorf("evenly: quantile(%.2f) = %s, want about %s", q, got, want)
		}
	}
	// Earlier waves seen closely: most completions at 20 min, a few at
	// 50 min. 110 more seen at 60 min after a poll at 10 min follow
	// that shape: 100 at 20 min and 10 at 50 min.
	h = history(map[time.Duration]int{20 * time.Minute: 100, 50 * time.Minute: 10})
	h.addOver(t0, "a", 10*time.Minute, time.Hour, 110)
	if got, _ := h.quantile(later, 0.85); got != 20*time.Minute+completionGrain {
		t.Errorf("by the record: quantile(0.85) = %s, want 20m15s", got)
	}
	if got, _ := h.quantile(later, 0.95); got != 50*time.Minute+completionGrain {
		t.Errorf("by the record: quantile(0.95) = %s, want 50m15s", got)
	}
	// Before the send or nothing: ignored.
	h = &completions{}
	h.addOver(t0, "a", -time.Minute, -time.Second, 5)
	h.addOver(t0, "a", time.Minute, 2*time.Minute, 0)
	if !h.empty(later) {
		t.Error("completions before the send or none were recorded")
	}
}

// What one account-region records at an instant, the others see from the
// next, folded in the same order whatever order they recorded in: the
// record, and every look it paces, are the same on every run.
func TestCompletionsAreSeenFromTheNextInstant(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	type rec struct {
		key      string
		from, to time.Duration
		n        int
	}
	at0 := []rec{{"111122223333/us-east-1", 0, time.Hour, 40}, {"444455556666/eu-west-1", 30 * time.Minute, 90 * time.Minute, 25}}
	at1 := []rec{{"111122223333/us-east-1", time.Hour, 2 * time.Hour, 7}, {"444455556666/eu-west-1", 20 * time.Minute, 2 * time.Hour, 9}}
	build := func(order []int) *completions {
		h := history(map[time.Duration]int{45 * time.Minute: 30})
		for _, i := range order {
			r := at0[i]
			h.addOver(t0, r.key, r.from, r.to, r.n)
		}
		if got := h.counts(t0); len(got) != 181 || got[180] != 30 {
			t.Fatalf("at the instant they were recorded, the record changed: %d buckets", len(got))
		}
		for _, i := range order {
			r := at1[i]
			h.addOver(t0.Add(time.Minute), r.key, r.from, r.to, r.n)
		}
		return h
	}
	a, b := build([]int{0, 1}), build([]int{1, 0})
	at := t0.Add(2 * time.Minute)
	if ca, cb := a.counts(at), b.counts(at); !slices.Equal(ca, cb) {
		t.Fatal("the same recordings in another order give another record")
	}
	total := 0.0
	for _, n := range a.counts(at) {
		total += n
	}
	if math.Abs(total-(30+40+25+7+9)) > 1e-9 {
		t.Errorf("%v completions recorded, want 111", total)
	}
}

// Account-regions share the pacing state (the policy's record, the
// phase's marks), yet a run is the same every time: whatever order their
// goroutines run in within one instant, every look and wave comes at the
// same time.
func TestSharedPacingIsDeterministic(t *testing.T) {
	type trace struct {
		polls int
		waves []string
	}
	run := func() trace {
		var tr trace
		synctest.Test(t, func(t *testing.T) {
			r := &awssim.Realism{Seed: 5, FailureShare: -1, TimeoutShare: -1, UndeliverableShare: -1, FindingsMean: -1, RateLimits: map[string]float64{}}
			for op := range awssim.DefaultRateLimits {
				r.RateLimits[op] = -1
			}
			sc := &awssim.Scenario{Accounts: []string{"111122223333"}, Realism: r}
			for _, region := range []string{"us-east-1", "eu-west-1", "us-west-2"} {
				sc.Groups = append(sc.Groups,
					awssim.Group{Account: "111122223333", Region: region, Count: 20, Name: "stg-" + region, Tags: map[string]string{"Environment": "staging", "App": "web"}},
					awssim.Group{Account: "111122223333", Region: region, Count: 200, Name: "prd-" + region, Tags: map[string]string{"Environment": "production", "App": "web"}})
			}
			h := newHarness(t, sc)
			h.opt.PollMin, h.opt.PollMax = 5*time.Second, 15*time.Minute
			src := strings.Replace(spreadPolicy, "regions: [us-east-1]", "regions: [us-east-1, eu-west-1, us-west-2]", 1)
			res := h.run(context.Background(), mustPolicy(t, src))
			if res.Status != result.StatusPassed {
				t.Fatalf("status %s: %s", res.Status, res.Summary)
			}
			tr.polls = h.sim.Calls()["ssm:ListCommands"]
			for _, tg := range res.Policies[0].Targets {
				for _, ph := range tg.Phases {
					for _, w := range ph.Waves {
						tr.waves = append(tr.waves, fmt.Sprintf("%s %s %d %s..%s", tg.Region, ph.Name, w.Index, w.StartedAt.Format(time.TimeOnly), w.EndedAt.Format(time.TimeOnly)))
					}
				}
			}
		})
		return tr
	}
	first := run()
	for i := 0; i < 3; i++ {
		if again := run(); again.polls != first.polls || !slices.Equal(again.waves, first.waves) {
			t.Fatalf("run %d differs: %d ListCommands calls, waves %v; first: %d, %v", i+2, again.polls, again.waves, first.polls, first.waves)
		}
	}
}

// Dozens of level account-regions make looks no rarer than maxRarity: the
// chance is a model's.
func TestRarityIsBounded(t *testing.T) {
	now := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	var ts []*target
	for range 40 {
		ts = append(ts, &target{})
	}
	ps := newPhaseShare(ts)
	for _, x := range ts {
		ps.mark(x, 2, now.Add(-time.Hour), false)
		x.peers = ps
	}
	r := &waveRun{t: ts[0], st: &policy.Stage{}, spec: waveSpec{}}
	if rarity, _ := r.standing(now); rarity != maxRarity {
		t.Errorf("40 level account-regions: rarity %g, want %g", rarity, maxRarity)
	}
	// Four level ones: one chance in four each, within the bound.
	ps = newPhaseShare(ts[:4])
	for _, x := range ts[:4] {
		ps.mark(x, 2, now.Add(-time.Hour), false)
		x.peers = ps
	}
	if rarity, _ := r.standing(now); rarity != 4 {
		t.Errorf("4 level account-regions: rarity %g, want 4", rarity)
	}
	r = &waveRun{t: &target{c: &Clients{}}, st: &policy.Stage{}}
	if rarity, _ := r.standing(now); rarity != 1 {
		t.Errorf("alone: rarity %g, want 1", rarity)
	}
}

// The inspection density against its closed form. Completions spread
// evenly over two hours after the send; one invocation still runs an hour
// in: its end is uniform over the next hour, hazard 1/(T-s) with T an
// hour, and looks at density sqrt(h/(2*pollWorth*rarity)) put the first
// where the integral reaches 1: sqrt(T) - sqrt(T-d) = sqrt(pollWorth*rarity/2),
// d = 84 s alone and 168 s at one chance in 4 of ending last (to the 15 s
// grain).
func TestInspectClosedForm(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	rec := &completions{}
	for b := time.Duration(0); b < 2*time.Hour; b += completionGrain {
		rec.add(b, 10)
	}
	one := []chunkProgress{{sent: t0, total: 1, perRound: 1}}
	T := time.Hour.Seconds()
	// PollScale s makes a look worth s² times the lag (0 counts as 1):
	// worth is in seconds of lag.
	for _, tc := range []struct{ rarity, scale, worth float64 }{{1, 0, 1}, {4, 1, 1}, {1, 2, 4}, {4, 0.5, 0.25}} {
		p := pacer{min: 5 * time.Second, max: 15 * time.Minute, seen: rec, rarity: tc.rarity, scale: tc.scale}
		got, ok := p.inspect(t0.Add(time.Hour), one)
		if !ok {
			t.Fatalf("rarity %g, scale %g: no prediction", tc.rarity, tc.scale)
		}
		root := math.Sqrt(T) - math.Sqrt(tc.worth*pollWorth.Seconds()*tc.rarity/2)
		want := time.Duration((T - root*root) * float64(time.Second))
		if got < want-completionGrain || got > want+2*completionGrain {
			t.Errorf("rarity %g, scale %g: first look after %s, want %s (to the grain)", tc.rarity, tc.scale, got, want.Round(time.Second))
		}
	}
}

// PollScale spaces the pacer's own choices: the tail watch, the least
// share of the age between looks, and (TestInspectClosedForm) the
// inspection density; PollMax and the hourly look for progress stay.
func TestPollScale(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	far := t0.Add(24 * time.Hour)
	tail := []chunkProgress{{sent: t0, total: 1000, completed: 995, perRound: 500}}
	// Nothing finished an hour in, the first completions due a minute
	// later by one typical invocation: the look waits the least share
	// of the age, 1/50 of an hour.
	bulk := []chunkProgress{{sent: t0, total: 100, perRound: 100}}
	for _, tc := range []struct {
		scale          float64
		tail, leastAge time.Duration
	}{
		{0, 2 * time.Minute, 72 * time.Second},
		{1, 2 * time.Minute, 72 * time.Second},
		{2, 4 * time.Minute, 144 * time.Second},
		{0.5, time.Minute, 65 * time.Second},       // 36 s, under the minute to the due look
		{16, 15 * time.Minute, 1152 * time.Second}, // the tail at PollMax; the share may pass it (an hour old)
	} {
		thin := pacer{min: 5 * time.Second, max: 15 * time.Minute, scale: tc.scale, seen: history(map[time.Duration]int{20 * time.Minute: 2})}
		if got := thin.next(t0.Add(3*time.Hour), tail, nil, false, time.Minute, far); got != tc.tail {
			t.Errorf("scale %g: tail at 3 h %s, want %s", tc.scale, got, tc.tail)
		}
		fresh := pacer{min: 5 * time.Second, max: 15 * time.Minute, scale: tc.scale, typical: 61 * time.Minute}
		if got := fresh.next(t0.Add(time.Hour), bulk, nil, false, time.Minute, far); got != tc.leastAge {
			t.Errorf("scale %g: first completions due in a minute, an hour in: %s, want %s", tc.scale, got, tc.leastAge)
		}
	}
	for in, want := range map[float64]float64{0: 1, -1: 1, math.NaN(): 1, math.Inf(1): 64, 1e12: 64, 3: 3, 0.01: 1.0 / 16} {
		o := Options{PollScale: in}
		o.defaults()
		if o.PollScale != want {
			t.Errorf("PollScale %g: %g after defaults, want %g", in, o.PollScale, want)
		}
	}
	if got := (Options{}).ProgressEvery(); got != time.Hour {
		t.Errorf("progress looks every %s by default, want an hour (4 PollMax)", got)
	}
	if got := (Options{PollMax: time.Minute}).ProgressEvery(); got != 4*time.Minute {
		t.Errorf("progress looks every %s at PollMax 1m, want 4m", got)
	}
}

// The tail watch at one chance in n of ending last is sqrt(n) times
// rarer; a lead
// stretches any look to half of it, at most the quiet hour.
func TestTailAndLead(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	far := t0.Add(24 * time.Hour)
	thin := pacer{min: 5 * time.Second, max: 15 * time.Minute, seen: history(map[time.Duration]int{20 * time.Minute: 2})}
	tail := []chunkProgress{{sent: t0, total: 1000, completed: 995, perRound: 500}}
	alone := thin.next(t0.Add(3*time.Hour), tail, nil, false, time.Minute, far)
	if alone != 2*time.Minute {
		t.Errorf("tail alone at 3 h: %s, want 2m (1/90 of the age)", alone)
	}
	four := thin
	four.rarity = 4
	if got := four.next(t0.Add(3*time.Hour), tail, nil, false, time.Minute, far); got != 4*time.Minute {
		t.Errorf("tail at one chance in 4: %s, want 4m", got)
	}
	led := thin
	led.lead = 20 * time.Minute
	if got := led.next(t0.Add(3*time.Hour), tail, nil, false, time.Minute, far); got != 10*time.Minute {
		t.Errorf("tail 20 minutes ahead of another: %s, want 10m", got)
	}
	// From the record: one straggler whose end is due, but another
	// account-region is hours behind: the look waits the quiet hour.
	rec := pacer{min: 5 * time.Second, max: 15 * time.Minute, seen: spreadRecord(), lead: 5 * time.Hour}
	if got := rec.next(t0.Add(90*time.Minute), []chunkProgress{{sent: t0, total: 1000, completed: 999, perRound: 500}}, nil, false, time.Minute, far); got != quietFactor*rec.max {
		t.Errorf("5 hours ahead: %s, want the quiet %s", got, quietFactor*rec.max)
	}
}

// The wave that ends the phase is marked last, whatever waves are empty.
func TestSplitWavesMarksTheLast(t *testing.T) {
	insts := make([]Instance, 10)
	for i := range insts {
		insts[i].ID = fmt.Sprintf("i-%02d", i)
	}
	for _, tc := range []struct {
		waves []string
		n     int
	}{{[]string{"100%"}, 10}, {[]string{"10%", "50%", "100%"}, 10}, {[]string{"1%", "100%"}, 10}} {
		var ws []policy.Percent
		for _, w := range tc.waves {
			p, err := policy.ParsePercent(w)
			if err != nil {
				t.Fatal(err)
			}
			ws = append(ws, p)
		}
		got := splitWaves(insts[:tc.n], &policy.Stage{Waves: ws})
		for i, w := range got {
			if want := len(got) - 1 - i; w.left != want {
				t.Errorf("%v: wave %d of %d left=%d, want %d", tc.waves, i+1, len(got), w.left, want)
			}
		}
	}
}

// A wave's end tells the phase where this account-region is: at its next
// wave from then, after a wave of that length. Its gate's slack is half
// its lead over the one expected to end the phase after it.
func TestWaveDoneAndSlack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &Engine{opt: Options{Clock: clock.Real{}}}
		a, b := &target{e: e}, &target{e: e}
		ps := newPhaseShare([]*target{a, b})
		a.peers, b.peers = ps, ps
		t0 := time.Now()
		ps.mark(a, 2, t0, false)
		ps.mark(b, 2, t0.Add(40*time.Minute), false) // b's sends waited 40 minutes
		time.Sleep(2 * time.Hour)
		a.waveDone(2, t0, time.Now()) // wave 1 of 3: two left after it
		time.Sleep(time.Second)
		// A wave takes 2 h: a, at wave 2 since t0+2h, ends the phase's
		// next wave at t0+4h; b, in wave 1 since t0+40m, at t0+2h40m and
		// its next at t0+4h40m: 40 minutes after a.
		if got := a.slack(); got < 20*time.Minute-time.Second || got > 20*time.Minute+time.Second {
			t.Errorf("a's slack %s, want 20m (half its 40-minute lead)", got)
		}
		if got := b.slack(); got != 0 {
			t.Errorf("b, furthest behind: slack %s, want 0", got)
		}
	})
}

// observe records each command's new completions since the poll before,
// once: what the earlier polls counted is not counted again.
func TestObserveRecordsNewCompletions(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	mc, err := policy.ParsePercent("50%")
	if err != nil {
		t.Fatal(err)
	}
	rec := &completions{}
	c := &chunkState{ids: make([]string, 50), sentAt: t0}
	r := &waveRun{t: &target{region: "us-east-1"}, st: &policy.Stage{MaxConcurrency: mc}, chunks: []*chunkState{c}, next: 1, pace: pacer{seen: rec}}
	c.last.CompletedCount = 10
	r.observe(t0.Add(10 * time.Minute))
	c.last.CompletedCount = 15
	r.observe(t0.Add(20 * time.Minute))
	total := 0.0
	for _, n := range rec.counts(t0.Add(time.Hour)) {
		total += n
	}
	if math.Abs(total-15) > 1e-9 {
		t.Errorf("%v completions recorded after polls that saw 10 then 15, want 15", total)
	}
}

// The record is smoothed over 5 minutes at least: completions all seen at
// 40 minutes after their send put a running invocation's end between 35
// and 45, so its first look comes in that span.
func TestInspectSmoothsTheRecord(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	p := pacer{min: 5 * time.Second, max: 15 * time.Minute, seen: history(map[time.Duration]int{40 * time.Minute: 200})}
	d, ok := p.inspect(t0.Add(30*time.Minute), []chunkProgress{{sent: t0, total: 1, perRound: 1}})
	if !ok || d < 5*time.Minute || d > 15*time.Minute {
		t.Errorf("first look %s after (ok %v), want within 5..15 minutes", d, ok)
	}
}

// A wave whose errors reach half its MaxErrors limit is watched closely
// (pacer.alert); a limit of 0 always is. Only sent commands count.
func TestNearLimit(t *testing.T) {
	for _, tc := range []struct {
		errs  []int
		sent  int
		limit int
		want  bool
	}{
		{[]int{0, 0}, 2, 10, false},
		{[]int{2, 2}, 2, 10, false},
		{[]int{2, 3}, 2, 10, true},
		{[]int{2, 3}, 1, 10, false}, // the second is not sent
		{[]int{0}, 1, 0, true},
	} {
		r := &waveRun{next: tc.sent, gw: gate.Wave{ErrorLimit: tc.limit}}
		for _, e := range tc.errs {
			r.chunks = append(r.chunks, &chunkState{errors: e})
		}
		if got := r.nearLimit(); got != tc.want {
			t.Errorf("errors %v, %d sent, limit %d: nearLimit %v, want %v", tc.errs, tc.sent, tc.limit, got, tc.want)
		}
	}
}
