package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/clock"
)

// DefaultReconcileWindow is how long patchgate looks for a command whose
// SendCommand may have run before it concludes that it did not.
// ListCommands and ListCommandInvocations are eventually consistent: a
// command just sent can be missing from them for seconds, at times for a
// minute or more. Three minutes is longer than any listing delay AWS
// documents or that we have seen, and short beside a patch wave; a
// shorter window trades duplicate patching for speed, which patchgate
// never does by default.
const DefaultReconcileWindow = 3 * time.Minute

// reconcileSkew allows for the clock of the machine running patchgate and
// SSM's disagreeing: InvokedAfter filters start this much before the send.
const reconcileSkew = time.Minute

// sendAttempts bounds SendCommand calls for one chunk: throttling answers
// and proven-absent resends each cost one.
const sendAttempts = 10

// sendKind is how a SendCommand error bears on whether the command exists.
type sendKind int

const (
	// notSent: AWS refused it or it never left (throttling, a refused
	// connection): sending again cannot duplicate it.
	notSent sendKind = iota
	// rejected: AWS refused it for a reason another attempt will not fix.
	rejected
	// maybeSent: a transport error, a timeout, a 5xx, or a 2xx that could
	// not be read. The command may exist; only a lookup can tell.
	maybeSent
)

// classifySend reads a failed SendCommand by error type, never by text.
func classifySend(err error) sendKind {
	switch {
	case awsapi.Throttled(err), awsapi.Unreachable(err):
		return notSent
	case awsapi.CutShort(err):
		return maybeSent
	case awsapi.Rejected(err):
		return rejected
	}
	// Refused by the SDK's own checks before anything was sent.
	var ip *smithy.InvalidParamsError
	var se *smithy.SerializationError
	if errors.As(err, &ip) || errors.As(err, &se) {
		return rejected
	}
	// Everything else (5xx, connection reset or closed mid-response,
	// deadline exceeded, an error type we do not know) may have run.
	return maybeSent
}

// sendResult is what became of one chunk's SendCommand.
type sendResult struct {
	id string
	// reconciled: a send was ambiguous and the command was then found.
	reconciled bool
	// resent: a send was ambiguous, no trace of it appeared within the
	// reconcile window, and it was sent again after resentAfter.
	resent      bool
	resentAfter time.Duration
	// unknown, when set, says why patchgate cannot tell whether the
	// command exists: it must not send it again, nor anything after it.
	unknown string
}

// sender sends a chunk's command exactly once, even when a response is
// lost: after an ambiguous failure it reconciles before anything else.
type sender struct {
	ssm    Commands
	clock  clock.Clock
	log    *slog.Logger
	window time.Duration // reconcile window; DefaultReconcileWindow if 0
	limit  *sendLimit    // client-side rate limit of the account-region; may be nil
	doc    string        // the patch document the commands run
}

// send sends in and reports the command id, or why it cannot be known.
// An error means the command was not sent (or, with a cancelled ctx, that
// it may have been: a found id is returned with ctx.Err()).
func (s *sender) send(ctx context.Context, in *ssm.SendCommandInput) (sendResult, error) {
	var res sendResult
	var firstAmbiguous time.Time
	var lastErr error
	comment := aws.ToString(in.Comment)
	for attempt := 1; attempt <= sendAttempts; attempt++ {
		if err := s.limit.wait(ctx, s.clock); err != nil {
			return res, err
		}
		start := s.clock.Now()
		out, err := s.ssm.SendCommand(ctx, in, noRetry)
		if err == nil && out != nil && out.Command != nil && aws.ToString(out.Command.CommandId) != "" {
			res.id = aws.ToString(out.Command.CommandId)
			return res, nil
		}
		if err == nil {
			err = errors.New("SendCommand answered without a command id")
		}
		lastErr = err
		if ctx.Err() != nil {
			// Cancelled mid-send: the command may exist. One look on a
			// detached, short context so the caller can cancel it; the
			// intent stays open for a later run if it is not seen yet.
			lctx, done := context.WithTimeout(context.Background(), 2*time.Second)
			defer done()
			found := map[string]ssmtypes.Command{}
			_ = s.lookAll(lctx, []pendingSend{{comment: comment, ids: in.InstanceIds}}, 0, start.Add(-reconcileSkew), found)
			if cmd, ok := found[comment]; ok {
				res.id = aws.ToString(cmd.CommandId)
			}
			return res, ctx.Err()
		}
		switch classifySend(err) {
		case rejected:
			return res, fmt.Errorf("ssm:SendCommand %q: %w", comment, err)
		case notSent:
			s.log.Warn("SendCommand was not accepted; sending again", "comment", comment, "attempt", attempt, "err", err)
			if awsapi.Unreachable(err) && attempt >= 3 {
				return res, fmt.Errorf("ssm:SendCommand %q: %w", comment, awsapi.DescribeUnreachable("ssm:SendCommand", err))
			}
			if err := s.clock.Sleep(ctx, backoff(attempt, time.Second, 20*time.Second)); err != nil {
				return res, err
			}
			continue
		}
		// maybeSent: reconcile before anything else.
		if firstAmbiguous.IsZero() {
			firstAmbiguous = start
		}
		s.log.Warn("SendCommand may have run without patchgate seeing its answer; looking for it before anything else",
			"comment", comment, "err", err, "window", s.windowOr())
		cmd, absent, rerr := s.reconcile(ctx, comment, in.InstanceIds, start)
		switch {
		case cmd != nil:
			res.id, res.reconciled = aws.ToString(cmd.CommandId), true
			s.log.Info("found the command of an ambiguous SendCommand; tracking it", "comment", comment, "command", res.id)
			return res, nil
		case ctx.Err() != nil:
			return res, ctx.Err()
		case !absent:
			res.unknown = fmt.Sprintf("ssm:SendCommand %q may have run (%v), and patchgate could not tell within %s whether it did (%v); "+
				"check instances %s in the SSM console (Run Command history) before patching them again",
				comment, err, s.windowOr(), rerr, strings.Join(in.InstanceIds, ", "))
			return res, nil
		}
		// No trace after the whole window: it did not run. Send again.
		res.resent, res.resentAfter = true, s.clock.Now().Sub(firstAmbiguous)
		s.log.Warn("no trace of the ambiguous SendCommand after the reconcile window; sending it again",
			"comment", comment, "after", res.resentAfter.Round(time.Second))
	}
	return res, fmt.Errorf("ssm:SendCommand %q failed %d times: %w", comment, sendAttempts, lastErr)
}

