package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

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
	intent           *lock.Intent // what GetParameter reads; nil: not found
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

func (p *scriptedParams) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	if p.intent == nil {
		return nil, &ssmtypes.ParameterNotFound{}
	}
	b, err := json.Marshal(p.intent)
	if err != nil {
		return nil, err
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(string(b))}}, nil
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

// reconcileTarget is a target of run 7 whose Parameter Store holds in (nil:
// no intent) and whose SSM is f.
func reconcileTarget(in *lock.Intent) (*target, *scriptedParams, *scriptedSSM) {
	tg, ps := intentTarget(func(int) error { return nil }, false)
	ps.intent = in
	f := &scriptedSSM{clk: ps.clk}
	tg.c.Commands = f
	tg.plan = &policy.Rollout{}
	return tg, ps, f
}

// An intent an earlier run left open is settled before anything is sent:
// each chunk the listing of this run's commands does not show is looked
// for, by Comment and by its own instances' invocations; a found command of
// this run joins earlier (so it is resumed, not sent again), another run's
// is not; the intent is deleted once every chunk is accounted for, and kept
// (the target inconclusive) when SSM cannot be read.
func TestReconcileIntent(t *testing.T) {
	c1, c2 := Comment("7", "web", "staging", 1, 1), Comment("7", "web", "staging", 1, 2)
	open := func(run string) *lock.Intent {
		return &lock.Intent{RunID: run, Policy: "web", Phase: "staging", Wave: 1, Chunks: 2, InstanceIDs: [][]string{{"i-1", "i-2"}, {"i-3"}}}
	}
	// SSM lists no command by prefix; instance i-3's invocations show
	// chunk 2 of run 7 as command cmd-2, which ListCommands then finds by id.
	byInvocation := func(f *scriptedSSM, comment string) {
		f.list = func(in *ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error) {
			if aws.ToString(in.CommandId) == "cmd-2" {
				return &ssm.ListCommandsOutput{Commands: []ssmtypes.Command{{CommandId: aws.String("cmd-2"), Comment: aws.String(comment)}}}, nil
			}
			return &ssm.ListCommandsOutput{}, nil
		}
		f.invs = func(in *ssm.ListCommandInvocationsInput) (*ssm.ListCommandInvocationsOutput, error) {
			if aws.ToString(in.InstanceId) != "i-3" {
				return &ssm.ListCommandInvocationsOutput{}, nil
			}
			return &ssm.ListCommandInvocationsOutput{CommandInvocations: []ssmtypes.CommandInvocation{
				{CommandId: aws.String("cmd-2"), Comment: aws.String(comment), InstanceId: aws.String("i-3")}}}, nil
		}
	}
	for _, tc := range []struct {
		name      string
		intent    *lock.Intent
		earlier   []string // comments already listed
		script    func(f *scriptedSSM)
		cancel    bool
		wantC2    string // command id earlier holds for chunk 2 after
		deletes   int
		looks     bool // SSM was read
		errStatus result.Status
	}{
		{name: "no intent"},
		{name: "every chunk already listed", intent: open("7"), earlier: []string{c1, c2}, deletes: 1},
		{name: "a chunk found by its own instance's invocation", intent: open("7"), earlier: []string{c1},
			script: func(f *scriptedSSM) { byInvocation(f, c2) }, wantC2: "cmd-2", deletes: 1, looks: true},
		{name: "another run's chunk is not resumed", intent: open("6"), earlier: []string{c1},
			script: func(f *scriptedSSM) { byInvocation(f, Comment("6", "web", "staging", 1, 2)) }, deletes: 1, looks: true},
		{name: "SSM unreadable", intent: open("7"), earlier: []string{c1},
			script: func(f *scriptedSSM) {
				f.list = func(*ssm.ListCommandsInput) (*ssm.ListCommandsOutput, error) { return nil, errListing }
			}, looks: true, errStatus: result.StatusInconclusive},
		// The fake answers a cancelled context too: one look, then the
		// cancellation is what is reported, not an unknown send.
		{name: "cancelled", intent: open("7"), earlier: []string{c1}, cancel: true, looks: true, errStatus: result.StatusError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, ps, f := reconcileTarget(tc.intent)
			if tc.script != nil {
				tc.script(f)
			}
			earlier := map[string]ssmtypes.Command{}
			for _, c := range tc.earlier {
				earlier[c] = ssmtypes.Command{CommandId: aws.String("listed-" + c), Comment: aws.String(c)}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			err := tg.reconcileIntent(ctx, earlier)
			if tc.errStatus == "" && err != nil {
				t.Fatalf("err %v", err)
			}
			if tc.errStatus != "" {
				if err == nil || intentStatus(err) != tc.errStatus {
					t.Fatalf("err %v, want one of status %s", err, tc.errStatus)
				}
				if tc.cancel && !errors.Is(err, context.Canceled) {
					t.Errorf("err %v, want the cancellation", err)
				}
				if !tc.cancel {
					for _, want := range []string{"run 7", "staging wave 1", c2, "i-3", "delete parameter " + lock.IntentName("web")} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("error %q does not say %q", err, want)
						}
					}
					if strings.Contains(err.Error(), c1+"\"") {
						t.Errorf("error %q names the chunk already listed", err)
					}
				}
			}
			if got := aws.ToString(earlier[c2].CommandId); tc.wantC2 != "" && got != tc.wantC2 {
				t.Errorf("chunk 2 resumes %q, want %q", got, tc.wantC2)
			}
			if _, ok := earlier[c2]; tc.wantC2 == "" && !slices.Contains(tc.earlier, c2) && ok {
				t.Errorf("chunk 2 must not be resumed: %+v", earlier[c2])
			}
			if ps.deletes != tc.deletes {
				t.Errorf("%d deletes of the intent, want %d", ps.deletes, tc.deletes)
			}
			if got := len(f.calls) > 0; got != tc.looks {
				t.Errorf("SSM calls %v, want some: %v", f.calls, tc.looks)
			}
		})
	}
}
