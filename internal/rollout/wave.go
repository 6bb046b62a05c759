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

	"github.com/patchgate/patchgate/internal/gate"
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
func concurrencyPlan(mc policy.Percent, chunks int) (perChunk string, inflight int) {
	if mc.IsPercent {
		return mc.String(), chunks
	}
	n := max(mc.Value, 1)
	per := min(n, maxInstanceIDs)
	return strconv.Itoa(per), max(1, n/per)
}

// runWave sends one wave, follows it to the end and collects its
// outcomes. The second result is what the gate needs of its sending.
func (t *target) runWave(ctx context.Context, st *policy.Stage, waveNo int, w waveSpec) (result.Wave, gate.Wave) {
	e := t.e
	p := t.plan
	now := e.opt.Clock.Now()
	rw := result.Wave{Index: waveNo, Share: w.share, StartedAt: now, Status: result.StatusRunning}
	gw := gate.Wave{Index: waveNo, MaxErrors: st.MaxErrors.String(), ErrorLimit: st.ErrorLimit(len(w.instances))}
	defer func() { rw.EndedAt = e.opt.Clock.Now() }()
	byID := make(map[string]Instance, len(w.instances))
	for _, in := range w.instances {
		byID[in.ID] = in
	}
	params := map[string][]string{"Operation": {"Install"}, "SnapshotId": {e.snapshot()}, "RebootOption": {p.RebootOption}}
	timeout := int32(p.DeliveryTimeout / time.Second)
	chunkIDs := Chunks(sortedIDs(w.instances))
	perChunk, inflightMax := concurrencyPlan(st.MaxConcurrency, len(chunkIDs))
	maxErrors := st.MaxErrors.String()
	limit := gw.ErrorLimit
	chunks := make([]*chunkState, len(chunkIDs))
	for i, ids := range chunkIDs {
		chunks[i] = &chunkState{ids: ids, req: result.Command{
			Comment: Comment(e.opt.RunID, p.Policy, st.Name, waveNo, i+1), Instances: len(ids),
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
		return rw, gw
	}

	snd := &sender{ssm: t.c.Commands, clock: e.opt.Clock, lookup: func(ctx context.Context, comment string, since time.Time) (*ssmtypes.Command, error) {
		found, err := listRunCommands(ctx, t.c.Commands, since, comment)
		if err != nil {
			return nil, err
		}
		if c, ok := found[comment]; ok {
			return &c, nil
		}
		return nil, nil
	}}

	deadline := now.Add(p.ExecutionTimeout)
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
				id, err := snd.send(ctx, in)
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
					gw.Failure = &gate.Failure{Code: apiErrorCode(err, "send"), Message: err.Error()}
					break
				}
				c.id, c.sentAt = id, e.opt.Clock.Now()
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
				if denied(err) {
					// Retrying cannot help; the commands keep running,
					// so they are cancelled like at the deadline.
					gw.Failure = &gate.Failure{Code: "aws-access-denied", Message: err.Error() + "; grant the role ssm:ListCommands"}
					stopped = "polling was denied"
					for _, err := range cancel(t.c.Commands, pending, e.opt.CancelTimeout) {
						t.log.Error("cancelling after a denied poll failed", "err", err)
					}
					break
				}
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
			progress = append(progress, chunkProgress{sent: c.sentAt, perRound: perRound(st.MaxConcurrency, len(c.ids)),
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
	corroborated := t.c.Verifier != nil && st.Compliance
	// Collect outcomes. After a cancellation there is no time to read every
	// invocation (the run must stop within seconds): in-flight instances are
	// reported cancelled, with the command to look at.
	for i, c := range chunks {
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
					r.Outcome, r.Error = result.OutcomeTimedOut, fmt.Sprintf("still running at patchgate's execution deadline (%s); cancelled", p.ExecutionTimeoutText)
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
	errorsSeen := 0
	for _, c := range chunks {
		errorsSeen += c.errors
	}
	failedSeen := 0
	for _, in := range rw.Instances {
		rw.Counts.Add(in.Outcome)
		if in.Outcome == result.OutcomeFailed {
			failedSeen++
		}
		if in.Outcome == result.OutcomeCancelled && strings.HasPrefix(in.Error, "not sent") {
			gw.Unsent++
		}
	}
	// SSM's ErrorCount (failed and execution-timed-out invocations) and
	// the failures listed: whichever saw more.
	gw.Errors = max(errorsSeen, failedSeen)
	if len(chunks) > 0 {
		rw.CommandID = chunks[0].id
		rw.Comment = chunks[0].req.Comment
		rw.ConsoleURL = chunks[0].req.ConsoleURL
	}
	var inconclusive []string
	for _, in := range rw.Instances {
		if in.Outcome == result.OutcomeInconclusive {
			inconclusive = append(inconclusive, in.ID)
		}
	}
	// The wave is judged by the same gate as its phase, on its sending alone.
	rw.Status, _ = gate.Decide(gate.Evidence{Cancelled: cancelled, Counts: rw.Counts, Inconclusive: inconclusive, Waves: []gate.Wave{gw}},
		gate.Settings{Threshold: st.SuccessThreshold})
	return rw, gw
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
