package progress

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/patchgate/patchgate/internal/clock"
)

// TestLines drives a phase on synctest's fake clock: a start line, no
// more than one line a minute however often it is polled, at least one a
// minute while nothing is heard, the pace-based time left, and the final
// lines (a halted phase says how many instances it held back).
func TestLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		r := New(&buf, clock.Real{}, time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go r.Run(ctx)
		web := Key{Policy: "web-fleet", Phase: "production", Account: "111122223333", Region: "eu-west-1"}
		step := func(d time.Duration) { time.Sleep(d); synctest.Wait() }

		r.PhaseStarted(web, 100, 2)
		r.Sent(web, 50)
		step(30 * time.Second)
		r.Polled(web, 10, 0, 40) // 30s since the start line: no line
		step(30 * time.Second)   // 1m: the ticker's line
		step(time.Second)
		r.Polled(web, 20, 1, 29) // 1s after a line: none
		step(59 * time.Second)   // 2m: 21 done in 2m, 79 left
		r.Sent(web, 50)
		step(3 * time.Minute) // nothing heard: still a line a minute
		r.Polled(web, 98, 2, 0)
		r.PhaseEnded(web, "passed", 0)
		step(5 * time.Minute) // ended: no more lines

		staging := Key{Policy: "db", Phase: "production", Region: "us-east-1"}
		r.PhaseStarted(staging, 30, 1)
		r.PhaseEnded(staging, "halted", 30)
		r.PhaseEnded(staging, "halted", 30) // once only

		want := []string{
			"progress: web-fleet/production 111122223333/eu-west-1: started, 100 instances in 2 waves",
			"progress: web-fleet/production 111122223333/eu-west-1: sent 50, succeeded 10, failed 0, in flight 40, remaining 90 of 100; elapsed 1m00s, about 9m00s left",
			"progress: web-fleet/production 111122223333/eu-west-1: sent 50, succeeded 20, failed 1, in flight 29, remaining 79 of 100; elapsed 2m00s, about 7m31s left",
			"progress: web-fleet/production 111122223333/eu-west-1: sent 100, succeeded 20, failed 1, in flight 79, remaining 79 of 100; elapsed 3m00s, about 11m17s left",
			"progress: web-fleet/production 111122223333/eu-west-1: sent 100, succeeded 20, failed 1, in flight 79, remaining 79 of 100; elapsed 4m00s, about 15m03s left",
			"progress: web-fleet/production 111122223333/eu-west-1: sent 100, succeeded 20, failed 1, in flight 79, remaining 79 of 100; elapsed 5m00s, about 18m49s left",
			"progress: web-fleet/production 111122223333/eu-west-1: passed after 5m00s: succeeded 98, failed 2 of 100 sent",
			"progress: db/production (credentials' account)/us-east-1: started, 30 instances in 1 wave",
			"progress: db/production (credentials' account)/us-east-1: halted, 30 instances held back (nothing sent)",
		}
		got := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestPolledLineIsRateLimited: a poll an interval after the last line
// prints one (the engine's own polls can carry the progress), and the
// ticker then waits a full interval from it.
func TestPolledLineIsRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		r := New(&buf, clock.Real{}, time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		k := Key{Policy: "p", Phase: "staging", Account: "111122223333", Region: "eu-west-1"}
		r.PhaseStarted(k, 4, 1)
		r.Sent(k, 4)
		go r.Run(ctx)
		time.Sleep(50 * time.Second)
		synctest.Wait()
		for range 100 {
			r.Polled(k, 0, 0, 4) // 50s: none of these may print
		}
		time.Sleep(15 * time.Second)
		synctest.Wait() // 60s: one line from the ticker
		r.Polled(k, 2, 0, 2)
		time.Sleep(30 * time.Second)
		synctest.Wait() // 95s: none
		if n := strings.Count(buf.String(), "\n"); n != 2 {
			t.Fatalf("%d lines, want the start line and one a minute:\n%s", n, buf.String())
		}
		if !strings.Contains(buf.String(), "time left not known yet") {
			t.Errorf("nothing done yet should say so:\n%s", buf.String())
		}
	})
}

func TestKeyCannotBreakTheLine(t *testing.T) {
	k := Key{Policy: "p\n::error::x", Phase: "s\r", Account: "1", Region: "r"}
	if s := k.String(); strings.ContainsAny(s, "\r\n") {
		t.Fatalf("%q", s)
	}
}
