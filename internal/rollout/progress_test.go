package rollout

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/progress"
)

// recorder is a Progress that keeps what it heard.
type recorder struct {
	mu      sync.Mutex
	started map[progress.Key]int
	sent    map[progress.Key]int
	polled  map[progress.Key][3]int
	ended   map[progress.Key]string
}

func (r *recorder) PhaseStarted(k progress.Key, n, _ int) {
	r.mu.Lock()
	r.started[k] = n
	r.mu.Unlock()
}
func (r *recorder) Sent(k progress.Key, n int) { r.mu.Lock(); r.sent[k] += n; r.mu.Unlock() }
func (r *recorder) Polled(k progress.Key, ok, failed, inFlight int) {
	r.mu.Lock()
	r.polled[k] = [3]int{ok, failed, inFlight}
	r.mu.Unlock()
}
func (r *recorder) PhaseEnded(k progress.Key, status string, _ int) {
	r.mu.Lock()
	r.ended[k] = status
	r.mu.Unlock()
}

func newRecorder() *recorder {
	return &recorder{started: map[progress.Key]int{}, sent: map[progress.Key]int{}, polled: map[progress.Key][3]int{}, ended: map[progress.Key]string{}}
}

// TestProgressEvents: the engine tells Progress each phase's start with
// its instances, every instance sent, the tallies as polls see them and
// each phase's end, halted phases included.
func TestProgressEvents(t *testing.T) { synctest.Test(t, testProgressEvents) }

func testProgressEvents(t *testing.T) {
	h := newHarness(t, groups(awssim.Group{Count: 60, Name: "stg", Tags: map[string]string{"Environment": "staging"}},
		awssim.Group{Count: 3, Name: "bad", Tags: map[string]string{"Environment": "staging"}, Behavior: "fail"},
		awssim.Group{Count: 5, Name: "prd", Tags: map[string]string{"Environment": "production"}}))
	rec := newRecorder()
	h.opt.Progress = rec
	h.run(context.Background(), mustPolicy(t, strings.Replace(onePlace, "WAVES", "", 1)))
	stg := progress.Key{Policy: "web", Phase: "staging", Account: "111122223333", Region: "us-east-1"}
	prd := progress.Key{Policy: "web", Phase: "production", Account: "111122223333", Region: "us-east-1"}
	if rec.started[stg] != 63 || rec.sent[stg] != 63 {
		t.Fatalf("staging started with %d, sent %d; want 63 and 63", rec.started[stg], rec.sent[stg])
	}
	if got := rec.polled[stg]; got != [3]int{60, 3, 0} {
		t.Fatalf("last tallies %v, want 60 succeeded, 3 failed, none in flight", got)
	}
	if rec.ended[stg] != "failed" || rec.ended[prd] != "halted" {
		t.Fatalf("ended %v", rec.ended)
	}
}
