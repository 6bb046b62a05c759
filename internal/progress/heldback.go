package progress

import "github.com/patchgate/patchgate/internal/result"

// HeldBack is how many of a phase's instances were never sent: those of
// its halted waves (a wave over its limits stops the ones after it, and a
// preflight refusal stops them all).
func HeldBack(ph result.Phase) int {
	n := 0
	for _, w := range ph.Waves {
		if w.Status == result.StatusHalted {
			n += w.Counts.Targeted
		}
	}
	return n
}
