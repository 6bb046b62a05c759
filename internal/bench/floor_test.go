package bench

import (
	"maps"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/policy"
)

// The floor's arithmetic, against figures worked out by hand.
func TestComputeFloor(t *testing.T) {
	// The bench's 10,000 instances over 1 account-region: staging 500,
	// production 9,500 listed of which 9,450 online, cut 10/50/100% into
	// 945, 3,780 and 4,725.
	tenK := FloorTarget{Phases: []FloorPhase{
		{Listed: 500, Waves: []int{500}, Compliance: true, Inspector: true},
		{Listed: 9500, Waves: []int{945, 3780, 4725}, Compliance: true, Inspector: true, GateFindings: 130},
	}}
	for _, tc := range []struct {
		name    string
		targets []FloorTarget
		assumed int
		want    map[string]int
		total   int
	}{{
		// DescribeInstanceInformation 10 + 190; SendCommand 10 + 19+76+95;
		// ListCommands one a wave; patch states 10 + ceil(9450/50) = 189;
		// coverage ceil(500/200) + ceil(9450/200) = 3 + 48; findings 1 (none
		// to see, one empty page) + ceil(130/100) = 2; the lock 1 + 1.
		name: "10k over 1", targets: []FloorTarget{tenK},
		want: map[string]int{"ssm:DescribeInstanceInformation": 200, "ssm:SendCommand": 200, "ssm:ListCommands": 4,
			"ssm:DescribeInstancePatchStates": 199, "inspector2:ListCoverage": 51, "inspector2:ListFindings": 3,
			"ssm:PutParameter": 1, "ssm:DeleteParameter": 1},
		total: 659,
	}, {
		// A phase that matches nothing still lists once; nothing else.
		name: "empty phase", targets: []FloorTarget{{Phases: []FloorPhase{{Compliance: true, Inspector: true}}}},
		want:  map[string]int{"ssm:DescribeInstanceInformation": 1, "ssm:PutParameter": 1, "ssm:DeleteParameter": 1},
		total: 3,
	}, {
		// Gates off: no patch states, no Inspector; an empty wave costs
		// nothing; 51 ids are two sends; two targets of one assumed
		// account are one AssumeRole.
		name: "no gates, two regions", assumed: 1,
		targets: []FloorTarget{{Phases: []FloorPhase{{Listed: 60, Waves: []int{0, 51}}}}, {Phases: []FloorPhase{{Listed: 50, Waves: []int{50}}}}},
		want: map[string]int{"ssm:DescribeInstanceInformation": 2 + 1, "ssm:SendCommand": 2 + 1, "ssm:ListCommands": 2,
			"ssm:PutParameter": 2, "ssm:DeleteParameter": 2, "sts:AssumeRole": 1},
		total: 13,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := ComputeFloor(tc.targets, tc.assumed)
			if !maps.Equal(f.Calls, tc.want) || f.Total != tc.total {
				t.Errorf("floor %v (total %d), want %v (total %d)", f.Calls, f.Total, tc.want, tc.total)
			}
		})
	}
}

// What the Inspector gate must see after patching: findings with a fix at
// or above its severity that the patch leaves, everything on an instance
// that was not patched, and required CVEs.
func TestGateSees(t *testing.T) {
	gate := policy.Inspection{Enabled: true, FailOnSeverity: "HIGH", RequireFixed: []string{"CVE-REQ"}}
	for _, tc := range []struct {
		f       awssim.FindingSpec
		patched bool
		want    bool
	}{
		{awssim.FindingSpec{CVE: "a", Severity: "CRITICAL"}, true, false},                       // fixed by the patch
		{awssim.FindingSpec{CVE: "a", Severity: "CRITICAL"}, false, true},                       // not patched: still there
		{awssim.FindingSpec{CVE: "a", Severity: "MEDIUM"}, false, false},                        // below the gate
		{awssim.FindingSpec{CVE: "a", Severity: "HIGH", Fix: "NO"}, true, false},                // no fix: not the gate's
		{awssim.FindingSpec{CVE: "a", Severity: "HIGH", Fix: "NO"}, false, false},               // no fix, unpatched alike
		{awssim.FindingSpec{CVE: "a", Severity: "HIGH", Unpatched: true}, true, true},           // the baseline leaves it
		{awssim.FindingSpec{CVE: "a", Severity: "HIGH", Fix: "PARTIAL"}, false, true},           // a partial fix is a fix
		{awssim.FindingSpec{CVE: "a", Severity: "CRITICAL", New: true}, true, true},             // the rescan brings it
		{awssim.FindingSpec{CVE: "a", Severity: "CRITICAL", New: true}, false, false},           // no rescan, never there
		{awssim.FindingSpec{CVE: "CVE-REQ", Severity: "LOW", Unpatched: true}, true, true},      // required, still active
		{awssim.FindingSpec{CVE: "CVE-REQ", Severity: "LOW"}, true, false},                      // required and fixed
		{awssim.FindingSpec{CVE: "CVE-REQ", Severity: "LOW", Fix: "NO"}, false, true},           // required, no fix
		{awssim.FindingSpec{CVE: "a", Severity: "HIGH", Unpatched: true}, false, true},          // unpatched instance
		{awssim.FindingSpec{CVE: "a", Severity: "LOW", Fix: "PARTIAL", New: true}, true, false}, // below the gate
	} {
		if got := gateSees(gate, tc.f, tc.patched); got != tc.want {
			t.Errorf("%+v patched %v: sees %v, want %v", tc.f, tc.patched, got, tc.want)
		}
	}
}

