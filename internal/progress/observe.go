package progress

import (
	"sync"

	"github.com/patchgate/patchgate/internal/result"
)

// Observer feeds a Reporter from snapshots of the run (the engine's
// OnProgress, after each wave) until the engine sends the events itself:
// a phase seen for the first time starts, sent waves are counted, and a
// phase with an end time ends. Totals come from what the snapshot shows.
type Observer struct {
	R *Reporter

	mu   sync.Mutex
	seen map[Key]*observed
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
					s = &observed{}
					o.seen[k] = s
					if ph.Status != result.StatusHalted || ph.Counts.Targeted > 0 {
						o.R.PhaseStartedAt(k, 0, 0, ph.StartedAt) // a snapshot shows the waves run so far, not the phase's total
					}
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
