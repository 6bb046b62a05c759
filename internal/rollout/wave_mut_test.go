package rollout

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/progress"
	"github.com/patchgate/patchgate/internal/result"
)

// Tests of a wave's sending that mutation testing showed unchecked. They
// run the engine against the simulator on synctest's fake clock and read
// what reached SSM (sim.Sends) and the result.

// oneWave is one phase, every instance in one wave, all in flight at once.
const oneWave = `apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: web}
spec:
  operatingSystem: AMAZON_LINUX_2023
  baseline: {approvalRules: [{classifications: [Security], approveAfterDays: 7}]}
  install: {executionTimeout: 24h}
  regions: [us-east-1]
  phases:
    - name: staging
      targets: {tags: {Environment: staging}}
      maxConcurrency: "MC"
      maxErrors: "ME"
      verify: {compliance: false}
`

func oneWavePolicy(mc, me string) string {
	return strings.NewReplacer("MC", mc, "ME", me).Replace(oneWave)
}

// SendCommands are paced per account and region: a burst of
// DefaultSendBurst, then DefaultSendRate a second, unless the options set
// their own rate and burst; a negative rate sends without pacing.
func TestSendsArePaced(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rate      float64
		burst     int
		atOnce    int           // sends at the first send's instant (within a microsecond)
		lastAfter time.Duration // the 6th send after the first
	}{
		{"defaults", 0, 0, DefaultSendBurst, time.Second / 3},
		{"a burst of 2, the default rate", 0, 2, 2, 4 * time.Second / 3},
		{"a negative burst is the default", 0, -1, DefaultSendBurst, time.Second / 3},
		{"one a second", 1, 0, DefaultSendBurst, time.Second},
		{"unpaced", -1, 0, 6, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// 300 instances: six commands of 50.
				h := newHarness(t, groups(awssim.Group{Count: 300, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
				h.opt.SendRate, h.opt.SendBurst = tc.rate, tc.burst
				r := h.run(context.Background(), mustPolicy(t, oneWavePolicy("100%", "0")))
				if r.Status != result.StatusPassed {
					t.Fatalf("%s: %s", r.Status, r.Summary)
				}
				s := h.sim.Sends()
				if len(s) != 6 {
					t.Fatalf("%d commands, want 6", len(s))
				}
				first := s[0].At
				n := 0
				for _, x := range s {
					// The simulator keeps its times distinct by a nanosecond.
					if x.At.Sub(first) < time.Microsecond {
						n++
					}
				}
				if n != tc.atOnce {
					t.Errorf("%d commands sent at once, want %d", n, tc.atOnce)
				}
				// The token bucket refills continuously: allow the
				// nanoseconds rate.Limiter rounds.
				if d := s[5].At.Sub(first); d < tc.lastAfter-time.Millisecond || d > tc.lastAfter+time.Millisecond {
					t.Errorf("the 6th command %s after the first, want %s", d, tc.lastAfter)
				}
			})
		})
	}
}

// MaxConcurrency as an absolute number is a total across a wave's commands
// of at most 50: "50" runs one command at a time, "100" two, and a
// percentage runs every command at once (each holds it on its own).
func TestCommandsInFlight(t *testing.T) {
	for _, tc := range []struct {
		mc       string
		inflight int
	}{{"50", 1}, {"100", 2}, {"149", 2}, {"150", 3}, {"100%", 3}} {
		t.Run(tc.mc, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// 150 instances: three commands of 50.
				h := newHarness(t, groups(awssim.Group{Count: 150, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
				r := h.run(context.Background(), mustPolicy(t, oneWavePolicy(tc.mc, "0")))
				if r.Status != result.StatusPassed {
					t.Fatalf("%s: %s", r.Status, r.Summary)
				}
				s := h.sim.Sends()
				if len(s) != 3 {
					t.Fatalf("%d commands, want 3", len(s))
				}
				most := 0
				for i, x := range s {
					running := 0
					for _, y := range s[:i] {
						if _, ended, ok := h.sim.CommandSpan(y.CommandID); !ok || ended.After(x.At) {
							running++
						}
					}
					most = max(most, running+1)
				}
				if most != tc.inflight {
					t.Errorf("at most %d commands ran at once, want %d", most, tc.inflight)
				}
				// Three one-minute commands: the polls see each end soon
				// after it (not at the 24h execution deadline).
				if d := r.EndedAt.Sub(r.StartedAt); d > 10*time.Minute {
					t.Errorf("the run took %s of clock for three one-minute commands", d)
				}
			})
		})
	}
}

