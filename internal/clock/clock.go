// Package clock lets long waits (polls, soaks, execution deadlines) run on
// a scaled clock in tests and the demo, so that a 40-minute patch against the
// simulator takes milliseconds while the code under test still reasons in
// real durations.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// Sleep waits for d (clock time) or until ctx is done, returning ctx.Err() then.
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the wall clock.
type Real struct{}

func (Real) Now() time.Time { return time.Now() }

func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Scaled runs Factor times faster than the wall clock, starting at Start:
// Now() = Start + Factor * (wall time since creation). Two Scaled clocks made
// with the same Start and Factor agree, so the simulator and the engine see
// the same time.
type Scaled struct {
	start  time.Time
	origin time.Time
	factor float64
	mu     sync.Mutex
}

// NewScaled returns a clock that reads start now and runs factor times faster.
func NewScaled(start time.Time, factor float64) *Scaled {
	if factor <= 0 {
		factor = 1
	}
	return &Scaled{start: start, origin: time.Now(), factor: factor}
}

func (s *Scaled) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start.Add(time.Duration(float64(time.Since(s.origin)) * s.factor))
}

func (s *Scaled) Sleep(ctx context.Context, d time.Duration) error {
	return Real{}.Sleep(ctx, time.Duration(float64(d)/s.factor))
}

// Advance moves the clock d ahead at once: days passing between two runs
// of a demo.
func (s *Scaled) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start = s.start.Add(d)
}

// Factor is how many clock seconds pass per wall second.
func (s *Scaled) Factor() float64 { return s.factor }
