package awssim

import "time"

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

// RescanAfterPatch is when Inspector first scanned the instance after its
// last successful install ended, and whether there is such an install on
// a covered instance. It is when the rescan happened, not when a caller
// read it: lastScannedAt moves on with every later inventory pass, so
// the bench cannot take the scan times a run recorded as the work.
func (in *Instance) RescanAfterPatch() (time.Time, bool) {
	s := in.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	var end time.Time
	for _, inv := range in.installs {
		if inv.final != "Success" || inv.notStarted || inv.end.IsZero() || (!inv.cancelledAt.IsZero() && inv.cancelledAt.Before(inv.end)) {
			continue
		}
		if inv.end.After(end) {
			end = inv.end
		}
	}
	if end.IsZero() || in.Coverage != "SUCCESSFUL" {
		return time.Time{}, false
	}
	if r := s.realism(); r != nil {
		return r.firstPass(s.origin, in.num, end), true
	}
	return end.Add(in.ScanDelay), true
}
