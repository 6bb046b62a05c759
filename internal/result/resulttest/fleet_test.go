package resulttest

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/patchgate/patchgate/internal/result"
)

type tally struct {
	instances, commands, failed, timedOut, skipped, offline, withError int
	findings, fixed, remaining, noFix, newF, evidence                  int
	maxFindings                                                        int
	bySeverity                                                         map[string]int
	nonCompliant, pendingReboot                                        int
	reasons                                                            map[string]int
	statuses                                                           map[result.Status]int
}

func count(r *result.Run) tally {
	c := tally{bySeverity: map[string]int{}, reasons: map[string]int{}, statuses: map[result.Status]int{}}
	for _, p := range r.Policies {
		for _, t := range p.Targets {
			for _, ph := range t.Phases {
				c.statuses[ph.Status]++
				for _, rs := range ph.Reasons {
					c.reasons[rs.Code]++
				}
				perInstance := map[string]int{}
				for _, w := range ph.Waves {
					c.commands += len(w.Commands)
					for _, in := range w.Instances {
						c.instances++
						switch in.Outcome {
						case result.OutcomeFailed:
							c.failed++
						case result.OutcomeTimedOut:
							c.timedOut++
						case result.OutcomeSkipped:
							c.skipped++
						case result.OutcomeOffline:
							c.offline++
						}
						if in.Error != "" {
							c.withError++
						}
					}
				}
				in := ph.Verification.Inspector
				c.fixed += len(in.Fixed)
				c.remaining += len(in.Remaining)
				c.noFix += len(in.NoFix)
				c.newF += len(in.New)
				c.evidence += len(in.Evidence)
				for _, l := range [][]result.Finding{in.Fixed, in.Remaining, in.NoFix, in.New} {
					for _, f := range l {
						c.findings++
						c.bySeverity[f.Severity]++
						perInstance[f.InstanceID]++
					}
				}
				for _, n := range perInstance {
					c.maxFindings = max(c.maxFindings, n)
				}
				c.nonCompliant += len(ph.Verification.Compliance.NonCompliant)
				c.pendingReboot += ph.Verification.Compliance.PendingReboot.Instances
			}
		}
	}
	return c
}

// TestRealisticIsSeeded: the same seed gives the same run, another seed
// another one.
func TestRealisticIsSeeded(t *testing.T) {
	f := Fleet{Seed: 7, Instances: 2000, Targets: 3}
	a, b := Realistic(f), Realistic(f)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two different runs")
	}
	f.Seed = 8
	if reflect.DeepEqual(a, Realistic(f)) {
		t.Fatal("another seed gave the same run")
	}
}

// TestRealisticShape: the rates and distributions the package documents,
// within what a 20,000-instance draw varies by.
func TestRealisticShape(t *testing.T) {
	r := Realistic(Fleet{Seed: 1, Instances: 20000, Targets: 8})
	c := count(r)
	rate := func(n int) float64 { return float64(n) / float64(c.instances) }
	patched := c.evidence
	for _, tc := range []struct {
		what     string
		got      float64
		from, to float64
	}{
		{"instances", float64(c.instances), 20000, 20000},
		{"commands (50 ids each)", float64(c.commands), 400, 440},
		{"failed", rate(c.failed), 0.0065, 0.0095}, // 3% in one of 8 targets
		{"timed out", rate(c.timedOut), 0.0005, 0.0015},
		{"skipped (lost agent, production)", rate(c.skipped), 0.003, 0.005},
		{"findings per patched instance", float64(c.findings) / float64(patched), 27, 33},
		{"most findings LOW or MEDIUM", float64(c.bySeverity["LOW"]+c.bySeverity["MEDIUM"]) / float64(c.findings), 0.8, 0.86},
		{"findings without a fix", float64(c.noFix) / float64(c.findings), 0.13, 0.17},
		{"long tail: most findings on one instance", float64(c.maxFindings), 150, 300},
		{"pending reboots", float64(c.pendingReboot) / float64(patched), 0.025, 0.035},
	} {
		t.Logf("%s: %.4f", tc.what, tc.got)
		if tc.got < tc.from || tc.got > tc.to {
			t.Errorf("%s: %.4f, want %.4f to %.4f", tc.what, tc.got, tc.from, tc.to)
		}
	}
	if c.withError != c.failed+c.timedOut+countInconclusive(r) {
		t.Errorf("%d instances carry an error, %d failed or timed out or inconclusive", c.withError, c.failed+c.timedOut+countInconclusive(r))
	}
	if r.Status != result.StatusFailed || c.statuses[result.StatusFailed] != 1 || c.reasons["success-threshold"] != 1 || c.reasons["inspector-severity"] != 1 {
		t.Errorf("one production phase should fail on its threshold and a CRITICAL finding: run %s, phases %v, reasons %v", r.Status, c.statuses, c.reasons)
	}
	if c.reasons["no-rescan"] == 0 || c.nonCompliant == 0 {
		t.Errorf("no uncovered instance or non-compliant instance: reasons %v, %d non-compliant", c.reasons, c.nonCompliant)
	}

	g := count(Realistic(Fleet{Seed: 1, Instances: 20000, Targets: 8, Listing: GateFindings}))
	if g.instances != c.instances || g.fixed != 0 || g.noFix != 0 || g.remaining == 0 || g.remaining > c.remaining {
		t.Errorf("GateFindings lists %d fixed, %d without a fix, %d remaining (all: %d)", g.fixed, g.noFix, g.remaining, c.remaining)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Fatal(err)
	}
}

func countInconclusive(r *result.Run) int {
	n := 0
	for _, t := range r.Policies[0].Targets {
		for _, ph := range t.Phases {
			n += ph.Counts.Inconclusive
		}
	}
	return n
}
