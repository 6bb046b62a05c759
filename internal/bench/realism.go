package bench

import "github.com/patchgate/patchgate/internal/awssim"

// throttled are the calls the simulator answered ThrottlingException, by
// operation ("ssm:ListCommands"), only those with any.
func throttled(sim *awssim.Sim) map[string]int {
	out := map[string]int{}
	for op := range sim.Calls() {
		if n := sim.Throttled(op); n > 0 {
			out[op] = n
		}
	}
	return out
}
