package awsapi

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Bounds of the gap paced puts between a client's attempts.
const (
	paceMin = 50 * time.Millisecond
	paceMax = 2 * time.Second
)

// paced spaces a client's attempts once AWS has throttled one of them: a
// loop of reads (patch states 50 ids a call, inventory, coverage pages)
// otherwise goes at the speed of the network, meets the account's rate
// limit every few calls and spends a retry on each. After a
// ThrottlingException the gap between attempts doubles (from paceMin to
// paceMax); each attempt that is not throttled shortens it by a
// sixty-fourth, until it is gone: it settles just under the limit, and
// after a storm at paceMax costs about 64 x 2 s in all. A client that is
// never throttled is never slowed.
// (The SDK's adaptive retry mode does the same, but its wait for a token
// did not end inside a testing/synctest bubble; this one sleeps on a timer.)
type paced struct {
	aws.RetryerV2

	mu   sync.Mutex
	gap  time.Duration
	next time.Time // when the next attempt may go
}

func (p *paced) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	p.mu.Lock()
	now := time.Now()
	at := now
	if p.gap > 0 && p.next.After(now) {
		at = p.next
	}
	p.next = at.Add(p.gap)
	p.mu.Unlock()
	if wait := at.Sub(now); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	release, err := p.RetryerV2.GetAttemptToken(ctx)
	if err != nil {
		return nil, err
	}
	return func(err error) error {
		p.mu.Lock()
		switch {
		case Throttled(err):
			p.gap = min(max(2*p.gap, paceMin), paceMax)
		case p.gap > 0:
			p.gap -= p.gap / 64
			if p.gap < paceMin/4 {
				p.gap = 0
			}
		}
		p.mu.Unlock()
		return release(err)
	}, nil
}
