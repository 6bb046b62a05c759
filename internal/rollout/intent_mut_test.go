package rollout

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/lock"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

// Tests of the send intent (intent.go) that mutation testing showed
// unchecked: how often its write is retried, when a send leaves it open
// and when it is deleted.

// scriptedParams is a ParameterStore whose PutParameter answers are
// scripted; it counts every call.
type scriptedParams struct {
	clk              *clock.Step
	put              func(n int) error
	puts, deletes    int
	putTimes         []time.Time
	deleted, written []string
	deleteErr        error
}

func (p *scriptedParams) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	p.puts++
	if p.puts > maxScriptedCalls {
		panic("more than 1000 PutParameter calls: the intent's retry loop does not end")
	}
	p.putTimes = append(p.putTimes, p.clk.Now())
	if err := p.put(p.puts); err != nil {
		return nil, err
	}
	p.written = append(p.written, *in.Name)
	return &ssm.PutParameterOutput{}, nil
}

func (p *scriptedParams) GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return nil, errors.New("not scripted")
}

func (p *scriptedParams) DeleteParameter(_ context.Context, in *ssm.DeleteParameterInput, _ ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error) {
	p.deletes++
	p.deleted = append(p.deleted, *in.Name)
	if p.deleteErr != nil {
		return nil, p.deleteErr
	}
	return &ssm.DeleteParameterOutput{}, nil
}

// intentTarget is a target with only what the intent code uses.
func intentTarget(put func(n int) error, dryRun bool) (*target, *scriptedParams) {
	clk := clock.NewStep(mutStart)
	ps := &scriptedParams{clk: clk, put: put}
	pol := &policy.Policy{}
	pol.Metadata.Name = "web"
	t := &target{e: New(Options{RunID: "7", Clock: clk, DryRun: dryRun, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}),
		pol: pol, c: &Clients{Params: ps}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return t, ps
}

// The intent's write is retried like a SendCommand: throttling and server
// faults up to sendAttempts times, a refused connection three times, a
// rejection not at all, each retry after a backoff; nothing is retried on
// a cancelled run.
func TestPutIntentAttemptsByCause(t *testing.T) {
	for _, tc := range []struct {
		name    string
		put     func(n int) error
		cancel  bool
		puts    int
		wantErr bool
	}{
		{"accepted", func(int) error { return nil }, false, 1, false},
		{"throttled every time", func(int) error { return errThrottled }, false, sendAttempts, true},
		{"throttled until the last attempt", func(n int) error {
			if n < sendAttempts {
				return errThrottled
			}
			return nil
		}, false, sendAttempts, false},
		{"server fault every time", func(int) error { return errAmbiguous }, false, sendAttempts, true},
		{"connection refused", func(int) error { return errRefused }, false, 3, true},
		{"connection refused twice", func(n int) error {
			if n < 3 {
				return errRefused
			}
			return nil
		}, false, 3, false},
		{"rejected", func(int) error { return errRejected }, false, 1, true},
		{"cancelled", func(int) error { return errThrottled }, true, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, ps := intentTarget(tc.put, false)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			err := tg.putIntent(ctx, lock.Intent{RunID: "7", Policy: "web", Phase: "staging", Wave: 1, Chunks: 1})
			if (err != nil) != tc.wantErr {
				t.Errorf("err %v, want an error: %v", err, tc.wantErr)
			}
			if ps.puts != tc.puts {
				t.Errorf("%d PutParameter calls, want %d", ps.puts, tc.puts)
			}
			for i := 1; i < len(ps.putTimes); i++ {
				if d := ps.putTimes[i].Sub(ps.putTimes[i-1]); d <= 0 || d > 20*time.Second {
					t.Errorf("retry %d after %s, want a backoff in (0, 20s]", i, d)
				}
			}
		})
	}
}

