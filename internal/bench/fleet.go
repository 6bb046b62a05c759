// Package bench measures patchgate at fleet scale: full `run` flows, in
// process, against the simulator over an in-memory network, on synctest's
// fake clock. Every SDK call takes a realistic latency and every patch its
// simulated duration, yet a 50,000-instance run takes seconds: fake time
// advances only when every goroutine of the run waits. That makes the
// figures (API calls, clock time, overhead) exact and repeatable on any
// machine; only wall time and memory depend on the machine.
//
// The fleet runs the simulator's realistic model (realism.go). Beside
// patchgate it runs, on the same fleet and policy, the competent script
// (script.go) and the naive waiter reference (naive.go), and computes the
// floor of API calls no tool can go below (floor.go).
package bench

import (
	"fmt"
	"strings"
	"testing/fstest"
	"time"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/policy"
)

// Fleet is one benchmark size: Instances spread evenly over Regions
// account-regions (1: one account and region; 8: two accounts, four regions).
type Fleet struct {
	Instances int `json:"instances"`
	Regions   int `json:"regions"`
}

func (f Fleet) String() string {
	return fmt.Sprintf("%d instances / %d account-regions", f.Instances, f.Regions)
}

// PatchDuration is how long AWS-RunPatchBaseline takes on one instance.
const PatchDuration = 30 * time.Minute

var (
	accounts = []string{"111122223333", "444455556666"}
	regions  = []string{"us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2"}
)

// account is the i-th account id of a fleet: the first two as ever, then
// made-up ids for fleets over more accounts (200,000 over 40).
func account(i int) string {
	if i < len(accounts) {
		return accounts[i]
	}
	return fmt.Sprintf("%012d", 555500000000+i)
}

// targets lists the account-regions of a fleet: up to 4 regions per
// account (1: one account and region; 8: 2 accounts x 4 regions; 40: 10
// accounts x 4 regions).
func (f Fleet) targets() [][2]string {
	nRegion := min(max(f.Regions, 1), len(regions))
	nAcct := max(f.Regions/nRegion, 1)
	var out [][2]string
	for a := 0; a < nAcct; a++ {
		for r := 0; r < nRegion; r++ {
			out = append(out, [2]string{account(a), regions[r]})
		}
	}
	return out
}

// accountIDs are the fleet's accounts, in order.
func (f Fleet) accountIDs() []string {
	var out []string
	for _, t := range f.targets() {
		if len(out) == 0 || out[len(out)-1] != t[0] {
			out = append(out, t[0])
		}
	}
	return out
}

// Scenario is the simulated estate: per account-region, 5% staging, the
// rest production, of which 0.5% have lost their SSM agent.
func (f Fleet) Scenario(latency time.Duration) *awssim.Scenario {
	sc := &awssim.Scenario{Accounts: f.accountIDs(), PatchDuration: PatchDuration, Latency: latency, Realism: realism()}
	ts := f.targets()
	for i, t := range ts {
		n := f.Instances / len(ts)
		if i < f.Instances%len(ts) {
			n++
		}
		stg := max(1, n*5/100)
		lost := n / 200
		prd := n - stg - lost
		tags := func(env string) map[string]string { return map[string]string{"Environment": env, "App": "fleet"} }
		sc.Groups = append(sc.Groups,
			awssim.Group{Account: t[0], Region: t[1], Count: stg, Name: "stg", Tags: tags("staging"), Missing: 5},
			awssim.Group{Account: t[0], Region: t[1], Count: prd, Name: "prd", Tags: tags("production"), Missing: 5},
			awssim.Group{Account: t[0], Region: t[1], Count: lost, Name: "prd-lost", Tags: tags("production"), Ping: "ConnectionLost", Missing: 5},
		)
	}
	return sc
}

// policyYAML is the policy every size runs: a staging ring gated on
// compliance and Inspector, a soak, then production in three waves.
const policyYAML = `apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata:
  name: fleet
  description: benchmark fleet
spec:
  operatingSystem: AMAZON_LINUX_2023
  baseline:
    approvalRules:
      - {classifications: [Security, Bugfix], severities: [Critical, Important], approveAfterDays: 7}
  install: {rebootOption: RebootIfNeeded, deliveryTimeout: 10m, executionTimeout: 8h}
  accounts:
%s  regions: [%s]
  phases:
    - name: staging
      targets: {tags: {Environment: staging, App: fleet}}
      maxConcurrency: "50%%"
      maxErrors: "%s"
      successThreshold: "90%%"
      soak: 30m
      verify:
        compliance: true
        inspector: {enabled: true, failOnSeverity: HIGH, rescanTimeout: 45m}
    - name: production
      targets: {tags: {Environment: production, App: fleet}}
      maxConcurrency: "50%%"
      maxErrors: "%s"
      successThreshold: "90%%"
      offline: skip
      waves: ["10%%", "50%%", "100%%"]
      verify:
        compliance: true
        inspector: {enabled: true, failOnSeverity: CRITICAL, rescanTimeout: 45m}
`

// maxErrors are the staging and production phases' maxErrors: 5% of a
// wave, as an operator would set it against the realistic model's few
// failures, but at least 2 where 5% of the smallest wave of an
// account-region is less (a wave of 12 would otherwise stop at its first
// failure, which says nothing about patchgate's cost).
func (f Fleet) maxErrors() (staging, production string) {
	n := f.Instances / len(f.targets())
	stg := max(1, n*5/100)
	prd := n - stg - n/200
	pick := func(smallest int) string {
		if smallest*5/100 < 2 {
			return "2"
		}
		return "5%"
	}
	return pick(stg), pick((prd + 9) / 10)
}

// Policy is the fleet's policy, loaded and validated like any policy file.
func (f Fleet) Policy() (*policy.Policy, error) {
	var accts strings.Builder
	seenAcct, seenRegion := map[string]bool{}, map[string]bool{}
	var rs []string
	for _, t := range f.targets() {
		if !seenAcct[t[0]] {
			seenAcct[t[0]] = true
			fmt.Fprintf(&accts, "    - id: %q\n", t[0])
			if t[0] != accounts[0] {
				fmt.Fprintf(&accts, "      roleArn: arn:aws:iam::%s:role/patchgate-target\n", t[0])
			}
		}
		if !seenRegion[t[1]] {
			seenRegion[t[1]] = true
			rs = append(rs, t[1])
		}
	}
	stg, prd := f.maxErrors()
	fsys := fstest.MapFS{"fleet.yaml": &fstest.MapFile{Data: []byte(fmt.Sprintf(policyYAML, accts.String(), strings.Join(rs, ", "), stg, prd))}}
	set, err := policy.Load(fsys, "fleet.yaml")
	if err != nil {
		return nil, err
	}
	if len(set.Problems) > 0 {
		return nil, fmt.Errorf("benchmark policy: %v", set.Problems)
	}
	return set.Policies[0], nil
}
