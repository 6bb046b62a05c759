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
	"github.com/patchgate/patchgate/internal/hooks"
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
	// seen and seenAt: the completions the pacer has been told of, and
	// when they were last counted.
	seen   int
	seenAt time.Time
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

// waveRun is one wave on its way: its commands, sent chunk by chunk within
// the in-flight budget, polled to the end, then its outcomes collected and
// judged by the gate.
type waveRun struct {
	t      *target
	st     *policy.Stage
	spec   waveSpec
	byID   map[string]Instance
	chunks []*chunkState
	// perChunk and inflight: MaxConcurrency as each command gets it, and
	// how many commands may run at once.
	perChunk string
	inflight int
	params   map[string][]string
	timeout  int32
	snd      *sender
	doc      string // the patch document: AWS-RunPatchBaseline, or its hooks variant

	res result.Wave
	gw  gate.Wave

	deadline  time.Time
	since     time.Time // ListCommands' InvokedAfter for this wave's polls
	next      int       // next chunk to send
	stopped   string    // why the rest of the wave is not sent; "" while it is
	timedOut  bool
	cancelled bool
	pace      pacer
	timed     bool          // one attempt a wave to time the invocations
	trail     []remainingAt // the wave's running count at each poll, for the pacer
}

// runWave sends one wave, follows it to the end and collects its
// outcomes. The second result is what the gate needs of its sending.
func (t *target) runWave(ctx context.Context, st *policy.Stage, waveNo int, w waveSpec) (res result.Wave, gw gate.Wave) {
	r := t.newWaveRun(st, waveNo, w)
	t.peers.mark(t, w.left, r.res.StartedAt, false)
	// res is named so that the deferred EndedAt reaches the caller.
	defer func() {
		res.EndedAt = t.e.opt.Clock.Now()
		t.waveDone(w.left, res.StartedAt, res.EndedAt)
	}()
	if t.e.opt.DryRun {
		r.planned()
		return r.res, r.gw
	}
	r.follow(ctx)
	t.typical = r.pace.typical
	if r.cancelled {
		t.cancelInflight()
	}
	r.collect(ctx)
	r.judge()
	return r.res, r.gw
}

func (t *target) newWaveRun(st *policy.Stage, waveNo int, w waveSpec) *waveRun {
	e, p := t.e, t.plan
	now := e.opt.Clock.Now()
	r := &waveRun{t: t, st: st, spec: w, byID: make(map[string]Instance, len(w.instances)),
		res:      result.Wave{Index: waveNo, Share: w.share, StartedAt: now, Status: result.StatusRunning},
		gw:       gate.Wave{Index: waveNo, MaxErrors: st.MaxErrors.String(), ErrorLimit: st.ErrorLimit(len(w.instances))},
		params:   map[string][]string{"Operation": {"Install"}, "SnapshotId": {e.snapshot()}, "RebootOption": {p.RebootOption}},
		timeout:  int32(p.DeliveryTimeout / time.Second),
		deadline: now.Add(p.ExecutionTimeout), since: now.Add(-time.Minute),
		pace: pacer{min: e.opt.PollMin, max: e.opt.PollMax, scale: e.opt.PollScale, typical: t.typical},
	}
	for _, in := range w.instances {
		r.byID[in.ID] = in
	}
	r.doc = hooks.DocumentFor(p.Hooks)
	for k, v := range hooks.Parameters(p.Hooks) {
		r.params[k] = v
	}
	for k, v := range t.override {
		r.params[k] = v
	}
	// Instances held back by a failed backup are the wave's too, and
	// count against its threshold.
	r.res.Instances = append(r.res.Instances, t.held...)
	t.held = nil
	chunkIDs := Chunks(sortedIDs(w.instances))
	r.perChunk, r.inflight = concurrencyPlan(st.MaxConcurrency, len(chunkIDs))
	for i, ids := range chunkIDs {
		r.chunks = append(r.chunks, &chunkState{ids: ids, req: result.Command{
			Comment: Comment(e.opt.RunID, p.Policy, st.Name, waveNo, i+1), Instances: len(ids),
			MaxConcurrency: r.perChunk, MaxErrors: r.gw.MaxErrors, TimeoutSeconds: r.timeout, Document: r.doc, Parameters: r.params,
		}})
	}
	r.snd = t.sender()
	if t.seen == nil {
		t.seen = &completions{}
	}
	r.pace.seen = t.seen
	return r
}

