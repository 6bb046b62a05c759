// Package progress prints a long patch run's progress as it happens: one
// line when a phase starts in an account-region, one at least and at most
// every Interval while its work is in flight (sent, succeeded, failed,
// in flight, remaining, elapsed, time left at the observed pace), and a
// final line when it ends. It is fed small events by the engine and never
// calls AWS; time comes from an injected clock.
package progress

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/patchgate/patchgate/internal/clock"
)

// DefaultInterval is how often an in-flight phase reports.
const DefaultInterval = time.Minute

// Key names one phase of one policy in one account-region.
type Key struct {
	Policy, Phase, Account, Region string
}

func (k Key) String() string {
	acct := k.Account
	if acct == "" {
		acct = "(credentials' account)"
	}
	return clean(k.Policy) + "/" + clean(k.Phase) + " " + clean(acct) + "/" + clean(k.Region)
}

// Reporter turns events into lines. Its methods are safe for concurrent
// use: account-regions run in parallel.
type Reporter struct {
	w        io.Writer
	clk      clock.Clock
	interval time.Duration

	mu     sync.Mutex
	phases map[Key]*phase
}

type phase struct {
	instances, waves  int
	sent              int
	succeeded, failed int
	inFlight          int
	started           time.Time
	firstSent         time.Time
	lastLine          time.Time
	ended             bool
}

// New returns a Reporter writing to w. A nil clock is the wall clock; an
// interval <= 0 is DefaultInterval.
func New(w io.Writer, clk clock.Clock, interval time.Duration) *Reporter {
	if clk == nil {
		clk = clock.Real{}
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Reporter{w: w, clk: clk, interval: interval, phases: map[Key]*phase{}}
}

// PhaseStarted: the phase begins in k's account-region with instances
// selected, to be sent in waves waves.
func (r *Reporter) PhaseStarted(k Key, instances, waves int) {
	r.PhaseStartedAt(k, instances, waves, time.Time{})
}

// PhaseStartedAt is PhaseStarted for a phase seen after it started at
// (elapsed counts from then); a zero at is now.
func (r *Reporter) PhaseStartedAt(k Key, instances, waves int, at time.Time) {
	r.begin(k, instances, waves, at, true)
}

// begin tracks a phase, announcing it unless the observer met it ended.
func (r *Reporter) begin(k Key, instances, waves int, at time.Time, announce bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clk.Now()
	if at.IsZero() || at.After(now) {
		at = now
	}
	p := &phase{instances: instances, waves: waves, started: at, lastLine: now}
	r.phases[k] = p
	if !announce {
		return
	}
	if instances <= 0 { // not known yet (the snapshot observer)
		r.printf("%s: started", k)
		return
	}
	r.printf("%s: started, %d %s in %d %s", k, instances, plural(instances, "instance", "instances"), waves, plural(waves, "wave", "waves"))
}

// Sent: a command went to n more instances of the phase.
func (r *Reporter) Sent(k Key, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.phase(k)
	if p.firstSent.IsZero() {
		p.firstSent = r.clk.Now()
	}
	p.sent += n
	p.inFlight += n
}

// Polled: the phase's tallies so far (not increments). A line is printed
// when the last one is at least an interval old.
func (r *Reporter) Polled(k Key, succeeded, failed, inFlight int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.phase(k)
	p.succeeded, p.failed, p.inFlight = succeeded, failed, inFlight
	if now := r.clk.Now(); !now.Before(p.lastLine.Add(r.interval)) {
		r.line(k, p, now)
	}
}

// PhaseEnded: the final line of the phase. heldBack is how many of its
// instances were never sent (a halted phase holds back all of them).
func (r *Reporter) PhaseEnded(k Key, status string, heldBack int) {
	r.PhaseEndedAt(k, status, heldBack, time.Time{})
}

// PhaseEndedAt is PhaseEnded for a phase that ended at (zero: now).
func (r *Reporter) PhaseEndedAt(k Key, status string, heldBack int, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.phase(k)
	if p.ended {
		return
	}
	p.ended = true
	now := at
	if now.IsZero() {
		now = r.clk.Now()
	}
	if p.sent == 0 && heldBack > 0 {
		r.printf("%s: %s, %d %s held back (nothing sent)", k, clean(status), heldBack, plural(heldBack, "instance", "instances"))
		return
	}
	if p.sent == 0 {
		r.printf("%s: %s, nothing sent", k, clean(status))
		return
	}
	msg := fmt.Sprintf("%s: %s after %s: succeeded %d, failed %d of %d sent", k, clean(status), dur(now.Sub(p.started)), p.succeeded, p.failed, p.sent)
	if heldBack > 0 {
		msg += fmt.Sprintf("; %d %s held back", heldBack, plural(heldBack, "instance", "instances"))
	}
	r.printf("%s", msg)
}

// Run prints a line for every in-flight phase whose last line is an
// interval old, until ctx is done: a phase waiting on a slow command
// still says it is alive at least once an interval.
func (r *Reporter) Run(ctx context.Context) {
	for {
		if err := r.clk.Sleep(ctx, r.untilNext()); err != nil {
			return
		}
		r.Tick()
	}
}

// Tick prints the lines that are due now.
func (r *Reporter) Tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clk.Now()
	keys := make([]Key, 0, len(r.phases))
	for k, p := range r.phases {
		if !p.ended && !now.Before(p.lastLine.Add(r.interval)) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		r.line(k, r.phases[k], now)
	}
}