func (s *sender) windowOr() time.Duration {
	if s.window > 0 {
		return s.window
	}
	return DefaultReconcileWindow
}

// pendingSend is a SendCommand that may have run: its Comment and, when
// known, its instances.
type pendingSend struct {
	comment string
	ids     []string
}

// reconcile looks for the command of a send made at sentAt (reconcileAll
// for one send).
func (s *sender) reconcile(ctx context.Context, comment string, ids []string, sentAt time.Time) (*ssmtypes.Command, bool, error) {
	found, absent, err := s.reconcileAll(ctx, []pendingSend{{comment: comment, ids: ids}}, sentAt)
	if c, ok := found[comment]; ok {
		return &c, false, nil
	}
	return nil, absent, err
}

// reconcileAll looks for the commands of sends made at or after sentAt,
// by Comment and by the invocations of their instances, backing off, until
// each is found or the window has passed. absent is true only when a look
// made after the window found none of the rest: that is the proof of
// absence a resend needs. When no look after the window succeeds either,
// it gives up after a second window with absent false and the last lookup
// error.
func (s *sender) reconcileAll(ctx context.Context, pend []pendingSend, sentAt time.Time) (map[string]ssmtypes.Command, bool, error) {
	window := s.windowOr()
	since := sentAt.Add(-reconcileSkew)
	found := map[string]ssmtypes.Command{}
	var lastErr error
	for look := 0; ; look++ {
		err := s.lookAll(ctx, pend, look, since, found)
		left := pend[:0:0]
		for _, p := range pend {
			if _, ok := found[p.comment]; !ok {
				left = append(left, p)
			}
		}
		pend = left
		if len(pend) == 0 {
			return found, false, nil
		}
		if ctx.Err() != nil {
			return found, false, ctx.Err()
		}
		elapsed := s.clock.Now().Sub(sentAt)
		if err != nil {
			lastErr = err
			s.log.Warn("looking for ambiguous commands failed; will look again", "first", pend[0].comment, "err", err)
		} else if elapsed >= window {
			return found, true, nil
		}
		if elapsed >= 2*window {
			return found, false, lastErr
		}
		// 2 s, 4 s, ... up to 30 s apart, never past the window's end by
		// much: the deciding look comes soon after it.
		d := min(backoffFixed(look, 2*time.Second, 30*time.Second), max(window-elapsed, time.Second))
		if err := s.clock.Sleep(ctx, d); err != nil {
			return found, false, err
		}
	}
}

// backoffFixed is base doubling per step, capped, without jitter: the
// reconcile looks must reach the window's end deterministically.
func backoffFixed(step int, base, capd time.Duration) time.Duration {
	d := base << min(step, 16)
	if d > capd || d <= 0 {
		return capd
	}
	return d
}

// lookAll looks once for the pending sends' commands, adding those it
// sees to found: one listing of the commands sent since `since` whose
// Comment starts as theirs all do, then the invocations of one instance
// (a different one each look), which SSM lists separately.
func (s *sender) lookAll(ctx context.Context, pend []pendingSend, look int, since time.Time, found map[string]ssmtypes.Command) error {
	prefix := pend[0].comment
	want := make(map[string]bool, len(pend))
	for _, p := range pend {
		want[p.comment] = true
		for !strings.HasPrefix(p.comment, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	listed, err := listRunCommands(ctx, s.ssm, s.doc, since, prefix)
	if err != nil {
		return err
	}
	for c, cmd := range listed {
		if want[c] {
			found[c] = cmd
		}
	}
	var ids []string
	for _, p := range pend {
		if _, ok := found[p.comment]; !ok && len(p.ids) > 0 {
			ids = p.ids
			break
		}
	}
	if len(ids) == 0 {
		return nil
	}
	id := ids[look%len(ids)]
	p := ssm.NewListCommandInvocationsPaginator(s.ssm, &ssm.ListCommandInvocationsInput{
		InstanceId: aws.String(id), MaxResults: aws.Int32(50), Filters: patchCommandsSince(s.doc, since),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing the invocations of %s with ssm:ListCommandInvocations: %w", id, err)
		}
		for _, inv := range page.CommandInvocations {
			c := aws.ToString(inv.Comment)
			if _, seen := found[c]; !want[c] || seen {
				continue
			}
			// The command itself carries the parameters (the run's
			// SnapshotId); SSM may not list it by id yet, and the
			// invocation alone is enough to track it.
			if out, err := s.ssm.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: inv.CommandId}); err == nil && len(out.Commands) == 1 {
				found[c] = out.Commands[0]
			} else {
				found[c] = ssmtypes.Command{CommandId: inv.CommandId, Comment: inv.Comment, DocumentName: inv.DocumentName,
					RequestedDateTime: inv.RequestedDateTime}
			}
		}
	}
	return nil
}
