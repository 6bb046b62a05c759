package rollout

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/patchgate/patchgate/internal/awssim"
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
