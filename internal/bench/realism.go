package bench

import (
	"fmt"

	"github.com/patchgate/patchgate/internal/awssim"
)

// realismSeed fixes the realistic fleet: the same seed gives the same
// fleet, timings and findings on every run and machine. BENCHMARKS.md is
// seed 19; -fleet.seed shows the figures are not one seed's luck.
var realismSeed int64 = 19

// realism is the bench's fleet model: awssim's realistic model with its
// documented defaults (long-tailed patch times, agent delays, reboots,
// failures, inventory-driven rescans, ~30 findings per instance, other
// tools' commands, per-operation rate limits), except that the baseline
// approves every fix (no fixable finding survives a patch), so that the
// Inspector gate passes and the run can pass: the bench measures cost,
// the gate's failures are tested in internal/verify.
func realism() *awssim.Realism {
	r := awssim.Realistic(realismSeed)
	r.UnpatchedShare = -1
	return r
}

// throttled are the calls the simulator answered ThrottlingException, by
// operation ("ssm:ListCommands").
func throttled(sim *awssim.Sim) map[string]int {
	out := map[string]int{}
	for op, n := range sim.Throttled() {
		if n > 0 {
			out[op] = n
		}
	}
	return out
}

// realismText states the model's settings the bench runs with, for
// BENCHMARKS.md (a share of -1 is none).
func realismText() string {
	r := realism()
	pct := func(v float64) string {
		if v < 0 {
			return "none"
		}
		return fmt.Sprintf("%.2f%%", 100*v)
	}
	return fmt.Sprintf("Model settings (seed %d): patch median %s (lognormal, sigma %.2f, %s to %s, %s slow up to %s); agent delay median %s, at most %s; "+
		"reboots on %s of instances, %s to %s; failures %s, execution timeouts %s, undeliverable %s; inventory every %s, jitter %s; "+
		"findings mean %.0f, at most %d, %s without a fix, %s partial, unpatched by the baseline %s; other tools' commands %.0f an hour per account-region; "+
		"rate limits per account-region %v.\n\n",
		r.Seed, r.PatchMedian, r.PatchSigma, r.PatchMin, r.PatchMax, pct(r.SlowShare), r.SlowMax, r.AgentDelayMedian, r.AgentDelayMax,
		pct(r.RebootShare), r.RebootMin, r.RebootMax, pct(r.FailureShare), pct(r.TimeoutShare), pct(r.UndeliverableShare),
		r.InventoryInterval, r.InventoryJitter, r.FindingsMean, r.FindingsMax, pct(r.NoFixShare), pct(r.PartialFixShare), pct(r.UnpatchedShare),
		r.OtherCommandsPerHour, r.RateLimits)
}
