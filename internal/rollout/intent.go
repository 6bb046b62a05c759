package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/hooks"
	"github.com/patchgate/patchgate/internal/lock"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

// testHookSent runs after a SendCommand returned and before its intent is
// cleared: the crash test stops the process there.
var testHookSent func(sendResult)

// sender returns the target's sender: its account-region's rate limit and
// the run's reconcile window, on the run's clock.
func (t *target) sender() *sender {
	e := t.e
	rateOf := e.opt.SendRate
	if rateOf == 0 {
		rateOf = DefaultSendRate
	}
	burst := e.opt.SendBurst
	if burst <= 0 {
		burst = DefaultSendBurst
	}
	return &sender{ssm: t.c.Commands, clock: e.opt.Clock, log: t.log, window: e.opt.ReconcileWindow,
		limit: e.sendLimits.get(t.c.AccountID, t.region, rateOf, burst), doc: hooks.DocumentFor(t.plan.Hooks)}
}

// announceWave records the intent to send a wave in Parameter Store before
// the wave starts: one write a wave, made before the wave's clock starts
// (its execution deadline), that the next send overwrites. The target
// deletes it when it ends with every send settled (clearIntent). An intent
// left open (crash, cancellation, an unknown outcome) is reconciled by the
// next run before it sends anything (reconcileIntent). If it cannot be
// written the wave is not sent: without the record, a crash could leave a
// command nobody looks for.
func (t *target) announceWave(ctx context.Context, ph *policy.Phase, wave int, w waveSpec) error {
	if t.e.opt.DryRun {
		return nil
	}
	ids := sortedIDs(w.instances)
	chunks := Chunks(ids)
	in := lock.Intent{RunID: t.e.opt.RunID, Policy: t.pol.Metadata.Name, Phase: ph.Name, Wave: wave, Chunks: len(chunks),
		Digest: lock.Digest(ids), InstanceIDs: chunks, At: t.e.opt.Clock.Now().UTC()}
	if err := t.putIntent(ctx, in); err != nil {
		return fmt.Errorf("wave %d not sent: %w", wave, err)
	}
	t.intentPut = true
	return nil
}

// announceFailure is the phase's status, reason code and message when a
// wave's intent could not be written: nothing of the wave was sent.
func announceFailure(ctx context.Context, err error) (result.Status, string, string) {
	if ctx.Err() != nil {
		return result.StatusCancelled, "cancelled", "the run was cancelled before the wave was sent"
	}
	return result.StatusError, "send-intent", err.Error()
}

// putIntent writes the intent, retrying throttling and server errors on
// the run's clock (PutParameter with Overwrite is idempotent).
func (t *target) putIntent(ctx context.Context, in lock.Intent) error {
	var err error
	for attempt := 1; attempt <= sendAttempts; attempt++ {
		if err = lock.PutIntent(ctx, t.c.Params, in, noRetry); err == nil || ctx.Err() != nil {
			return err
		}
		if awsapi.Rejected(err) && !awsapi.Throttled(err) {
			return err
		}
		if awsapi.Unreachable(err) && attempt >= 3 {
			return err
		}
		if serr := t.e.opt.Clock.Sleep(ctx, backoff(attempt, time.Second, 20*time.Second)); serr != nil {
			return serr
		}
	}
	return err
}

// sendChunk sends one chunk and notes whether its outcome is settled: the
// command is known, or known not to have been sent. One unsettled send
// keeps the intent open for the next run.
func (t *target) sendChunk(ctx context.Context, snd *sender, in *ssm.SendCommandInput) (sendResult, error) {
	res, err := snd.send(ctx, in)
	if testHookSent != nil {
		testHookSent(res)
	}
	if res.id == "" && (err == nil || ctx.Err() != nil) {
		t.unsettled = true
	}
	return res, err
}