// maxErrors stops a wave only when its errors exceed the limit: exactly
// the limit sends the rest of the wave; one more sends nothing after the
// command that saw it and cancels the wave's commands still running (a
// wave of one command is left to SSM, which applies MaxErrors itself).
func TestMaxErrorsBoundary(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mc        string
		ok, bad   int
		slow      int // instances after the failing ones, 3x as long
		sends     int
		cancelled bool
		stopped   bool // the phase names maxErrors as a reason
	}{
		{"at the limit, one at a time", "50", 48, 2, 100, 3, false, false},
		{"one over, one at a time", "50", 47, 3, 100, 1, false, true},
		{"one over, two at a time", "100", 47, 3, 100, 2, true, true},
		{"one over, a single command", "50", 37, 3, 10, 1, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stg := map[string]string{"Environment": "staging"}
				// Ids follow the groups' order: the failures are in the first command.
				h := newHarness(t, groups(awssim.Group{Count: tc.ok, Name: "a-ok", Tags: stg},
					awssim.Group{Count: tc.bad, Name: "b-bad", Tags: stg, Behavior: "fail"},
					awssim.Group{Count: tc.slow, Name: "c-slow", Tags: stg, Behavior: "slow"}))
				r := h.run(context.Background(), mustPolicy(t, oneWavePolicy(tc.mc, "2")))
				if r.Status != result.StatusFailed {
					t.Fatalf("%s: %s", r.Status, r.Summary)
				}
				if n := len(h.sim.Sends()); n != tc.sends {
					t.Errorf("%d commands sent, want %d", n, tc.sends)
				}
				if n := h.sim.Calls()["ssm:CancelCommand"]; (n > 0) != tc.cancelled {
					t.Errorf("%d CancelCommand calls, want some: %v", n, tc.cancelled)
				}
				stg0 := phaseOf(t, r, "111122223333", "us-east-1", "staging")
				// The instances never sent say why, with the count of
				// commands left out.
				wantWhy, unsent := "", (tc.ok+tc.bad+tc.slow)/50-tc.sends
				if tc.stopped && unsent > 0 {
					wantWhy = fmt.Sprintf("not sent: maxErrors 2 reached (3 errors): the remaining %d commands of the wave were not sent", unsent)
				}
				notSent := 0
				for _, in := range stg0.Waves[0].Instances {
					if strings.HasPrefix(in.Error, "not sent") {
						notSent++
						if in.Error != wantWhy {
							t.Errorf("%s: %q, want %q", in.ID, in.Error, wantWhy)
							break
						}
					}
				}
				if notSent != 50*unsent {
					t.Errorf("%d instances not sent, want %d", notSent, 50*unsent)
				}
				got := false
				for _, rs := range stg0.Reasons {
					got = got || rs.Code == "max-errors"
				}
				if got != tc.stopped {
					t.Errorf("reasons %+v: stopped by maxErrors %v, want %v", stg0.Reasons, got, tc.stopped)
				}
			})
		})
	}
}

