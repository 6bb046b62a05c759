package bench

import (
	"fmt"
	"slices"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/verify"
)

// The floor is the fewest API calls with which any tool can do what the
// policy asks on the fleet, computed from the fleet and the policy, never
// measured. It assumes perfect knowledge of when things finish (one look
// per wave) and the largest pages AWS allows. BENCHMARKS.md explains each
// term; floor_test.go checks the arithmetic by hand.

// Page sizes AWS allows (docs: MaxResults and id-list limits).
const (
	idsPerCall          = 50  // DescribeInstanceInformation page, SendCommand and DescribeInstancePatchStates ids
	coveragePerPage     = 200 // ListCoverage maxResults
	findingsPerPage     = 100 // ListFindings maxResults
	fixedPerTargetCalls = 2   // the run lock: one PutParameter, one DeleteParameter
)

// FloorPhase is one phase of the policy on one account-region.
type FloorPhase struct {
	// Listed are the instances the phase's tags match, whatever their
	// agent's state: a tag-filtered DescribeInstanceInformation pages
	// through all of them.
	Listed int
	// Waves are the instances sent to per wave (agents online, cut by the
	// policy's wave shares).
	Waves []int
	// Compliance and Inspector are the phase's gates.
	Compliance, Inspector bool
	// GateFindings are the findings the Inspector gate must see after the
	// phase's patching: ACTIVE, a fix available, at or above the phase's
	// severity (or a required CVE), on the instances its tags match.
	GateFindings int
}

// FloorTarget is one account-region.
type FloorTarget struct {
	Phases []FloorPhase
}

// Floor is the computed floor, by operation as Measurement.Calls.
type Floor struct {
	Calls map[string]int `json:"calls"`
	Total int            `json:"total"`
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// ComputeFloor adds up the floor of every account-region; assumedAccounts
// is how many accounts are reached through an assumed role (credentials
// hold for every region of an account, so one AssumeRole each).
func ComputeFloor(targets []FloorTarget, assumedAccounts int) Floor {
	c := map[string]int{}
	for _, t := range targets {
		c["ssm:PutParameter"]++
		c["ssm:DeleteParameter"]++
		for _, ph := range t.Phases {
			// One page even when nothing matches: that is how a tool learns it.
			c["ssm:DescribeInstanceInformation"] += max(1, ceilDiv(ph.Listed, idsPerCall))
			sent := 0
			for _, w := range ph.Waves {
				if w == 0 {
					continue
				}
				sent += w
				c["ssm:SendCommand"] += ceilDiv(w, idsPerCall)
				// One ListCommands page filtered to patch commands still in
				// progress since the wave's send, read once just after the
				// wave's last invocation ends: none of the wave's, it is done.
				c["ssm:ListCommands"]++
			}
			if sent == 0 {
				continue
			}
			if ph.Compliance {
				c["ssm:DescribeInstancePatchStates"] += ceilDiv(sent, idsPerCall)
			}
			if ph.Inspector {
				// One coverage pass over the patched instances to see their
				// rescans, then the gate's findings (one page if none).
				c["inspector2:ListCoverage"] += ceilDiv(sent, coveragePerPage)
				c["inspector2:ListFindings"] += max(1, ceilDiv(ph.GateFindings, findingsPerPage))
			}
		}
	}
	if assumedAccounts > 0 {
		c["sts:AssumeRole"] = assumedAccounts
	}
	f := Floor{Calls: c}
	for _, n := range c {
		f.Total += n
	}
	return f
}

// fleetFloor computes the floor of a policy on the simulator's fleet as
// it stands before the run, and its inputs (every account-region's).
func fleetFloor(pol *policy.Policy, sim *awssim.Sim) (Floor, []FloorTarget, error) {
	plan, err := policy.Compile(pol)
	if err != nil {
		return Floor{}, nil, fmt.Errorf("compiling the benchmark policy for the floor: %w", err)
	}
	var targets []FloorTarget
	assumed := 0
	for _, acct := range pol.Spec.Accounts {
		if acct.RoleArn != "" {
			assumed++
		}
		for _, region := range pol.Spec.Regions {
			targets = append(targets, floorTarget(plan, sim.Instances(acct.ID, region)))
		}
	}
	return ComputeFloor(targets, assumed), targets, nil
}

// floorTarget is one account-region's phases over its instances.
func floorTarget(plan *policy.Rollout, fleet []*awssim.Instance) FloorTarget {
	var t FloorTarget
	for i := range plan.Stages {
		st := &plan.Stages[i]
		ph := FloorPhase{Compliance: st.Compliance, Inspector: st.Inspector.Enabled}
		online := 0
		for _, in := range fleet {
			if !tagsMatch(st.Targets.Tags, in.Tags) {
				continue
			}
			ph.Listed++
			patched := in.Ping == "" || in.Ping == "Online"
			if patched {
				online++
			}
			if ph.Inspector {
				ph.GateFindings += gateFindings(st.Inspector, in, patched)
			}
		}
		done := 0
		for _, end := range st.WaveEnds(online) {
			ph.Waves = append(ph.Waves, end-done)
			done = end
		}
		t.Phases = append(t.Phases, ph)
	}
	return t
}

func tagsMatch(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// gateFindings counts an instance's findings that the gate must see after
// patching. A patch closes every finding with a fix that the baseline
// approves (the simulator's model); what stays ACTIVE is a finding without
// a fix, one the baseline leaves (Unpatched), one the rescan brings (New),
// and everything on an instance that was not patched. Of those the gate
// needs the ones with a fix at or above its severity, and required CVEs.
func gateFindings(gate policy.Inspection, in *awssim.Instance, patched bool) int {
	n := 0
	in.EachFindingSpec(func(f awssim.FindingSpec) {
		if gateSees(gate, f, patched) {
			n++
		}
	})
	return n
}

// gateSees reports whether the gate must see the finding after patching.
func gateSees(gate policy.Inspection, f awssim.FindingSpec, patched bool) bool {
	fix := f.Fix != "NO"
	active := !patched && !f.New || patched && (!fix || f.Unpatched || f.New)
	return active && (fix && verify.AtLeast(f.Severity, gate.FailOnSeverity) || slices.Contains(gate.RequireFixed, f.CVE))
}
