package progress

import (
	"sync"
	"time"

	"github.com/patchgate/patchgate/internal/result"
)

// Observer feeds a Reporter from snapshots of the run (the engine's
// OnProgress, after each wave) until the engine sends the events itself:
// a phase seen for the first time starts, sent waves are counted, and a
// phase with an end time ends. Totals come from what the snapshot shows.
type Observer struct {
	R *Reporter
	// Phases are each policy's phases in order: a running target's next
	// phase is then known to be in flight before its snapshot shows it
	// (the engine adds a phase to the run when it ends).
	Phases map[string][]Phase

	mu   sync.Mutex
	seen map[Key]*observed
}

// Phase is one phase of a policy as the observer needs it.
type Phase struct {
	Name string
	Soak time.Duration // waited after it passes, before the next phase
}

type observed struct {
	sent  int
	ended bool
}

// Observe reads one snapshot. The engine holds the run's lock while it
// calls OnProgress, so r is consistent for the length of the call.
func (o *Observer) Observe(r *result.Run) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen = map[Key]*observed{}
	}
	for _, p := range r.Policies {
		for _, t := range p.Targets {
			for _, ph := range t.Phases {
				if ph.StartedAt.IsZero() && ph.Status != result.StatusHalted {
					continue
				}
				k := Key{Policy: p.Name, Phase: ph.Name, Account: t.AccountID, Region: t.Region}
				s := o.seen[k]
				if s == nil {
					// Met ended: its final line says it all.
					s = &observed{}
					o.seen[k] = s
					o.R.begin(k, 0, 0, ph.StartedAt, false)
				}
				if s.ended {
					continue
				}
				sent, succeeded, failed := 0, 0, 0
				for _, w := range ph.Waves {
					for _, c := range w.Commands {
						if c.Sent || c.Resumed {
							sent += c.Instances
						}
					}
					succeeded += w.Counts.Succeeded
					failed += w.Counts.Failed + w.Counts.TimedOut
				}
				if sent > s.sent {
					o.R.Sent(k, sent-s.sent)
					s.sent = sent
				}
				o.R.Polled(k, succeeded, failed, max(sent-succeeded-failed, 0))
				if !ph.EndedAt.IsZero() || ph.Status == result.StatusHalted {
					s.ended = true
					o.R.PhaseEndedAt(k, string(ph.Status), HeldBack(ph), ph.EndedAt)
				}
			}
			// The phase after the last one shown is in flight, if that one
			// passed (a phase that did not pass halts the ones after it).
			// Not before its account is known (a target without one is
			// being connected) nor during the soak before it.
			phases := o.Phases[p.Name]
			n := len(t.Phases)
			if t.Status != result.StatusRunning || t.AccountID == "" || n >= len(phases) || (n > 0 && t.Phases[n-1].Status != result.StatusPassed) {
				continue
			}
			start := t.StartedAt
			if n > 0 {
				start = t.Phases[n-1].EndedAt.Add(phases[n-1].Soak)
			}
			k := Key{Policy: p.Name, Phase: phases[n].Name, Account: t.AccountID, Region: t.Region}
			if o.seen[k] == nil && !o.R.clk.Now().Before(start) {
				o.seen[k] = &observed{}
				// The phase's own start is not in the snapshot: its lines
				// count from the target's, and say so.
				o.R.begin(k, 0, 0, t.StartedAt, true)
			}
		}
	}
}

// HeldBack is how many of a phase's instances were never sent: those of
// its halted waves (a wave over its limits stops the ones after it, and a
// preflight refusal stops them all).
func HeldBack(ph result.Phase) int {
	n := 0
	for _, w := range ph.Waves {
		if w.Status == result.StatusHalted {
			n += w.Counts.Targeted
		}
	}
	return n
}