// Each command of a wave carries the phase's settings as SSM takes them:
// the delivery timeout in seconds, MaxConcurrency and MaxErrors as the
// policy writes them, the run's one SnapshotId; the wave names its first
// command.
func TestCommandSettings(t *testing.T) {
	for _, tc := range []struct {
		install string
		timeout int32
	}{{"{executionTimeout: 24h}", 600}, {"{executionTimeout: 24h, deliveryTimeout: 90s}", 90}} {
		t.Run(tc.install, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, groups(awssim.Group{Count: 60, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
				pol := strings.Replace(oneWavePolicy("100%", "1"), "install: {executionTimeout: 24h}", "install: "+tc.install, 1)
				r := h.run(context.Background(), mustPolicy(t, pol))
				if r.Status != result.StatusPassed {
					t.Fatalf("%s: %s", r.Status, r.Summary)
				}
				w := phaseOf(t, r, "111122223333", "us-east-1", "staging").Waves[0]
				sends := h.sim.Sends()
				if len(w.Commands) != 2 || len(sends) != 2 {
					t.Fatalf("%d commands in the result, %d sent; want 2", len(w.Commands), len(sends))
				}
				for i, c := range w.Commands {
					if c.TimeoutSeconds != tc.timeout || c.MaxConcurrency != "100%" || c.MaxErrors != "1" || c.Document != DocumentName || !c.Sent {
						t.Errorf("command %d: %+v", i, c)
					}
					if c.CommandID != sends[i].CommandID || c.Comment != sends[i].Comment || c.Instances != len(sends[i].InstanceIDs) {
						t.Errorf("command %d %s %q, sent %s %q", i, c.CommandID, c.Comment, sends[i].CommandID, sends[i].Comment)
					}
					if got := sends[i].Parameters["SnapshotId"]; len(got) != 1 || got[0] != r.SnapshotID || r.SnapshotID == "" {
						t.Errorf("command %d SnapshotId %v, want the run's %q", i, got, r.SnapshotID)
					}
				}
				if w.CommandID != sends[0].CommandID || w.Comment != sends[0].Comment || w.ConsoleURL != ConsoleURL("us-east-1", sends[0].CommandID) {
					t.Errorf("wave names %s %q %s, want the first command", w.CommandID, w.Comment, w.ConsoleURL)
				}
			})
		})
	}
}

// pollTimes is a Progress that notes the clock at each poll.
type pollTimes struct {
	noProgress
	mu    sync.Mutex
	polls []time.Time
}

func (p *pollTimes) Polled(progress.Key, int, int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.polls = append(p.polls, time.Now()) // synctest's clock, the run's too
}

// A wave ends at the poll that sees its last command end, with no further
// wait; a wave stopped by maxErrors ends once its sent commands have, not
// at the execution deadline.
func TestWaveEndsAtItsLastPoll(t *testing.T) {
	for _, tc := range []struct {
		name, mc string
		bad      int
	}{{"one at a time", "50", 0}, {"all at once", "100%", 0}, {"stopped by maxErrors", "50", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stg := map[string]string{"Environment": "staging"}
				// The failures, if any, are in the first command.
				h := newHarness(t, groups(awssim.Group{Count: tc.bad, Name: "a-bad", Tags: stg, Behavior: "fail"},
					awssim.Group{Count: 150 - tc.bad, Name: "b-ok", Tags: stg}))
				rec := &pollTimes{}
				h.opt.Progress = rec
				r := h.run(context.Background(), mustPolicy(t, oneWavePolicy(tc.mc, "0")))
				w := phaseOf(t, r, "111122223333", "us-east-1", "staging").Waves[0]
				if n := len(h.sim.Sends()); tc.bad > 0 && n != 1 {
					t.Fatalf("%d commands sent, want the one that failed", n)
				}
				if len(rec.polls) == 0 {
					t.Fatal("no poll")
				}
				// Reading the outcomes takes no clock time; a wait would
				// be a poll interval (30 s or more here). A wave stopped by
				// maxErrors still waits one interval before it notices it
				// has nothing left to send (wave.go's follow), but never
				// more.
				limit := time.Second
				if tc.bad > 0 {
					limit = h.opt.PollMax
				}
				if d := w.EndedAt.Sub(rec.polls[len(rec.polls)-1]); d < 0 || d > limit {
					t.Errorf("the wave ended %s after its last poll", d)
				}
				if d := w.EndedAt.Sub(w.StartedAt); d > 10*time.Minute {
					t.Errorf("the wave took %s of clock for at most three one-minute commands", d)
				}
			})
		})
	}
}

// cancelOnSend passes the n-th SendCommand to SSM, then cancels the run
// and answers with the cancellation: the command exists, its response is
// lost to the cancellation.
type cancelOnSend struct {
	Commands
	n      int
	cancel context.CancelFunc
	mu     sync.Mutex
	seen   int
}

func (c *cancelOnSend) SendCommand(ctx context.Context, in *ssm.SendCommandInput, opts ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	c.mu.Lock()
	c.seen++
	last := c.seen == c.n
	c.mu.Unlock()
	out, err := c.Commands.SendCommand(ctx, in, opts...)
	if !last || err != nil {
		return out, err
	}
	c.cancel()
	return nil, context.Canceled
}