// The floor's inputs from a fleet: tags pick the phase, lost agents are
// listed but not sent to, waves cut the online ones, findings counted per
// phase.
func TestFleetFloorInputs(t *testing.T) {
	crit := []awssim.FindingSpec{{CVE: "c", Severity: "CRITICAL"}, {CVE: "h", Severity: "HIGH", Unpatched: true}, {CVE: "m", Severity: "MEDIUM", Fix: "NO"}}
	tags := func(env string) map[string]string { return map[string]string{"Environment": env, "App": "fleet"} }
	sc := &awssim.Scenario{Accounts: []string{accounts[0]}, PatchDuration: time.Minute, Groups: []awssim.Group{
		{Account: accounts[0], Region: regions[0], Count: 3, Name: "stg", Tags: tags("staging"), Findings: crit},
		{Account: accounts[0], Region: regions[0], Count: 100, Name: "prd", Tags: tags("production"), Findings: crit},
		{Account: accounts[0], Region: regions[0], Count: 2, Name: "lost", Tags: tags("production"), Ping: "ConnectionLost", Findings: crit},
		{Account: accounts[0], Region: regions[0], Count: 7, Name: "other", Tags: map[string]string{"Environment": "staging", "App": "other"}, Findings: crit},
	}}
	pol, err := Fleet{Instances: 105, Regions: 1}.Policy()
	if err != nil {
		t.Fatal(err)
	}
	plan, err := policy.Compile(pol)
	if err != nil {
		t.Fatal(err)
	}
	got := floorTarget(plan, awssim.New(sc, clock.Real{}).Instances(accounts[0], regions[0]))
	// Staging (HIGH): 3 listed and sent, each keeps its unpatched HIGH.
	// Production (CRITICAL): 102 listed, 100 sent in 10, 40 and 50; the
	// unpatched HIGH is below the gate, the 2 lost keep their CRITICAL.
	want := FloorTarget{Phases: []FloorPhase{
		{Listed: 3, Waves: []int{3}, Compliance: true, Inspector: true, GateFindings: 3},
		{Listed: 102, Waves: []int{10, 40, 50}, Compliance: true, Inspector: true, GateFindings: 2},
	}}
	if len(got.Phases) != len(want.Phases) {
		t.Fatalf("phases %+v, want %+v", got.Phases, want.Phases)
	}
	for i := range want.Phases {
		g, w := got.Phases[i], want.Phases[i]
		if g.Listed != w.Listed || !equalInts(g.Waves, w.Waves) || g.Compliance != w.Compliance || g.Inspector != w.Inspector || g.GateFindings != w.GateFindings {
			t.Errorf("phase %d: %+v, want %+v", i, g, w)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The fleet's account-regions and its policy's error tolerance.
func TestFleetShape(t *testing.T) {
	for _, tc := range []struct {
		f              Fleet
		targets, accts int
		stg, prd       string
	}{
		{Fleet{100, 1}, 1, 1, "2", "2"},         // staging 5, first wave 10
		{Fleet{1000, 8}, 8, 2, "2", "2"},        // 125 each: staging 6, first wave 12
		{Fleet{10000, 1}, 1, 1, "5%", "5%"},     // staging 500, first wave 945
		{Fleet{10000, 8}, 8, 2, "5%", "5%"},     // staging 62 (3.1 -> 3), first wave 119
		{Fleet{200000, 40}, 40, 10, "5%", "5%"}, // 5,000 each
		{Fleet{1000, 1}, 1, 1, "5%", "5%"},      // staging 50 (2.5 -> 2)
		{Fleet{2000, 8}, 8, 2, "2", "2"},        // staging 12 (0.6), first wave 24 (1.2)
	} {
		ts := tc.f.targets()
		stg, prd := tc.f.maxErrors()
		if len(ts) != tc.targets || len(tc.f.accountIDs()) != tc.accts || stg != tc.stg || prd != tc.prd {
			t.Errorf("%s: %d targets over %d accounts, maxErrors %s/%s; want %d, %d, %s/%s", tc.f, len(ts), len(tc.f.accountIDs()), stg, prd, tc.targets, tc.accts, tc.stg, tc.prd)
		}
		seen := map[[2]string]bool{}
		for _, x := range ts {
			if seen[x] || len(x[0]) != 12 {
				t.Errorf("%s: target %v twice or a malformed account", tc.f, x)
			}
			seen[x] = true
		}
		if _, err := tc.f.Policy(); err != nil {
			t.Errorf("%s: %v", tc.f, err)
		}
	}
}
