package rollout

import (
	"context"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/policy"
)

// pacer spaces a wave's polls. A poll costs one ListCommands page per 50
// commands whatever the wave's size, so polls, not instances, are what a
// run spends per account-region; a poll that comes late costs the time
// until the next wave starts. What matters is when the wave ends (or, while
// chunks wait for the in-flight budget, when a running one ends). Real
// install times are spread widely, minutes to hours with a long tail
// (issue #19), so the pacer does not assume rounds of one typical
// duration; it follows the distribution it observes:
//
//   - Once the policy's record of completions (their times after their
//     command's send, shared by its account-regions) knows invocations
//     that ran longer than the running ones have: the optimal inspection
//     density of the wave's end (inspect): rare looks while many run
//     (at least every quietFactor*max, for progress), close ones once the
//     last are due.
//   - Otherwise, the bulk of a wave: nothing is worth seeing until the
//     wave thins out to its tail (1% still running, at least 3). The
//     pacer sleeps until then as predicted by the record, or by
//     projecting this wave's own decline, or, before anything has
//     finished, by one typical invocation; never longer than the wave's
//     age (or an hour), so a wrong prediction costs at most a doubling.
//   - The tail, a straggler later than the record knows: it may end at
//     any moment up to hours later and nothing predicts which, so the
//     pacer looks every tailShare of the wave's age: the end is seen at
//     most that late.
//   - While chunks wait for a running one to end: when the earliest is
//     predicted done (earlier completions, or its rounds of typical
//     invocations), then every tailShare of the age.
//
// Among the phase's account-regions only the last to end delays the next
// phase, so a look here is worth the chance that this one ends last
// (phaseShare.lastChance): the inspection density and the tail watch are
// sqrt(1/chance) times rarer, and a look at an unknown pace comes
// 1+sqrt(1/chance) times the previous sleep later instead of twice. One
// expected to end ahead of another looks up to half its lead later
// (phaseShare.lead).
//
// SSM stops each chunk at its own MaxErrors; what patchgate adds (not
// sending the waiting chunks, cancelling the others) is decided at the
// polls, which come at least at each predicted chunk end while chunks
// wait, and every max once the wave's errors reach half its limit.
type pacer struct {
	min, max time.Duration
	// scale spaces the least share of the age, the tail watch and the
	// inspection density (Options.PollScale; 0 counts as 1).
	scale   float64
	typical time.Duration // one invocation, as measured in this target; 0 unknown
	seen    *completions  // the policy's completions so far (nil: none kept)
	// rarity is 1 over the chance that this account-region ends the
	// phase last (below 1 counts as 1): the next phase waits for the last
	// of the phase's account-regions, so a late look here costs the run
	// nothing unless this one ends last.
	rarity float64
	// lead is how much later than this account-region another one of the
	// phase is expected to end it: a look here may come that much later
	// (half of it, for the error in the expectation) at no cost.
	lead time.Duration
	// alert: the wave's errors have reached half its MaxErrors limit, so
	// it is looked at every max at least, whatever its pace.
	alert bool
}

// The pacer's shares, chosen on the realistic fleet model (awssim
// realism; see docs/simulator.md and the figures in the commit that set
// them): a lower tailShare buys less lag with more polls.
const (
	// minShare: before its tail a wave is looked at no more often than
	// every 1/50 of its age.
	minShare = 1.0 / 50
	// tailShare: in its tail a wave is looked at every 1/90 of its age,
	// so that the last completion is seen at most that late (the rule for
	// a straggler later than the record knows: its end has no data).
	tailShare = 1.0 / 90
	// tailFrac and tailMin: a wave is in its tail once 1% of it, and at
	// least 3 invocations, still run.
	tailFrac = 0.01
	tailMin  = 3
	// pollWorth is the detection lag one poll is worth: the inspection
	// density trades polls against expected lag at this rate. Lower buys
	// less lag with more polls (figures in BENCHMARKS.md).
	pollWorth = time.Second
	// quietFactor: a wave with few errors and no end in sight is looked
	// at every quietFactor*max (an hour by default) at least, for
	// progress; SSM holds each command to its own MaxErrors meanwhile.
	quietFactor = 4
	// minRecord is how many completions the record needs before it
	// predicts a wave's end.
	minRecord = 100
	// minLater is how many recorded completions must have come later
	// after their send than the oldest running chunk's age.
	minLater = 5
	// smoothMin and smoothShare: the record is smoothed over
	// max(smoothMin, smoothShare*age), since its tail holds few samples.
	smoothMin   = 5 * time.Minute
	smoothShare = 0.06
)