// clearIntent deletes the target's intent when every send it made is
// settled; an unsettled one stays for the next run to reconcile. It runs
// on its own deadline so that a cancelled run still clears it.
func (t *target) clearIntent() {
	if !t.intentPut || t.unsettled {
		return
	}
	ctx, done := context.WithTimeout(context.Background(), t.e.opt.CancelTimeout)
	defer done()
	if err := lock.ClearIntent(ctx, t.c.Params, t.pol.Metadata.Name); err != nil {
		// Harmless but for time: the next run reconciles the intent and
		// finds the commands by their Comments.
		t.log.Warn("could not clear the send intent", "err", err)
	}
}

// reconcileIntent settles an intent an earlier run left open, before this
// run sends anything. Every chunk of its wave that the listing of this
// run's commands (earlier) does not show is looked for, by Comment and by
// its instances' invocations, until the reconcile window has passed since
// this run started reconciling: the earlier run sent nothing after it
// stopped, so a look that late sees whatever it sent. Found commands of
// this run id join earlier, so the wave resumes them instead of sending
// them again. If SSM cannot be read, the target must not patch.
func (t *target) reconcileIntent(ctx context.Context, earlier map[string]ssmtypes.Command) error {
	policyName := t.pol.Metadata.Name
	in, err := lock.ReadIntent(ctx, t.c.Params, policyName)
	if err != nil || in == nil {
		return err
	}
	log := t.log.With("intentRun", in.RunID, "phase", in.Phase, "wave", in.Wave)
	var open []pendingSend
	for i := 1; i <= in.Chunks; i++ {
		c := Comment(in.RunID, in.Policy, in.Phase, in.Wave, i)
		if _, ok := earlier[c]; ok {
			continue
		}
		p := pendingSend{comment: c}
		if i <= len(in.InstanceIDs) {
			p.ids = in.InstanceIDs[i-1]
		}
		open = append(open, p)
	}
	if len(open) > 0 {
		log.Warn("an earlier run left a wave's sends open; looking for their commands before sending anything", "chunks", len(open))
		snd := t.sender()
		found, absent, rerr := snd.reconcileAll(ctx, open, t.e.opt.Clock.Now())
		for c, cmd := range found {
			if in.RunID == t.e.opt.RunID {
				earlier[c] = cmd
				log.Info("an open send's command exists; resuming it", "comment", c, "command", aws.ToString(cmd.CommandId))
			} else {
				// Another run's command: it runs its course in SSM
				// whatever this run does.
				log.Warn("an open send of another run reached SSM", "comment", c, "command", aws.ToString(cmd.CommandId))
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(found) < len(open) && !absent {
			var unknown []string
			for _, p := range open {
				if _, ok := found[p.comment]; !ok {
					unknown = append(unknown, fmt.Sprintf("%q (instances %s)", p.comment, strings.Join(p.ids, ", ")))
				}
			}
			return &unknownIntentError{intent: *in, what: unknown, err: rerr, window: snd.windowOr()}
		}
	}
	return lock.ClearIntent(ctx, t.c.Params, policyName)
}

// unknownIntentError says an open intent could not be reconciled.
type unknownIntentError struct {
	intent lock.Intent
	what   []string
	err    error
	window time.Duration
}

func (e *unknownIntentError) Error() string {
	return fmt.Sprintf("run %s left sends of %s wave %d open, and patchgate could not tell within %s whether they ran (%v): %s; nothing was sent: "+
		"check those instances in the SSM console (Run Command history), then delete parameter %s and run again",
		e.intent.RunID, e.intent.Phase, e.intent.Wave, e.window, e.err, strings.Join(e.what, "; "), lock.IntentName(e.intent.Policy))
}

// intentStatus is the target's status when an open intent cannot be
// settled: inconclusive (it may have run), or an error reading it.
func intentStatus(err error) result.Status {
	var ue *unknownIntentError
	if errors.As(err, &ue) {
		return result.StatusInconclusive
	}
	return result.StatusError
}
