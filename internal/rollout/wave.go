package rollout

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

// chunkState follows one SendCommand of a wave.
type chunkState struct {
	req      result.Command
	ids      []string
	id       string // command id once sent or found
	sentAt   time.Time
	terminal bool
	errors   int
	last     ssmtypes.Command // as last polled
	unknown  string           // set when it cannot be told whether the command was sent
}

// allSucceeded reports whether SSM's counts prove that every invocation
// of a finished command succeeded: StatusDetails Success alone does not
// (undeliverable invocations do not count against it), so every target
// must be completed with no error and no delivery timeout.
func allSucceeded(c ssmtypes.Command, instances int) bool {
	return c.Status == ssmtypes.CommandStatusSuccess && aws.ToString(c.StatusDetails) == "Success" &&
		int(c.TargetCount) == instances && int(c.CompletedCount) == instances &&
		c.ErrorCount == 0 && c.DeliveryTimedOutCount == 0
}

// concurrencyPlan maps the phase's MaxConcurrency onto chunks of at most 50
// instances. A percentage holds per chunk, so it holds for the wave. An
// absolute N is kept as a total: each chunk runs min(N, 50) at once and
// only as many chunks run together as keep the sum at or under N.
func concurrencyPlan(maxConcurrency string, chunks int) (perChunk string, inflight int) {
	if maxConcurrency == "" {
		maxConcurrency = "10%"
	}
	if strings.HasSuffix(maxConcurrency, "%") {
		return maxConcurrency, chunks
	}
	n, err := strconv.Atoi(maxConcurrency)
	if err != nil || n < 1 {
		return "1", 1
	}
	per := min(n, maxInstanceIDs)
	return strconv.Itoa(per), max(1, n/per)
}

// countOf reads an SSM limit ("N", or "N%" of size rounded down, as SSM
// reads MaxConcurrency and MaxErrors); empty or malformed is 0.
func countOf(limit string, size int) int {
	if p, ok := strings.CutSuffix(limit, "%"); ok {
		v, _ := strconv.Atoi(p)
		return size * v / 100
	}
	n, _ := strconv.Atoi(limit)
	return n
}

// errorLimit is how many errors the wave tolerates before it stops, from
// MaxErrors ("N" or "N%" of the wave): SSM stops a command once its errors
// exceed MaxErrors, and patchgate applies the same rule across the chunks.
func errorLimit(maxErrors string, size int) int { return countOf(maxErrors, size) }