// planned is a dry run's wave: the commands that would be sent.
func (r *waveRun) planned() {
	for _, c := range r.chunks {
		r.res.Commands = append(r.res.Commands, c.req)
	}
	for _, in := range r.spec.instances {
		r.res.Instances = append(r.res.Instances, result.Instance{ID: in.ID, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomePending})
		r.res.Counts.Add(result.OutcomePending)
	}
	r.res.Status = result.StatusDryRun
}

// follow sends and polls until every command sent is done, the wave is
// stopped, the execution deadline passes or the run is cancelled.
func (r *waveRun) follow(ctx context.Context) {
	clk := r.t.e.opt.Clock
	var slept time.Duration
	for {
		r.sendDue(ctx)
		if ctx.Err() != nil {
			r.cancelled = true
			return
		}
		pending := r.unfinished()
		if len(pending) == 0 && (r.next == len(r.chunks) || r.stopped != "") {
			return
		}
		// Commands just sent have nothing to show yet (and may not be
		// listed yet): the first look waits for the pacer.
		if len(pending) > 0 && !r.allFresh(clk.Now()) && !r.poll(ctx, pending) {
			return
		}
		if clk.Now().After(r.deadline) {
			r.timedOut = true
			for _, err := range cancel(r.t.c.Commands, r.unfinished(), r.t.e.opt.CancelTimeout) {
				r.t.log.Error("cancel at the execution deadline failed", "err", err)
			}
			return
		}
		if r.next == len(r.chunks) && allTerminal(r.chunks) {
			continue // done: the loop ends without another sleep
		}
		progress := r.observe(clk.Now())
		waiting := r.stopped == "" && r.next < len(r.chunks)
		r.pace.rarity, r.pace.lead = r.standing(clk.Now())
		r.pace.alert = r.nearLimit()
		slept = r.pace.next(clk.Now(), progress, r.trail, waiting, slept, r.deadline)
		if err := clk.Sleep(ctx, slept); err != nil {
			r.cancelled = true
			return
		}
	}
}

// observe tells the pacer what the last poll showed: each chunk's
// progress, the completions since the poll before (into the policy's
// record, spread over the interval in which they came) and the wave's
// running count.
func (r *waveRun) observe(now time.Time) []chunkProgress {
	progress := make([]chunkProgress, 0, r.next)
	running := 0
	for _, c := range r.chunks[:r.next] {
		done := int(c.last.CompletedCount)
		if c.seenAt.IsZero() {
			c.seenAt = c.sentAt
		}
		if r.pace.seen != nil && done > c.seen {
			r.pace.seen.addOver(now, r.t.peerKey(), c.seenAt.Sub(c.sentAt), now.Sub(c.sentAt), done-c.seen)
		}
		c.seen, c.seenAt = max(c.seen, done), now
		if !c.terminal {
			running += max(len(c.ids)-done, 0)
		}
		progress = append(progress, chunkProgress{sent: c.sentAt, perRound: perRound(r.st.MaxConcurrency, len(c.ids)),
			total: len(c.ids), completed: done, terminal: c.terminal})
	}
	r.trail = append(r.trail, remainingAt{at: now, remaining: running})
	return progress
}

// waveDone tells the phase's account-regions that a wave with left more
// after it, sent at started, ended at ended: this one is at the next (or
// its gate, -1) now.
func (t *target) waveDone(left int, started, ended time.Time) {
	t.peers.mark(t, left-1, ended, false)
	if !t.e.opt.DryRun {
		t.peers.waveEnded(ended, ended.Sub(started))
	}
}

// slack is how much later than now this account-region's gate may end at
// no cost: half the lead of the account-region expected to end the phase
// after it (Scope.Slack).
func (t *target) slack() time.Duration {
	return t.peers.lead(t, t.e.opt.Clock.Now()) / 2
}

// lastChance is the chance that this account-region ends the phase last
// (Scope.LastChance), at least 1/maxRarity: the chance is a model's.
func (t *target) lastChance() float64 {
	return max(t.peers.lastChance(t, t.e.opt.Clock.Now()), 1/maxRarity)
}

// peerKey names the account-region among the policy's (the order in
// which what they record at one instant is folded).
func (t *target) peerKey() string {
	if t.c == nil {
		return t.region
	}
	return t.c.AccountID + "/" + t.region
}