// A command that reached SSM as the run was cancelled is found, reported
// sent and cancelled with its instances (not "not sent"), and nothing is
// sent after it.
func TestCommandSentAsTheRunIsCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 150 instances, "50": three commands one after another; the
		// second is sent as the run is cancelled.
		h := newHarness(t, groups(awssim.Group{Count: 150, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wrapCommands(h, func(c Commands) Commands { return &cancelOnSend{Commands: c, n: 2, cancel: cancel} })
		r := h.run(ctx, mustPolicy(t, oneWavePolicy("50", "0")))
		if r.Status != result.StatusCancelled {
			t.Fatalf("%s: %s", r.Status, r.Summary)
		}
		sends := h.sim.Sends()
		if len(sends) != 2 {
			t.Fatalf("%d commands reached SSM, want 2", len(sends))
		}
		w := phaseOf(t, r, "111122223333", "us-east-1", "staging").Waves[0]
		if c := w.Commands[1]; !c.Sent || c.CommandID != sends[1].CommandID {
			t.Errorf("the second command must be reported sent as %s: %+v", sends[1].CommandID, c)
		}
		if c := w.Commands[2]; c.Sent || c.CommandID != "" {
			t.Errorf("the third command must not be sent: %+v", c)
		}
		if h.sim.Calls()["ssm:CancelCommand"] == 0 {
			t.Error("the command sent as the run was cancelled was not cancelled")
		}
		inflight := 0
		for _, in := range w.Instances {
			if in.Outcome == result.OutcomeCancelled && strings.Contains(in.Error, sends[1].CommandID) {
				inflight++
			}
		}
		if inflight != 50 {
			t.Errorf("%d instances reported cancelled in command %s, want its 50", inflight, sends[1].CommandID)
		}
		unsent := 0
		for _, in := range w.Instances {
			if in.Error == "not sent: the run was cancelled" {
				unsent++
			}
		}
		if unsent != 50 {
			t.Errorf("%d instances say they were not sent because the run was cancelled, want the third command's 50", unsent)
		}
	})
}

// A re-run of the same run id resumes every command its first attempt sent
// and follows them in one listing, however long ago they were sent: it
// sends nothing and ends at once, not at the execution deadline.
func TestResumedWaveFollowsOldCommands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, groups(awssim.Group{Count: 150, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
		pol := mustPolicy(t, oneWavePolicy("100%", "0"))
		if first := h.run(context.Background(), pol); first.Status != result.StatusPassed {
			t.Fatalf("first attempt: %s: %s", first.Status, first.Summary)
		}
		time.Sleep(3 * time.Hour)
		second := h.run(context.Background(), pol)
		if second.Status != result.StatusPassed {
			t.Fatalf("second attempt: %s: %s", second.Status, second.Summary)
		}
		if n := len(h.sim.Sends()); n != 3 {
			t.Errorf("%d commands sent in all, want the first attempt's 3", n)
		}
		w := phaseOf(t, second, "111122223333", "us-east-1", "staging").Waves[0]
		for i, c := range w.Commands {
			if !c.Resumed {
				t.Errorf("command %d not resumed: %+v", i, c)
			}
		}
		if d := second.EndedAt.Sub(second.StartedAt); d > 10*time.Minute {
			t.Errorf("the second attempt took %s of clock to follow three finished commands", d)
		}
	})
}

// The live tallies count a failed invocation and an undelivered one alike
// as failed, and neither as succeeded.
func TestPolledTalliesCountUndelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stg := map[string]string{"Environment": "staging"}
		h := newHarness(t, groups(awssim.Group{Count: 40, Name: "ok", Tags: stg},
			awssim.Group{Count: 3, Name: "bad", Tags: stg, Behavior: "fail"},
			awssim.Group{Count: 2, Name: "gone", Tags: stg, Behavior: "offline"}))
		rec := newRecorder()
		h.opt.Progress = rec
		h.run(context.Background(), mustPolicy(t, oneWavePolicy("100%", "10")))
		k := progress.Key{Policy: "web", Phase: "staging", Account: "111122223333", Region: "us-east-1"}
		if got := rec.polled[k]; got != [3]int{40, 5, 0} {
			t.Fatalf("last tallies %v, want 40 succeeded, 5 failed (3 failed, 2 undelivered), none in flight", got)
		}
	})
}