func (t *target) runWave(ctx context.Context, ph *policy.Phase, phaseIndex, waveNo int, w waveSpec) result.Wave {
	e := t.e
	p := t.pol
	now := e.opt.Clock.Now()
	rw := result.Wave{Index: waveNo, Share: w.share, StartedAt: now, Status: result.StatusRunning}
	defer func() { rw.EndedAt = e.opt.Clock.Now() }()
	byID := make(map[string]Instance, len(w.instances))
	for _, in := range w.instances {
		byID[in.ID] = in
	}
	reboot := p.Spec.Install.RebootOption
	if reboot == "" {
		reboot = "RebootIfNeeded"
	}
	params := map[string][]string{"Operation": {"Install"}, "SnapshotId": {e.snapshot()}, "RebootOption": {reboot}}
	timeout := int32(p.Spec.Install.DeliveryTimeout.Duration / time.Second)
	if timeout <= 0 {
		timeout = 600
	}
	chunkIDs := Chunks(sortedIDs(w.instances))
	perChunk, inflightMax := concurrencyPlan(ph.MaxConcurrency, len(chunkIDs))
	maxErrors := ph.MaxErrors
	if maxErrors == "" {
		maxErrors = "0"
	}
	limit := errorLimit(maxErrors, len(w.instances))
	chunks := make([]*chunkState, len(chunkIDs))
	for i, ids := range chunkIDs {
		chunks[i] = &chunkState{ids: ids, req: result.Command{
			Comment: Comment(e.opt.RunID, p.Metadata.Name, ph.Name, waveNo, i+1), Instances: len(ids),
			MaxConcurrency: perChunk, MaxErrors: maxErrors, TimeoutSeconds: timeout, Document: DocumentName, Parameters: params,
		}}
	}

	if e.opt.DryRun {
		for _, c := range chunks {
			rw.Commands = append(rw.Commands, c.req)
		}
		for _, in := range w.instances {
			rw.Instances = append(rw.Instances, result.Instance{ID: in.ID, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomePending})
			rw.Counts.Add(result.OutcomePending)
		}
		rw.Status = result.StatusDryRun
		return rw
	}

	snd := t.sender()

	deadline := now.Add(p.Spec.Install.ExecutionTimeout.Duration)
	if p.Spec.Install.ExecutionTimeout.Duration <= 0 {
		deadline = now.Add(2 * time.Hour)
	}
	since := now.Add(-time.Minute)
	next := 0 // next chunk to send
	stopped := ""
	var timedOut, cancelled bool
	pace := pacer{min: e.opt.PollMin, max: e.opt.PollMax, typical: t.typical}
	var slept time.Duration
	timed := false // one attempt a wave to time the invocations
	for {
		// Send while the in-flight budget allows.
		running := 0
		for _, c := range chunks[:next] {
			if !c.terminal {
				running++
			}
		}
		for stopped == "" && next < len(chunks) && running < inflightMax && ctx.Err() == nil {
			c := chunks[next]
			if prev, ok := t.earlier[c.req.Comment]; ok {
				c.id, c.req.Resumed = aws.ToString(prev.CommandId), true
				c.sentAt = aws.ToTime(prev.RequestedDateTime)
				rw.Resumed = true
				t.log.Info("resuming a command sent by an earlier attempt of this run", "comment", c.req.Comment, "command", c.id)
			} else {
				in := &ssm.SendCommandInput{
					DocumentName: aws.String(DocumentName), InstanceIds: c.ids, Parameters: params, Comment: aws.String(c.req.Comment),
					MaxConcurrency: aws.String(perChunk), MaxErrors: aws.String(maxErrors), TimeoutSeconds: aws.Int32(timeout),
				}
				sr, err := t.sendChunk(ctx, snd, in)
				id := sr.id
				if err != nil {
					if ctx.Err() != nil {
						if id != "" {
							// Sent just as the run was cancelled: track it so it is cancelled too.
							c.id, c.sentAt, c.req.Sent, c.req.CommandID = id, e.opt.Clock.Now(), true, id
							t.track(id, true)
							next++
						}
						break
					}
					stopped = err.Error()
					rw.Status = result.StatusError
					break
				}
				if sr.unknown != "" {
					// Maybe sent: never again, and nothing after it.
					c.unknown, c.terminal, c.req.Unknown = sr.unknown, true, true
					c.req.Status = "unknown: may have run" // not "not sent", which it may not be
					stopped = "an earlier command of the wave may have run unseen"
					next++
					break
				}
				c.id, c.sentAt = id, e.opt.Clock.Now()
				c.req.Reconciled, c.req.Resent, c.req.ResentAfterSeconds = sr.reconciled, sr.resent, sr.resentAfter.Seconds()
			}
			c.req.Sent = true
			c.req.CommandID = c.id
			c.req.ConsoleURL = ConsoleURL(t.region, c.id)
			if c.sentAt.Before(since) {
				since = c.sentAt.Add(-time.Minute)
			}
			t.track(c.id, true)
			next++
			running++
		}
		if ctx.Err() != nil {
			cancelled = true
			break
		}

		var pending []string
		for _, c := range chunks[:next] {
			if !c.terminal {
				pending = append(pending, c.id)
			}
		}
		if len(pending) == 0 && (next == len(chunks) || stopped != "") {
			break
		}
		if len(pending) > 0 {
			states, err := commandStates(ctx, t.c.Commands, pending, since)
			if err != nil && ctx.Err() == nil {
				t.log.Warn("polling failed; will retry", "err", err)
			}
			errorsSoFar := 0
			for _, c := range chunks[:next] {
				if st, ok := states[c.id]; ok {
					c.last = st
					c.req.Status = string(st.Status)
					c.errors = int(st.ErrorCount)
					if CommandTerminal(string(st.Status)) {
						c.terminal = true
						t.track(c.id, false)
					}
				}
				errorsSoFar += c.errors
			}
			if pace.typical == 0 && !timed {
				pace.typical, timed = t.measureTypical(ctx, chunks[:next])
			}
			if stopped == "" && errorsSoFar > limit && next < len(chunks) {
				stopped = fmt.Sprintf("maxErrors %s reached (%d errors): the remaining %d commands of the wave were not sent", maxErrors, errorsSoFar, len(chunks)-next)
			}
			if errorsSoFar > limit {
				// Like SSM, stop what is still running once errors exceed the limit.
				var running []string
				for _, c := range chunks[:next] {
					if !c.terminal {
						running = append(running, c.id)
					}
				}
				if len(running) > 0 && len(chunks) > 1 {
					_ = cancel(t.c.Commands, running, e.opt.CancelTimeout)
				}
			}
		}
		if e.opt.Clock.Now().After(deadline) {
			timedOut = true
			var running []string
			for _, c := range chunks[:next] {
				if !c.terminal {
					running = append(running, c.id)
				}
			}
			for _, err := range cancel(t.c.Commands, running, e.opt.CancelTimeout) {
				t.log.Error("cancel at the execution deadline failed", "err", err)
			}
			break
		}
		if next == len(chunks) && allTerminal(chunks) {
			continue // done: the loop ends without another sleep
		}
		progress := make([]chunkProgress, 0, next)
		for _, c := range chunks[:next] {
			progress = append(progress, chunkProgress{sent: c.sentAt, perRound: perRound(perChunk, len(c.ids)),
				completed: int(c.last.CompletedCount), terminal: c.terminal})
		}
		slept = pace.next(e.opt.Clock.Now(), progress, slept, deadline)
		if err := e.opt.Clock.Sleep(ctx, slept); err != nil {
			cancelled = true
			break
		}
	}
	t.typical = pace.typical

	if cancelled {
		t.cancelInflight()
	}
	for _, c := range chunks {
		rw.Commands = append(rw.Commands, c.req)
	}
	// Outcomes may come from a command's counts only when the phase's
	// compliance check will read every instance's patch state.
	corroborated := t.c.Verifier != nil && ph.Verify.ComplianceEnabled()
	// Collect outcomes. After a cancellation there is no time to read every
	// invocation (the run must stop within seconds): in-flight instances are
	// reported cancelled, with the command to look at.
	for i, c := range chunks {
		if c.unknown != "" {
			for _, id := range c.ids {
				in := byID[id]
				rw.Instances = append(rw.Instances, result.Instance{ID: id, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeInconclusive, Error: c.unknown})
			}
			continue
		}
		if c.id == "" {
			why := "not sent: " + stopped
			if stopped == "" {
				why = "not sent: the run was cancelled"
			}
			for _, id := range c.ids {
				in := byID[id]
				rw.Instances = append(rw.Instances, result.Instance{ID: id, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeCancelled, Error: why})
			}
			continue
		}
		if cancelled {
			for _, id := range c.ids {
				in := byID[id]
				rw.Instances = append(rw.Instances, result.Instance{ID: id, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeCancelled,
					Error: fmt.Sprintf("run cancelled while command %s was in flight; its final state is in the SSM console", c.id)})
			}
			continue
		}
		if corroborated && !timedOut && allSucceeded(c.last, len(c.ids)) {
			// Listing the invocations would say Success fifty times a
			// call; the compliance check reads each instance's patch
			// state anyway and fails any that did not install now.
			rw.Commands[i].FromCounts = true
			for _, id := range c.ids {
				in := byID[id]
				rw.Instances = append(rw.Instances, result.Instance{ID: id, Name: in.Name, Platform: in.Platform,
					Outcome: result.OutcomeSucceeded, SSMStatus: "Success", StatusDetails: "Success"})
			}
			continue
		}
		invs, err := invocations(ctx, t.c.Commands, c.id)
		got := map[string]bool{}
		if err == nil {
			for _, inv := range invs {
				r := invocationResult(inv)
				in, ok := byID[r.ID]
				if !ok {
					continue // not ours
				}
				if r.Name == "" {
					r.Name = in.Name
				}
				r.Platform = in.Platform
				if timedOut && (r.Outcome == result.OutcomeInconclusive || r.Outcome == result.OutcomeCancelled) {
					r.Outcome, r.Error = result.OutcomeTimedOut, fmt.Sprintf("still running at patchgate's execution deadline (%s); cancelled", p.Spec.Install.ExecutionTimeout.Duration)
				}
				got[r.ID] = true
				rw.Instances = append(rw.Instances, r)
			}
		}
		for _, id := range c.ids {
			if got[id] {
				continue
			}
			in := byID[id]
			msg := fmt.Sprintf("no invocation reported by command %s", c.id)
			if err != nil {
				msg = fmt.Sprintf("could not read command %s's invocations: %v", c.id, err)
			}
			rw.Instances = append(rw.Instances, result.Instance{ID: id, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeInconclusive, Error: msg})
		}
	}
	for _, in := range rw.Instances {
		rw.Counts.Add(in.Outcome)
	}
	if len(chunks) > 0 {
		rw.CommandID = chunks[0].id
		rw.Comment = chunks[0].req.Comment
		rw.ConsoleURL = chunks[0].req.ConsoleURL
	}
	switch {
	case cancelled:
		rw.Status = result.StatusCancelled
	case rw.Status == result.StatusError:
	case unknownSend(chunks):
		rw.Status = result.StatusInconclusive
	case stopped != "" || timedOut || !meets(rw.Counts, threshold(ph.SuccessThreshold)):
		rw.Status = result.StatusFailed
	case rw.Counts.Inconclusive > 0:
		rw.Status = result.StatusInconclusive
	default:
		rw.Status = result.StatusPassed
	}
	return rw
}