// chunkProgress is what the pacer needs of one sent command.
type chunkProgress struct {
	sent      time.Time
	perRound  int // invocations SSM runs at once
	total     int // invocations of the command
	completed int
	terminal  bool
}

// remainingAt is how many of a wave's sent invocations were still running
// at a poll.
type remainingAt struct {
	at        time.Time
	remaining int
}

// perRound is how many of n instances SSM runs at once under
// MaxConcurrency ("N" or "N%", as SSM reads it: a share rounded down, at
// least one).
func perRound(mc policy.Percent, n int) int {
	return max(1, min(mc.Of(n), n))
}

// next is how long to sleep before polling again. last is the previous
// sleep (0 before the first poll), trail the wave's polls so far, waiting
// whether chunks wait for a running one to end, and deadline bounds every
// sleep.
func (p pacer) next(now time.Time, chunks []chunkProgress, trail []remainingAt, waiting bool, last time.Duration, deadline time.Time) time.Duration {
	d := p.sleep(now, chunks, trail, waiting, last)
	if left := deadline.Sub(now); left < d {
		d = max(left, p.min)
	}
	return d
}

func (p pacer) sleep(now time.Time, chunks []chunkProgress, trail []remainingAt, waiting bool, last time.Duration) time.Duration {
	var first time.Time
	running, total := 0, 0
	for _, c := range chunks {
		total += c.total
		if c.terminal {
			continue
		}
		running += max(c.total-c.completed, 1)
		if first.IsZero() || c.sent.Before(first) {
			first = c.sent
		}
	}
	if running == 0 {
		return p.min
	}
	age := now.Sub(first)
	floor := max(p.min, time.Duration(float64(age)*minShare*p.scaled()))
	ceiling := min(max(p.max, age), quietFactor*p.max)
	if p.alert {
		// Errors at half the limit: every max at least, whatever the
		// prediction (SSM stops each chunk at its own MaxErrors; the
		// wave's own limit is patchgate's to apply).
		ceiling = p.max
	}
	// A straggler here delays the next phase only if this account-region
	// ends last: its looks may be sqrt(rarity) times rarer (the inspection
	// density's scaling, see inspect).
	tail := max(min(max(p.min, time.Duration(float64(age)*tailShare*p.scaled()*math.Sqrt(max(p.rarity, 1)))), p.max), p.slack(p.max))
	until := func(due time.Time) time.Duration { return min(max(due.Sub(now)+p.min, floor), ceiling) }
	if waiting {
		if due, ok := p.firstChunkEnd(now, chunks); ok && due.After(now) {
			return until(due)
		}
		if p.typical > 0 || !p.seen.empty(now) {
			return tail
		}
		return p.grow(last)
	}
	if d, ok := p.inspect(now, chunks); ok {
		return max(d, p.min, p.slack(quietFactor*p.max))
	}
	// A wave is in its tail once it has thinned to it, and has run for
	// one typical invocation: a wave of a few instances is "a few still
	// running" from its send, yet its end is not due before then.
	thin := float64(running) <= tailOf(total) && running < total
	if thin && age >= p.typical {
		return tail
	}
	if due, ok := p.thinned(now, chunks); ok && due.After(now) {
		return until(due)
	}
	if d, ok := projectDecline(trail, now, running, total); ok && !thin {
		return min(max(d, floor), ceiling)
	}
	if p.typical > 0 {
		// Nothing finished yet: the first completions are due about one
		// invocation after the send.
		if due := first.Add(p.typical); due.After(now) {
			return until(due)
		}
		return tail
	}
	// Unknown pace: a first look soon after sending (a fleet with nothing
	// to install finishes in a minute), then less and less often.
	return p.grow(last)
}

// scaled is the spacing's scale (pacer.scale, 0 counting as 1).
func (p pacer) scaled() float64 {
	if p.scale > 0 {
		return p.scale
	}
	return 1
}

