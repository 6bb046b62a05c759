package bench

import "github.com/patchgate/patchgate/internal/awssim"

// realismSeed fixes the realistic fleet: the same seed gives the same
// fleet, timings and findings on every run and machine.
const realismSeed = 19

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