// standing is what the pacer needs of the wave's place in the run: 1
// over the chance that this account-region ends the phase last, and how
// much later than its own the phase's end (or, for its last wave, the
// wait for Inspector's rescans) is expected.
func (r *waveRun) standing(now time.Time) (rarity float64, lead time.Duration) {
	v := r.t.peers.view(r.t, now)
	lead = v.lead()
	if r.spec.left == 0 && r.st.Inspector.Enabled && r.t.c.Verifier != nil {
		// The rescans come an inventory pass after the patches, half of
		// one on average after the last: a look that comes that much
		// later (half of it, see pacer.slack) is hidden by the wait.
		lead = max(lead, rescanHidden)
	}
	return 1 / max(v.lastChance(), 1/maxRarity), lead
}

// maxRarity bounds how much rarer a look is for the chance that another
// account-region ends the phase last: the chance is a model's, and past a
// point the one that ends last would be seen minutes late.
const maxRarity = 16.0

// rescanHidden is how long, on average, the Inspector rescan of a phase's
// last patch comes after it: SSM inventory passes every 30 minutes.
const rescanHidden = 15 * time.Minute

// freshFor is how long after its send a command has nothing to show: SSM
// may not even list it yet.
const freshFor = 30 * time.Second

// allFresh reports whether every running command was sent within
// freshFor of now.
func (r *waveRun) allFresh(now time.Time) bool {
	for _, c := range r.chunks[:r.next] {
		if !c.terminal && now.Sub(c.sentAt) >= freshFor {
			return false
		}
	}
	return true
}

// errors is how many invocations of the wave's sent commands failed, as
// last polled.
func (r *waveRun) errors() int {
	errs := 0
	for _, c := range r.chunks[:r.next] {
		errs += c.errors
	}
	return errs
}

// nearLimit reports whether the wave's errors have reached half its
// MaxErrors limit (a limit of 0 always is): its polls then come at least
// every PollMax, however far its end.
func (r *waveRun) nearLimit() bool { return 2*r.errors() >= r.gw.ErrorLimit }

// unfinished are the ids of the commands sent and not yet terminal.
func (r *waveRun) unfinished() []string {
	var ids []string
	for _, c := range r.chunks[:r.next] {
		if !c.terminal {
			ids = append(ids, c.id)
		}
	}
	return ids
}

// sendDue sends the next chunks while the in-flight budget allows.
func (r *waveRun) sendDue(ctx context.Context) {
	t, e := r.t, r.t.e
	running := len(r.unfinished())
	for r.stopped == "" && r.next < len(r.chunks) && running < r.inflight && ctx.Err() == nil {
		c := r.chunks[r.next]
		if prev, ok := t.earlier[c.req.Comment]; ok {
			c.id, c.req.Resumed = aws.ToString(prev.CommandId), true
			c.sentAt = aws.ToTime(prev.RequestedDateTime)
			r.res.Resumed = true
			t.log.Info("resuming a command sent by an earlier attempt of this run", "comment", c.req.Comment, "command", c.id)
		} else {
			in := &ssm.SendCommandInput{
				DocumentName: aws.String(r.doc), InstanceIds: c.ids, Parameters: r.params, Comment: aws.String(c.req.Comment),
				MaxConcurrency: aws.String(r.perChunk), MaxErrors: aws.String(r.gw.MaxErrors), TimeoutSeconds: aws.Int32(r.timeout),
			}
			sr, err := t.sendChunk(ctx, r.snd, in)
			id := sr.id
			if err != nil {
				if ctx.Err() != nil {
					if id != "" {
						// Sent just as the run was cancelled: track it so it is cancelled too.
						c.id, c.sentAt, c.req.Sent, c.req.CommandID = id, e.opt.Clock.Now(), true, id
						t.track(id, true)
						r.next++
					}
					return
				}
				r.stopped = err.Error()
				r.gw.Failure = &gate.Failure{Code: apiErrorCode(err, "send"), Message: err.Error()}
				return
			}
			if sr.unknown != "" {
				// Maybe sent: never again, and nothing after it.
				c.unknown, c.terminal, c.req.Unknown = sr.unknown, true, true
				c.req.Status = "unknown: may have run" // not "not sent", which it may not be
				r.stopped = "an earlier command of the wave may have run unseen"
				r.next++
				return
			}
			c.id, c.sentAt = id, e.opt.Clock.Now()
			c.req.Reconciled, c.req.Resent, c.req.ResentAfterSeconds = sr.reconciled, sr.resent, sr.resentAfter.Seconds()
		}
		c.req.Sent = true
		c.req.CommandID = c.id
		e.opt.Progress.Sent(t.key, len(c.ids))
		c.req.ConsoleURL = ConsoleURL(t.region, c.id)
		if c.sentAt.Before(r.since) {
			r.since = c.sentAt.Add(-time.Minute)
		}
		t.track(c.id, true)
		r.next++
		running++
	}
}