// grow is the next sleep at an unknown pace after last: twice it alone
// (a look's lag is at most the wave's age), 1+sqrt(rarity) times it among
// account-regions whose last one alone delays the next phase (looks
// sqrt(rarity) times rarer, as everywhere else).
func (p pacer) grow(last time.Duration) time.Duration {
	return min(max(time.Duration(float64(last)*(1+math.Sqrt(max(p.rarity, 1)))), p.min), p.max)
}

// slack is how long a look may wait because another account-region is
// expected to end the phase later (half the lead), at most limit.
func (p pacer) slack(limit time.Duration) time.Duration {
	if p.alert {
		limit = min(limit, p.max)
	}
	return min(p.lead/2, limit)
}

// tailOf is how many of a wave's total invocations still running make
// its tail: a share of it, and never fewer than a few.
func tailOf(total int) float64 { return math.Max(tailFrac*float64(total), tailMin) }

// thinned is when, by this target's earlier completions, the last running
// chunk will be down to its tail (the 1-tailFrac quantile of completion
// times after its send). It reports false without earlier completions.
func (p pacer) thinned(now time.Time, chunks []chunkProgress) (time.Time, bool) {
	off, ok := p.seen.quantile(now, 1-tailFrac)
	if !ok {
		return time.Time{}, false
	}
	var due time.Time
	for _, c := range chunks {
		if at := c.sent.Add(off); !c.terminal && at.After(due) {
			due = at
		}
	}
	return due, !due.IsZero()
}

// firstChunkEnd is when the first running chunk is predicted done: by the
// latest earlier completion after a send, or else by its rounds of
// MaxConcurrency invocations of the typical duration.
func (p pacer) firstChunkEnd(now time.Time, chunks []chunkProgress) (time.Time, bool) {
	var due time.Time
	latest, seen := p.seen.quantile(now, 1)
	for _, c := range chunks {
		if c.terminal {
			continue
		}
		var at time.Time
		switch {
		case seen:
			at = c.sent.Add(latest)
		case p.typical > 0:
			rounds := (c.total + c.perRound - 1) / max(c.perRound, 1)
			at = c.sent.Add(time.Duration(max(rounds, 1)) * p.typical)
		default:
			continue
		}
		if due.IsZero() || at.Before(due) {
			due = at
		}
	}
	return due, !due.IsZero()
}

// projectDecline projects the wave's recent decline (its running count
// falling as an exponential) to when it is down to its tail. It reports
// false before the wave has shown a decline.
func projectDecline(trail []remainingAt, now time.Time, running, total int) (time.Duration, bool) {
	if len(trail) < 2 || running <= 0 {
		return 0, false
	}
	cur := trail[len(trail)-1]
	// The latest earlier poll that saw more running: the rate over the
	// time since then, idle polls included, errs on the slow side.
	for i := len(trail) - 2; i >= 0; i-- {
		ref := trail[i]
		if ref.remaining > cur.remaining {
			span := now.Sub(ref.at)
			if span <= 0 {
				return 0, false
			}
			rate := math.Log(float64(ref.remaining)/float64(cur.remaining)) / span.Seconds()
			target := tailOf(total)
			return time.Duration(math.Log(float64(running)/target) / rate * float64(time.Second)), true
		}
	}
	return 0, false
}

// completionGrain is the resolution at which completions are kept.
const completionGrain = 15 * time.Second

// completions counts a policy's observed invocation completions by their
// time after their command's send, in completionGrain buckets: a few
// thousand numbers however large the fleet. The account-regions of a
// policy share one record (they patch alike under one policy), so a
// small account-region learns its waves' tail from the others too.
//
// What an account-region records at one instant of the clock is seen by
// the others from the next instant, folded in a fixed order: the
// account-regions run at once, and the order in which they happen to
// record at one instant must not change what any of them does (a run, and
// `make bench`, gives the same result every time).
type completions struct {
	mu      sync.Mutex
	buckets []float64
	pending []seenAt // recorded, not yet folded into buckets
}

// seenAt is one poll's new completions of one command: n between from and
// to after its send, seen at at by the account-region key.
type seenAt struct {
	at       time.Time
	key      string
	from, to time.Duration
	n        int
}

// add records n completions at off after the send, at once (a record
// built beforehand, as in tests).
func (h *completions) add(off time.Duration, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fold(seenAt{from: off, to: off, n: n})
}

