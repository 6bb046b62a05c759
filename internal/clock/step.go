package clock

import (
	"context"
	"sync"
	"time"
)

// Step is a clock that moves only when something sleeps on it: Sleep
// advances Now by d at once. Tests of polling loops share one Step with the
// simulator, so a 30-minute wait is a few polls and no wall time, and the
// outcome does not depend on the machine's speed.
type Step struct {
	mu sync.Mutex
	t  time.Time
}

// NewStep returns a Step clock reading start.
func NewStep(start time.Time) *Step { return &Step{t: start} }

func (s *Step) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t
}

// Sleep advances the clock by d, unless ctx is done.
func (s *Step) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d > 0 {
		s.t = s.t.Add(d)
	}
	return nil
}

// Advance moves the clock by d.
func (s *Step) Advance(d time.Duration) { _ = s.Sleep(context.Background(), d) }