// poll reads the state of the pending commands and applies maxErrors
// across them. It reports false when the wave cannot be followed further.
func (r *waveRun) poll(ctx context.Context, pending []string) bool {
	t := r.t
	states, err := commandStates(ctx, t.c.Commands, r.doc, pending, r.since, r.next)
	if err != nil && ctx.Err() == nil {
		if denied(err) {
			// Retrying cannot help; the commands keep running, so they
			// are cancelled like at the deadline.
			r.gw.Failure = &gate.Failure{Code: "aws-access-denied", Message: err.Error() + "; grant the role ssm:ListCommands"}
			r.stopped = "polling was denied"
			for _, err := range cancel(t.c.Commands, pending, t.e.opt.CancelTimeout) {
				t.log.Error("cancelling after a denied poll failed", "err", err)
			}
			return false
		}
		t.log.Warn("polling failed; will retry", "err", err)
	}
	for _, c := range r.chunks[:r.next] {
		if st, ok := states[c.id]; ok {
			c.last = st
			c.req.Status = string(st.Status)
			c.errors = int(st.ErrorCount)
			if CommandTerminal(string(st.Status)) {
				c.terminal = true
				t.track(c.id, false)
			}
		}
	}
	errorsSoFar := r.errors()
	ok, failed, inFlight := t.doneOK, t.doneFailed, 0
	for _, c := range r.chunks[:r.next] {
		done := int(c.last.CompletedCount)
		bad := int(c.last.ErrorCount + c.last.DeliveryTimedOutCount)
		ok += max(done-bad, 0)
		failed += bad
		inFlight += max(len(c.ids)-done, 0)
	}
	t.e.opt.Progress.Polled(t.key, ok, failed, inFlight)
	if h := r.st.Health; h != nil && h.During == policy.HealthDuringWaves && t.healthBase != nil {
		// verify.health during: waves watches while the commands run: an
		// alarm stops what is running at once (the phase then fails on it).
		if breach, err := t.healthAfter(ctx, r.st, t.healthBase, fmt.Sprintf("during %s wave %d", r.st.Name, r.res.Index)); err == nil && breach != nil {
			r.stopped = "a health alarm: " + breach.Message
			for _, err := range cancel(t.c.Commands, r.unfinished(), t.e.opt.CancelTimeout) {
				t.log.Error("cancelling after a health alarm failed", "err", err)
			}
			return false
		}
	}
	if r.pace.typical == 0 && !r.timed {
		r.pace.typical, r.timed = t.measureTypical(ctx, r.chunks[:r.next])
	}
	if errorsSoFar > r.gw.ErrorLimit {
		if r.stopped == "" && r.next < len(r.chunks) {
			r.stopped = fmt.Sprintf("maxErrors %s reached (%d errors): the remaining %d commands of the wave were not sent", r.gw.MaxErrors, errorsSoFar, len(r.chunks)-r.next)
		}
		// Like SSM, stop what is still running once errors exceed the limit.
		if running := r.unfinished(); len(running) > 0 && len(r.chunks) > 1 {
			_ = cancel(t.c.Commands, running, t.e.opt.CancelTimeout)
		}
	}
	return true
}

// collect reads each command's outcomes. After a cancellation there is no
// time to read every invocation (the run must stop within seconds):
// in-flight instances are reported cancelled, with the command to look at.
func (r *waveRun) collect(ctx context.Context) {
	t := r.t
	for _, c := range r.chunks {
		r.res.Commands = append(r.res.Commands, c.req)
	}
	// Outcomes may come from a command's counts only when the phase's
	// compliance check will read every instance's patch state.
	corroborated := t.c.Verifier != nil && r.st.Compliance
	add := func(ids []string, fill func(id string, in Instance) result.Instance) {
		for _, id := range ids {
			r.res.Instances = append(r.res.Instances, fill(id, r.byID[id]))
		}
	}
	for i, c := range r.chunks {
		switch {
		case c.unknown != "":
			add(c.ids, func(id string, in Instance) result.Instance {
				return result.Instance{ID: id, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeInconclusive, Error: c.unknown}
			})
		case c.id == "":
			why := "not sent: " + r.stopped
			if r.stopped == "" {
				why = "not sent: the run was cancelled"
			}
			add(c.ids, func(id string, in Instance) result.Instance {
				return result.Instance{ID: id, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeCancelled, Error: why}
			})
		case r.cancelled:
			add(c.ids, func(id string, in Instance) result.Instance {
				return result.Instance{ID: id, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeCancelled,
					Error: fmt.Sprintf("run cancelled while command %s was in flight; its final state is in the SSM console", c.id)}
			})
		case corroborated && !r.timedOut && allSucceeded(c.last, len(c.ids)):
			// Listing the invocations would say Success fifty times a
			// call; the compliance check reads each instance's patch
			// state anyway and fails any that did not install now.
			r.res.Commands[i].FromCounts = true
			add(c.ids, func(id string, in Instance) result.Instance {
				return result.Instance{ID: id, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeSucceeded, SSMStatus: "Success", StatusDetails: "Success"}
			})
		default:
			r.listInvocations(ctx, c)
		}
	}
}