// addOver records, at at, n completions seen by key between two polls,
// from and to after the send. A poll an hour after the last says only
// that they came within that hour: they are spread over it as the record
// already spreads its completions there (earlier waves seen more
// closely), evenly where it has none, so the record keeps the shape of a
// wave's tail however rarely its bulk was looked at.
func (h *completions) addOver(at time.Time, key string, from, to time.Duration, n int) {
	if n <= 0 || to < 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending = append(h.pending, seenAt{at: at, key: key, from: from, to: to, n: n})
}

// fold adds one recording to the buckets. The caller holds mu.
func (h *completions) fold(e seenAt) {
	if e.n <= 0 || e.to < 0 {
		return
	}
	lo, hi := int(max(e.from, 0)/completionGrain), int(e.to/completionGrain)
	if hi >= len(h.buckets) {
		h.buckets = append(h.buckets, make([]float64, hi+1-len(h.buckets))...)
	}
	seen := 0.0
	for _, w := range h.buckets[lo : hi+1] {
		seen += w
	}
	for b := lo; b <= hi; b++ {
		if seen > 0 {
			h.buckets[b] += float64(e.n) * h.buckets[b] / seen
		} else {
			h.buckets[b] += float64(e.n) / float64(hi-lo+1)
		}
	}
}

// counts is a copy of the record as seen at now: what was recorded before
// now (nil for a nil record).
func (h *completions) counts(now time.Time) []float64 {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var due, later []seenAt
	for _, e := range h.pending {
		if e.at.Before(now) {
			due = append(due, e)
		} else {
			later = append(later, e)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		a, b := due[i], due[j]
		switch {
		case !a.at.Equal(b.at):
			return a.at.Before(b.at)
		case a.key != b.key:
			return a.key < b.key
		case a.from != b.from:
			return a.from < b.from
		case a.to != b.to:
			return a.to < b.to
		}
		return a.n < b.n
	})
	for _, e := range due {
		h.fold(e)
	}
	h.pending = later
	return slices.Clone(h.buckets)
}

// empty reports whether nothing was recorded before now (also for a nil
// record).
func (h *completions) empty(now time.Time) bool {
	for _, n := range h.counts(now) {
		if n > 0 {
			return false
		}
	}
	return true
}

// quantile is the q-quantile (0 < q <= 1) of the completion times
// recorded before now, at the end of its bucket; false when none were.
func (h *completions) quantile(now time.Time, q float64) (time.Duration, bool) {
	buckets := h.counts(now)
	total := 0.0
	for _, n := range buckets {
		total += n
	}
	if total <= 0 {
		return 0, false
	}
	rank := max(q*total, 1e-9)
	for b, n := range buckets {
		if rank -= n; rank <= 1e-9 {
			return time.Duration(b+1) * completionGrain, true
		}
	}
	return time.Duration(len(buckets)) * completionGrain, true
}

// smoothCDF is the record's distribution of completion times after a
// send, smoothed by a moving average w buckets either side.
type smoothCDF struct {
	prefix []float64 // prefix[i]: sum of the raw CDF at grid points below i-off
	off, w int
}

// newSmoothCDF smooths the record; false with fewer than minRecord
// completions.
func newSmoothCDF(buckets []float64, w, span int) (smoothCDF, bool) {
	total := 0.0
	for _, n := range buckets {
		total += n
	}
	if total < minRecord {
		return smoothCDF{}, false
	}
	cum := make([]float64, len(buckets)+1)
	for i, n := range buckets {
		cum[i+1] = cum[i] + n/total
	}
	raw := func(j int) float64 { // the CDF at grid point j: 0 below, 1 beyond
		switch {
		case j <= 0:
			return 0
		case j >= len(cum):
			return 1
		}
		return cum[j]
	}
	sc := smoothCDF{off: w + 1, w: w, prefix: make([]float64, span+2*w+4)}
	for i := 1; i < len(sc.prefix); i++ {
		sc.prefix[i] = sc.prefix[i-1] + raw(i-1-sc.off)
	}
	return sc, true
}

// at is the smoothed CDF at grid point j.
func (sc smoothCDF) at(j int) float64 {
	lo, hi := j-sc.w+sc.off, j+sc.w+1+sc.off
	switch {
	case lo < 0:
		return 0
	case hi >= len(sc.prefix):
		return 1
	}
	return (sc.prefix[hi] - sc.prefix[lo]) / float64(2*sc.w+1)
}

