package progress

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/result"
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

// TestObserver reads the engine's snapshots, in which a phase appears
// when it ends: a running target's next phase is announced and kept alive
// once a minute, then closed with its counts; a halted phase says nothing
// was sent; a phase is closed once however many snapshots show it.
func TestObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		rep := New(&buf, clock.Real{}, time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go rep.Run(ctx)
		o := &Observer{R: rep, Phases: map[string][]Phase{"web": {{Name: "staging", Soak: time.Hour}, {Name: "production"}}}}
		start := time.Now()
		wave := func(status result.Status, sent bool, n, ok, failed int) result.Wave {
			w := result.Wave{Status: status, Counts: result.Counts{Targeted: n, Succeeded: ok, Failed: failed}}
			if sent {
				w.Commands = []result.Command{{Instances: n, Sent: true}}
			}
			return w
		}
		tgt := result.Target{AccountID: "111122223333", Region: "eu-west-1", Status: result.StatusRunning, StartedAt: start}
		run := &result.Run{Policies: []result.Policy{{Name: "web", Targets: []result.Target{tgt}}}}
		time.Sleep(30 * time.Second) // the first snapshot comes after some wave somewhere
		o.Observe(run)
		time.Sleep(2*time.Minute + 15*time.Second)
		synctest.Wait()
		run.Policies[0].Targets[0].Phases = []result.Phase{{Name: "staging", StartedAt: start, EndedAt: time.Now(), Status: result.StatusFailed,
			Waves: []result.Wave{wave(result.StatusPassed, true, 4, 4, 0), wave(result.StatusFailed, true, 10, 7, 3), wave(result.StatusHalted, false, 20, 0, 0)}}}
		o.Observe(run)
		run.Policies[0].Targets[0].Phases = append(run.Policies[0].Targets[0].Phases, result.Phase{Name: "production", Status: result.StatusHalted})
		run.Policies[0].Targets[0].Status = result.StatusFailed
		o.Observe(run)
		o.Observe(run)
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		want := "progress: web/staging 111122223333/eu-west-1: started\n" +
			"progress: web/staging 111122223333/eu-west-1: in flight; 1m30s since the policy started in this account-region\n" +
			"progress: web/staging 111122223333/eu-west-1: in flight; 2m30s since the policy started in this account-region\n" +
			"progress: web/staging 111122223333/eu-west-1: failed after 2m45s: succeeded 11, failed 3 of 14 sent; 20 instances held back\n" +
			"progress: web/production 111122223333/eu-west-1: halted, nothing sent\n"
		if buf.String() != want {
			t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
		}
	})
}

// TestObserverWaitsForSoakAndAccount: the next phase is not in flight
// during the soak after the last one, nor before the target's account is
// known (it is being connected).
func TestObserverWaitsForSoakAndAccount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		o := &Observer{R: New(&buf, clock.Real{}, time.Minute), Phases: map[string][]Phase{"web": {{Name: "staging", Soak: time.Hour}, {Name: "production"}}}}
		run := &result.Run{Policies: []result.Policy{{Name: "web", Targets: []result.Target{{Region: "eu-west-1", Status: result.StatusRunning, StartedAt: time.Now()}}}}}
		o.Observe(run) // no account yet
		tg := &run.Policies[0].Targets[0]
		tg.AccountID = "111122223333"
		time.Sleep(10 * time.Minute)
		tg.Phases = []result.Phase{{Name: "staging", StartedAt: tg.StartedAt, EndedAt: time.Now(), Status: result.StatusPassed}}
		o.Observe(run)
		time.Sleep(30 * time.Minute)
		o.Observe(run) // soaking
		time.Sleep(31 * time.Minute)
		o.Observe(run)
		want := "progress: web/staging 111122223333/eu-west-1: passed, nothing sent\n" +
			"progress: web/production 111122223333/eu-west-1: started\n"
		if buf.String() != want {
			t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
		}
	})
}