// listInvocations reads one command's invocations; an instance it does not
// report is inconclusive, never a success.
func (r *waveRun) listInvocations(ctx context.Context, c *chunkState) {
	invs, err := invocations(ctx, r.t.c.Commands, c.id)
	got := map[string]bool{}
	if err == nil {
		for _, inv := range invs {
			ri := invocationResult(inv)
			if ri.Outcome == result.OutcomeFailed && r.t.plan.Hooks.Set() {
				// A failed hook fails the instance, and says which.
				var plugins []hooks.Plugin
				for _, pl := range inv.CommandPlugins {
					plugins = append(plugins, hooks.Plugin{Name: aws.ToString(pl.Name), Status: string(pl.Status), Output: aws.ToString(pl.Output)})
				}
				if reason, ok := hooks.FailureReason(r.t.plan.Hooks, plugins, ri.Error); ok {
					ri.Error = reason
				}
			}
			in, ok := r.byID[ri.ID]
			if !ok {
				continue // not ours
			}
			if ri.Name == "" {
				ri.Name = in.Name
			}
			ri.Platform = in.Platform
			if r.timedOut && (ri.Outcome == result.OutcomeInconclusive || ri.Outcome == result.OutcomeCancelled) {
				ri.Outcome, ri.Error = result.OutcomeTimedOut, fmt.Sprintf("still running at patchgate's execution deadline (%s); cancelled", r.t.plan.ExecutionTimeoutText)
			}
			got[ri.ID] = true
			r.res.Instances = append(r.res.Instances, ri)
		}
	}
	for _, id := range c.ids {
		if got[id] {
			continue
		}
		in := r.byID[id]
		msg := fmt.Sprintf("no invocation reported by command %s", c.id)
		if err != nil {
			msg = fmt.Sprintf("could not read command %s's invocations: %v", c.id, err)
		}
		r.res.Instances = append(r.res.Instances, result.Instance{ID: id, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeInconclusive, Error: msg})
	}
}

// judge counts the outcomes and lets the gate decide the wave on its
// sending alone.
func (r *waveRun) judge() {
	errorsSeen, failedSeen := 0, 0
	for _, c := range r.chunks {
		errorsSeen += c.errors
		if c.unknown != "" {
			r.gw.Unknown = append(r.gw.Unknown, c.ids...)
		}
	}
	var inconclusive []string
	for _, in := range r.res.Instances {
		r.res.Counts.Add(in.Outcome)
		switch {
		case in.Outcome == result.OutcomeFailed:
			failedSeen++
		case in.Outcome == result.OutcomeInconclusive:
			inconclusive = append(inconclusive, in.ID)
		case in.Outcome == result.OutcomeCancelled && strings.HasPrefix(in.Error, "not sent"):
			r.gw.Unsent++
		}
	}
	// SSM's ErrorCount (failed and execution-timed-out invocations) and
	// the failures listed: whichever saw more.
	r.gw.Errors = max(errorsSeen, failedSeen)
	if len(r.chunks) > 0 {
		r.res.CommandID = r.chunks[0].id
		r.res.Comment = r.chunks[0].req.Comment
		r.res.ConsoleURL = r.chunks[0].req.ConsoleURL
	}
	r.res.Status, _ = gate.Decide(gate.Evidence{Cancelled: r.cancelled, Counts: r.res.Counts, Inconclusive: inconclusive, Waves: []gate.Wave{r.gw}},
		gate.Settings{Threshold: r.st.SuccessThreshold})
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
// has some: until earlier waves have shown when invocations complete, the
// pacer expects a wave's first completions that long after its send. It
// reports whether it read (once a wave at most); a failed read only leaves
// the pacer backing off.
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
			t.log.Info("an invocation takes about "+d.Round(time.Second).String()+"; polls expect the first completions then", "command", c.id)
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