// of is the smoothed CDF at a time after the send, interpolated.
func (sc smoothCDF) of(d time.Duration) float64 {
	x := float64(d) / float64(completionGrain)
	j := math.Floor(x)
	f := x - j
	return sc.at(int(j))*(1-f) + sc.at(int(j)+1)*f
}

// inspect is the next sleep by the optimal inspection density for the
// end of the wave (Keller's approximation for checking a failure time):
// with the end's hazard h(t), looks are due at density
// sqrt(h(t) / (2 * pollWorth * rarity)), so they come rarely while many
// invocations run and the end is far, and closely once the record says
// the last ones are due. The end is the last of the running invocations;
// each chunk's are taken to end as the record's completions did at the
// same age, given they had not ended yet. It reports false when the
// record cannot tell: too few completions, or a chunk older than any
// completion seen (then the tail rule looks every tailShare of its age).
func (p pacer) inspect(now time.Time, chunks []chunkProgress) (time.Duration, bool) {
	quiet := quietFactor * p.max
	if p.alert {
		quiet = p.max
	}
	type running struct {
		age       time.Duration
		n         float64 // invocations still running
		done, out float64 // the record's CDF at age, and 1 minus it
	}
	var rs []running
	var oldest time.Duration
	for _, c := range chunks {
		if c.terminal {
			continue
		}
		age := now.Sub(c.sent)
		oldest = max(oldest, age)
		rs = append(rs, running{age: age, n: float64(max(c.total-c.completed, 1))})
	}
	if len(rs) == 0 {
		return 0, false
	}
	buckets := p.seen.counts(now)
	// The record must know invocations that ran longer than the oldest
	// chunk has: a wave's own completions (the run's first wave) say
	// nothing of its stragglers.
	later := 0.0
	for b := int(oldest/completionGrain) + 1; b < len(buckets); b++ {
		later += buckets[b]
	}
	if later < minLater {
		return 0, false
	}
	w := int(max(smoothMin, time.Duration(smoothShare*float64(oldest))) / completionGrain)
	steps := int(quiet / completionGrain)
	sc, ok := newSmoothCDF(buckets, w, int((oldest+quiet)/completionGrain)+w+2)
	if !ok {
		return 0, false
	}
	for i := range rs {
		rs[i].done = sc.of(rs[i].age)
		if rs[i].out = 1 - rs[i].done; rs[i].out < 1e-9 {
			return 0, false
		}
	}
	// Scaled spacing is a poll worth scale² times the lag: the density
	// goes as its inverse square root.
	k := 1 / (2 * pollWorth.Seconds() * p.scaled() * p.scaled() * max(p.rarity, 1))
	grain := completionGrain.Seconds()
	looks, prev := 0.0, 0.0
	for j := 1; j <= steps; j++ {
		ahead := time.Duration(j) * completionGrain
		// G: the chance that every running invocation has ended by then.
		logG := 0.0
		for _, r := range rs {
			f := (sc.of(r.age+ahead) - r.done) / r.out
			if f <= 0 {
				logG = math.Inf(-1)
				break
			}
			logG += r.n * math.Log(min(f, 1))
		}
		g := math.Exp(logG)
		if g >= 0.999 {
			return ahead, true
		}
		looks += math.Sqrt(k*max(g-prev, 0)/grain/(1-g)) * grain
		prev = g
		if looks >= 1 {
			return ahead, true
		}
	}
	return quiet, true
}

// measureTypical reads the invocations of a command some of which have
// finished (one page) and returns the median time a successful one took,
// or 0 when none has.
func measureTypical(ctx context.Context, c Commands, commandID string) (time.Duration, error) {
	out, err := c.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{CommandId: aws.String(commandID), Details: true, MaxResults: aws.Int32(50)})
	if err != nil {
		return 0, err
	}
	var took []time.Duration
	for _, inv := range out.CommandInvocations {
		if inv.Status != ssmtypes.CommandInvocationStatusSuccess {
			continue
		}
		for _, pl := range inv.CommandPlugins {
			start, end := aws.ToTime(pl.ResponseStartDateTime), aws.ToTime(pl.ResponseFinishDateTime)
			if !start.IsZero() && end.After(start) {
				took = append(took, end.Sub(start))
			}
		}
	}
	if len(took) == 0 {
		return 0, nil
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	return took[len(took)/2], nil
}