func allTerminal(chunks []*chunkState) bool {
	for _, c := range chunks {
		if !c.terminal {
			return false
		}
	}
	return true
}

// measureTypical times the successful invocations of the first chunk that
// has some: the pacer's rounds are made of it. It reports whether it read
// (once a wave at most); a failed read only leaves the pacer backing off.
func (t *target) measureTypical(ctx context.Context, chunks []*chunkState) (time.Duration, bool) {
	for _, c := range chunks {
		if c.last.CompletedCount-c.last.ErrorCount-c.last.DeliveryTimedOutCount <= 0 {
			continue
		}
		d, err := measureTypical(ctx, t.c.Commands, c.id)
		if err != nil {
			t.log.Warn("could not time the first invocations; polls back off instead", "command", c.id, "err", err)
		}
		if d > 0 {
			t.log.Info("an invocation takes about "+d.Round(time.Second).String()+"; polls follow its rounds", "command", c.id)
		}
		return d, true
	}
	return 0, false
}

func (t *target) track(id string, on bool) {
	t.inflightMu.Lock()
	defer t.inflightMu.Unlock()
	if on {
		t.inflight[id] = true
	} else {
		delete(t.inflight, id)
	}
}

// cancelInflight cancels every command this target still has running.
func (t *target) cancelInflight() {
	t.inflightMu.Lock()
	ids := make([]string, 0, len(t.inflight))
	for id := range t.inflight {
		ids = append(ids, id)
	}
	t.inflight = map[string]bool{}
	t.inflightMu.Unlock()
	for _, err := range cancel(t.c.Commands, ids, t.e.opt.CancelTimeout) {
		t.log.Error("cancelling after interruption failed", "err", err)
	}
}