// A wave that cannot record its intent is not sent, and says why; a dry
// run writes nothing.
func TestAnnounceWave(t *testing.T) {
	w := waveSpec{instances: []Instance{{ID: "i-2"}, {ID: "i-1"}}}
	ph := &policy.Phase{Name: "staging"}

	tg, ps := intentTarget(func(int) error { return nil }, true)
	if err := tg.announceWave(context.Background(), ph, 1, w); err != nil || ps.puts != 0 || tg.intentPut {
		t.Errorf("dry run: err %v, %d writes, intentPut %v; want nothing written", err, ps.puts, tg.intentPut)
	}

	tg, ps = intentTarget(func(int) error { return nil }, false)
	if err := tg.announceWave(context.Background(), ph, 3, w); err != nil || ps.puts != 1 || !tg.intentPut {
		t.Errorf("err %v, %d writes, intentPut %v; want one write", err, ps.puts, tg.intentPut)
	}
	if len(ps.written) != 1 || ps.written[0] != lock.IntentName("web") {
		t.Errorf("written %v, want %s", ps.written, lock.IntentName("web"))
	}

	tg, _ = intentTarget(func(int) error { return errRejected }, false)
	err := tg.announceWave(context.Background(), ph, 3, w)
	if err == nil || !strings.HasPrefix(err.Error(), "wave 3 not sent: ") || tg.intentPut {
		t.Errorf("err %v, intentPut %v; want the wave not sent", err, tg.intentPut)
	}
	if s, code, msg := announceFailure(context.Background(), err); s != result.StatusError || code != "send-intent" || msg != err.Error() {
		t.Errorf("announceFailure: %s %s %q", s, code, msg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s, code, _ := announceFailure(ctx, err); s != result.StatusCancelled || code != "cancelled" {
		t.Errorf("announceFailure when cancelled: %s %s", s, code)
	}
}

// A send leaves the intent open (unsettled) when its command may exist
// unseen: no id and no error (unknown), or no id on a cancelled run. A
// send that got its id, or that SSM refused, is settled.
func TestSendChunkSettles(t *testing.T) {
	for _, tc := range []struct {
		name      string
		send      func(n int) (*ssm.SendCommandOutput, error)
		list      bool // listings fail (an ambiguous send cannot be looked for)
		cancel    bool
		unsettled bool
	}{
		{"accepted", func(int) (*ssm.SendCommandOutput, error) { return sentOK("c-1") }, false, false, false},
		{"rejected", func(int) (*ssm.SendCommandOutput, error) { return nil, errRejected }, false, false, false},
		{"unknown", func(int) (*ssm.SendCommandOutput, error) { return nil, errAmbiguous }, true, false, true},
		{"cancelled before an id", func(int) (*ssm.SendCommandOutput, error) { return sentOK("c-1") }, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, snd := newScripted(tc.send)
			if tc.list {
				f.list = func(*ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error) { return nil, errListing }
				f.invs = func(*ssm.ListCommandInvocationsInput) (*ssm.ListCommandInvocationsOutput, error) {
					return nil, errListing
				}
			}
			tg, _ := intentTarget(func(int) error { return nil }, false)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			_, _ = tg.sendChunk(ctx, snd, sendIn())
			if tg.unsettled != tc.unsettled {
				t.Errorf("unsettled %v, want %v", tg.unsettled, tc.unsettled)
			}
		})
	}
}

// The intent is deleted at the end only when one was written and every
// send was settled; otherwise it stays for the next run to reconcile. A
// delete that fails is logged, one that works is not.
func TestClearIntent(t *testing.T) {
	for _, tc := range []struct {
		put, unsettled bool
		deleteErr      error
		deletes        int
		warned         bool
	}{{false, false, nil, 0, false}, {true, true, nil, 0, false}, {false, true, nil, 0, false}, {true, false, nil, 1, false},
		{true, false, errRejected, 1, true}} {
		tg, ps := intentTarget(func(int) error { return nil }, false)
		var logs strings.Builder
		tg.log = slog.New(slog.NewTextHandler(&logs, nil))
		ps.deleteErr = tc.deleteErr
		tg.intentPut, tg.unsettled = tc.put, tc.unsettled
		tg.clearIntent()
		if ps.deletes != tc.deletes || (tc.deletes == 1 && ps.deleted[0] != lock.IntentName("web")) {
			t.Errorf("written %v unsettled %v: deleted %v, want %d deletes", tc.put, tc.unsettled, ps.deleted, tc.deletes)
		}
		if got := strings.Contains(logs.String(), "could not clear the send intent"); got != tc.warned {
			t.Errorf("delete error %v: warned %v, want %v: %s", tc.deleteErr, got, tc.warned, logs.String())
		}
	}
}
