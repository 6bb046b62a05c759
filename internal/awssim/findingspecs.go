package awssim

// EachFindingSpec calls fn with each of the instance's findings as
// specified, whatever the clock: the scenario's, then those the realistic
// model generates. The bench computes its call floor from them (the
// findings a gate must see after patching); nothing is held in memory.
func (in *Instance) EachFindingSpec(fn func(FindingSpec)) {
	for _, f := range in.Findings {
		fn(f)
	}
	r := in.sim.realism()
	if r == nil || in.Coverage == "PENDING_INITIAL_SCAN" || in.Coverage == "UNMANAGED_EC2_INSTANCE" {
		return
	}
	for j := 0; j < r.findingCount(in.num); j++ {
		fn(r.finding(in.sim.catalogue, in.num, j))
	}
}
