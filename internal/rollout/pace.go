package rollout

import (
	"context"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/policy"
)

// pacer spaces a wave's polls. A poll costs one ListCommands page per 50
// commands whatever the wave's size, so polls, not instances, are what a
// run spends per account-region; a poll that comes late costs the time
// until the next wave starts. SSM runs a chunk's invocations
// MaxConcurrency at a time, so with the time one invocation takes
// (measured in this target) completions come in rounds: the pacer sleeps
// until the next round is due and follows up closely when it is late.
// Until that time is known it backs off geometrically.
type pacer struct {
	min, max time.Duration
	typical  time.Duration // one invocation, as measured in this target; 0 unknown
}

// chunkProgress is what the pacer needs of one sent command.
type chunkProgress struct {
	sent      time.Time
	perRound  int // invocations SSM runs at once
	completed int
	terminal  bool
}

// perRound is how many of n instances SSM runs at once under
// MaxConcurrency ("N" or "N%", as SSM reads it: a share rounded down, at
// least one).
func perRound(mc policy.Percent, n int) int {
	return max(1, min(mc.Of(n), n))
}

// next is how long to sleep before polling again. last is the previous
// sleep (0 before the first poll), and deadline bounds every sleep. With
// the pace known there is no early look: SSM stops a chunk at its own
// MaxErrors, and what patchgate adds (stopping the other chunks) matters
// before their next round, which is when the pacer looks.
func (p pacer) next(now time.Time, chunks []chunkProgress, last time.Duration, deadline time.Time) time.Duration {
	d := p.sleep(now, chunks, last)
	if left := deadline.Sub(now); left < d {
		d = max(left, p.min)
	}
	return d
}

func (p pacer) sleep(now time.Time, chunks []chunkProgress, last time.Duration) time.Duration {
	if p.typical <= 0 {
		// Unknown pace: a first look soon after sending (a fleet with
		// nothing to install finishes in a minute), then less and less often.
		return min(max(last*2, p.min), p.max)
	}
	// When the next round of any running chunk is due. Until the wave has
	// shown completions, polls stay at most max apart in case it runs
	// faster than the earlier waves did; after, up to a round apart.
	limit := p.max
	var due time.Time
	for _, c := range chunks {
		if c.completed > 0 {
			limit = max(p.max, p.typical)
		}
		if c.terminal {
			continue
		}
		rounds := c.completed/c.perRound + 1
		at := c.sent.Add(time.Duration(rounds) * p.typical)
		if due.IsZero() || at.Before(due) {
			due = at
		}
	}
	if due.IsZero() {
		return p.min
	}
	if late := now.Sub(due); late >= 0 {
		// Due and not yet seen: look again soon, then less and less often.
		return min(max(late, p.min), p.max)
	}
	// A moment after it is due, so that the poll sees it.
	return min(due.Sub(now)+p.min, limit)
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
