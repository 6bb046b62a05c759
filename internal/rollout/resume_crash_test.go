package rollout

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/lock"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

const (
	crashEndpointEnv = "PATCHGATE_TEST_CRASH_ENDPOINT"
	crashNowEnv      = "PATCHGATE_TEST_CRASH_NOW"
	crashExit        = 3
	crashFactor      = 60 // a minute of clock time is a wall second
)

// A run killed between SendCommand and recording its command id, resumed
// with the same run id while SSM does not list the command yet: the resume
// finds the write-ahead intent, reconciles it and resumes the command
// instead of sending it again. The killed run is this test binary run
// again (TestHelperSendThenCrash), which exits the moment SendCommand
// returns; the simulator it talked to is this process's.
func TestCrashAfterSendResumesWithoutResending(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	sc := sendScenario(4, 6)
	sc.PatchDuration = 30 * time.Second
	start := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	c := &handoffClock{scaled: clock.NewScaled(start, crashFactor)}
	sim := awssim.New(sc, c)
	// A loopback port, not memnet: the killed run is another process.
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	ep := srv.URL
	// Longer than the resume takes to start, shorter than the window.
	sim.SetListingDelay(2 * time.Minute)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSendThenCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEndpointEnv+"="+ep, crashNowEnv+"="+start.Format(time.RFC3339Nano))
	out, err := cmd.CombinedOutput()
	// The killed run is gone: from here only this process uses the clock,
	// so it moves only when the resume sleeps (no wall time, and the
	// listing delay cannot run out while the resume starts).
	c.stop()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != crashExit {
		t.Fatalf("the helper must die right after sending (exit %d), got %v:\n%s", crashExit, err, out)
	}
	if n := len(sim.Sends()); n != 1 {
		t.Fatalf("the killed run sent %d commands, want 1", n)
	}
	cl := ssm.NewFromConfig(awssim.Config(ep, "111122223333", "us-east-1"))
	if in, err := lock.ReadIntent(context.Background(), cl, "web"); err != nil || in == nil {
		t.Fatalf("the killed run must leave its intent open: %+v %v", in, err)
	}

	r := New(sendOptions(t, ep, c)).Run(context.Background(), []*policy.Policy{mustPolicy(t, sendPolicy)})
	if r.Status != result.StatusPassed {
		t.Fatalf("resume: %s %s", r.Status, r.Summary)
	}
	onceEach(t, sim, 10)
	if c := stagingCommand(t, r); !c.Resumed || c.CommandID != sim.Sends()[0].CommandID {
		t.Fatalf("the killed run's command must be resumed: %+v", c)
	}
}

// handoffClock is the scaled clock the killed run shares with the simulator
// (two processes must agree on the time), then, once stop is called, a
// clock.Step from the time reached: the resume waits on no wall time.
type handoffClock struct {
	scaled *clock.Scaled
	mu     sync.Mutex
	step   *clock.Step
}

func (h *handoffClock) current() clock.Clock {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.step != nil {
		return h.step
	}
	return h.scaled
}

func (h *handoffClock) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.step = clock.NewStep(h.scaled.Now())
}

func (h *handoffClock) Now() time.Time { return h.current().Now() }

func (h *handoffClock) Sleep(ctx context.Context, d time.Duration) error {
	return h.current().Sleep(ctx, d)
}

// TestHelperSendThenCrash is the run that TestCrashAfterSendResumesWithoutResending
// kills: it exits as soon as its first SendCommand returns.
func TestHelperSendThenCrash(t *testing.T) {
	ep := os.Getenv(crashEndpointEnv)
	if ep == "" {
		t.Skip("run by TestCrashAfterSendResumesWithoutResending")
	}
	now, err := time.Parse(time.RFC3339Nano, os.Getenv(crashNowEnv))
	if err != nil {
		t.Fatal(err)
	}
	// A mutant or bug that never sends must not leave this process behind
	// once its parent test has timed out: it ends itself.
	time.AfterFunc(time.Minute, func() { os.Exit(crashExit + 1) })
	testHookSent = func(r sendResult) {
		if r.id != "" {
			os.Exit(crashExit)
		}
	}
	New(sendOptions(t, ep, clock.NewScaled(now, crashFactor))).Run(context.Background(), []*policy.Policy{mustPolicy(t, sendPolicy)})
	t.Fatal("the run ended without sending")
}
