package bench

import (
	"fmt"
	"sync"
	"time"

	"github.com/patchgate/patchgate/internal/awssim"
)

// reference is what the script and the waiter record of their run, every
// account-region's goroutine writing to it.
type reference struct {
	mu      sync.Mutex
	status  string
	reason  string // the first failure, "<account>/<region> <phase>: why"
	patched int
	// sent are the commands by account-region, waits the soaks and
	// rescan waits, for the patch-time spans.
	sent  map[[2]string][]string
	waits map[[2]string]time.Duration
}

func newReference() *reference {
	return &reference{status: "passed", sent: map[[2]string][]string{}, waits: map[[2]string]time.Duration{}}
}

func (r *reference) fail(key [2]string, phase, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = "failed"
	if r.reason == "" {
		r.reason = fmt.Sprintf("%s/%s %s: %s", key[0], key[1], phase, why)
	}
}

func (r *reference) sentCommand(key [2]string, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent[key] = append(r.sent[key], id)
}

func (r *reference) waited(key [2]string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits[key] += max(d, 0)
}

func (r *reference) addPatched(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.patched += n
}

// spans are the run's simulated work per account-region: its commands
// from send to last invocation's end, and its waits.
func (r *reference) spans(sim *awssim.Sim) map[string][]span {
	out := map[string][]span{}
	for key, cmds := range r.sent {
		sp := span{waits: r.waits[key]}
		for _, id := range cmds {
			if from, to, ok := sim.CommandSpan(id); ok {
				sp.work = append(sp.work, interval{from, to})
			}
		}
		k := key[0] + "/" + key[1]
		out[k] = append(out[k], sp)
	}
	return out
}