// untilNext is how long until the earliest in-flight phase is due.
func (r *Reporter) untilNext() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clk.Now()
	next := r.interval
	for _, p := range r.phases {
		if !p.ended {
			next = min(next, p.lastLine.Add(r.interval).Sub(now))
		}
	}
	return max(next, time.Second)
}

func (r *Reporter) phase(k Key) *phase {
	p := r.phases[k]
	if p == nil { // an event before PhaseStarted: count it, total unknown
		p = &phase{started: r.clk.Now(), lastLine: r.clk.Now()}
		r.phases[k] = p
	}
	return p
}

func (r *Reporter) line(k Key, p *phase, now time.Time) {
	p.lastLine = now
	done := p.succeeded + p.failed
	if p.sent == 0 && p.instances == 0 {
		// Known to be running, counts not known yet (the snapshot observer).
		r.printf("%s: in flight; %s since the policy started in this account-region", k, dur(now.Sub(p.started)))
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: sent %d, succeeded %d, failed %d, in flight %d", k, p.sent, p.succeeded, p.failed, p.inFlight)
	if p.instances > 0 {
		fmt.Fprintf(&b, ", remaining %d of %d", max(p.instances-done, 0), p.instances)
	}
	fmt.Fprintf(&b, "; elapsed %s", dur(now.Sub(p.started)))
	if left, ok := p.eta(now); ok {
		fmt.Fprintf(&b, ", about %s left", dur(left))
	} else if p.instances > 0 {
		b.WriteString(", time left not known yet")
	}
	r.printf("%s", b.String())
}

// eta is the time left at the pace observed since the first send: the
// instances finished per unit of time so far, applied to those remaining.
func (p *phase) eta(now time.Time) (time.Duration, bool) {
	done := p.succeeded + p.failed
	if p.instances <= 0 || done == 0 || p.firstSent.IsZero() {
		return 0, false
	}
	spent := now.Sub(p.firstSent)
	if spent <= 0 {
		return 0, false
	}
	remaining := max(p.instances-done, 0)
	return time.Duration(float64(spent) / float64(done) * float64(remaining)), true
}

func (r *Reporter) printf(format string, args ...any) {
	fmt.Fprintf(r.w, "progress: "+format+"\n", args...)
}

func dur(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	if d >= time.Minute {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return d.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// clean keeps a name on its line: names come from policy files, which
// validate them, but a line break or a workflow command must never ride
// along into the log.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
