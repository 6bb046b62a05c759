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
	"github.com/patchgate/patchgate/internal/lock"
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
		limit: e.sendLimits.get(t.c.AccountID, t.region, rateOf, burst)}
}

// sendChunk records the intent to send in Parameter Store, then sends.
// The intent is not deleted after each send: the next send overwrites it,
// and the target clears it when it ends (clearIntent), one call instead of
// one per chunk. An intent whose command is known costs a later run one
// lookup by Comment; one whose command is not known (crash, cancellation,
// an unknown outcome) is reconciled by the next run before it sends
// anything (reconcileIntent).
func (t *target) sendChunk(ctx context.Context, snd *sender, in *ssm.SendCommandInput, phase string, wave, chunk int) (sendResult, error) {
	intent := lock.Intent{RunID: t.e.opt.RunID, Policy: t.pol.Metadata.Name, Phase: phase, Wave: wave, Chunk: chunk,
		Comment: aws.ToString(in.Comment), InstanceIDs: in.InstanceIds, At: t.e.opt.Clock.Now().UTC()}
	t.intentSettled = false
	if err := t.putIntent(ctx, intent); err != nil {
		// Without the record a crash could leave a command nobody looks
		// for, so nothing is sent.
		t.intentSettled = true
		return sendResult{}, fmt.Errorf("not sent: %w", err)
	}
	t.intentPut = true
	res, err := snd.send(ctx, in)
	if testHookSent != nil {
		testHookSent(res)
	}
	// Settled when the command is known, or known not to have been sent.
	t.intentSettled = res.id != "" || (err != nil && ctx.Err() == nil)
	return res, err
}

// putIntent writes the intent, retrying throttling and server errors on
// the run's clock (PutParameter with Overwrite is idempotent), so the wait
// counts against the wave's time the way every other wait of the wave does.
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

// clearIntent deletes the target's intent when every send it made is
// settled; an unsettled one stays for the next run to reconcile. It runs
// on its own deadline so that a cancelled run still clears it.
func (t *target) clearIntent() {
	if !t.intentPut || !t.intentSettled {
		return
	}
	ctx, done := context.WithTimeout(context.Background(), t.e.opt.CancelTimeout)
	defer done()
	if err := lock.ClearIntent(ctx, t.c.Params, t.pol.Metadata.Name); err != nil {
		// Harmless but for time: the next run finds the command by its
		// Comment when it reconciles the intent.
		t.log.Warn("could not clear the send intent", "err", err)
	}
}

// reconcileIntent settles an intent an earlier run left open, before this
// run sends anything: the command it announced is looked for as after an
// ambiguous send. Found and of this run id, it joins earlier, so the wave
// adopts it instead of sending it again. Proven absent, the intent is
// cleared. If it cannot be told, the target must not patch.
func (t *target) reconcileIntent(ctx context.Context, earlier map[string]ssmtypes.Command) error {
	policy := t.pol.Metadata.Name
	in, err := lock.ReadIntent(ctx, t.c.Params, policy)
	if err != nil || in == nil {
		return err
	}
	log := t.log.With("comment", in.Comment, "intentRun", in.RunID)
	cmd, ok := earlier[in.Comment]
	if !ok {
		log.Warn("an earlier run left a send open; looking for its command before sending anything", "instances", len(in.InstanceIDs))
		snd := t.sender()
		found, absent, rerr := snd.reconcile(ctx, in.Comment, in.InstanceIDs, in.At)
		switch {
		case found != nil:
			cmd, ok = *found, true
		case ctx.Err() != nil:
			return ctx.Err()
		case !absent:
			return &unknownIntentError{intent: *in, err: rerr, window: snd.windowOr()}
		}
	}
	if ok {
		if in.RunID == t.e.opt.RunID {
			earlier[in.Comment] = cmd
			log.Info("the open send's command exists; resuming it", "command", aws.ToString(cmd.CommandId))
		} else {
			// Another run's command: it runs its course in SSM whatever
			// this run does; the instances it reached are patched anew by
			// this run's own commands.
			log.Warn("the open send of another run reached SSM", "command", aws.ToString(cmd.CommandId))
		}
	} else {
		log.Info("no trace of the open send after the reconcile window: it never ran")
	}
	return lock.ClearIntent(ctx, t.c.Params, policy)
}

// unknownIntentError says an open intent could not be reconciled.
type unknownIntentError struct {
	intent lock.Intent
	err    error
	window time.Duration
}

func (e *unknownIntentError) Error() string {
	return fmt.Sprintf("run %s left a SendCommand %q open, and patchgate could not tell within %s whether it ran (%v); nothing was sent: "+
		"check instances %s in the SSM console (Run Command history), then delete parameter %s and run again",
		e.intent.RunID, e.intent.Comment, e.window, e.err, strings.Join(e.intent.InstanceIDs, ", "), lock.IntentName(e.intent.Policy))
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
