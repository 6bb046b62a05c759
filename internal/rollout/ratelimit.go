package rollout

import (
	"context"
	"sync"

	"golang.org/x/time/rate"

	"github.com/patchgate/patchgate/internal/clock"
)

// DefaultSendRate is the SendCommands a second patchgate makes per account
// and region, in bursts of DefaultSendBurst. SSM throttles SendCommand per
// account and region at a rate AWS does not publish; a 10,000-instance
// wave is 200 chunks, and sending them at once only buys throttling
// answers. Three a second sends 200 chunks in about a minute, which a
// 40-minute patch does not notice.
const (
	DefaultSendRate  = 3.0
	DefaultSendBurst = 5
)

// sendLimit is a token bucket read on the run's clock, so that tests on a
// scaled or fake clock see the same pacing as a real run.
type sendLimit struct{ lim *rate.Limiter }

// wait takes a token, sleeping on clk until one is free. A nil limit does
// not wait.
func (l *sendLimit) wait(ctx context.Context, clk clock.Clock) error {
	if l == nil {
		return ctx.Err()
	}
	now := clk.Now()
	r := l.lim.ReserveN(now, 1)
	if !r.OK() {
		return ctx.Err()
	}
	if err := clk.Sleep(ctx, r.DelayFrom(now)); err != nil {
		r.CancelAt(clk.Now())
		return err
	}
	return nil
}

// sendLimits hands out one sendLimit per account and region: every policy
// patching there shares SSM's limit.
type sendLimits struct {
	mu sync.Mutex
	m  map[string]*sendLimit
}

func (s *sendLimits) get(account, region string, perSecond float64, burst int) *sendLimit {
	if perSecond <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*sendLimit{}
	}
	k := account + "/" + region
	l := s.m[k]
	if l == nil {
		l = &sendLimit{lim: rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))}
		s.m[k] = l
	}
	return l
}
