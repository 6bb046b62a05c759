package rollout

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/exitcode"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

const (
	stagingAcct = "111122223333"
	prodA       = "444455556666"
	prodB       = "777788889999"
	homeAcct    = "999988887777"
	ringsBucket = "acme-patchgate-records"
)

// ringsScenario: a staging account and two production accounts, and the
// promotion store's bucket in a home account.
func ringsScenario() *awssim.Scenario {
	sc := &awssim.Scenario{Accounts: []string{stagingAcct, prodA, prodB, homeAcct}, PatchDuration: 30 * time.Minute,
		Buckets: []awssim.Bucket{{Name: ringsBucket, Account: homeAcct, Region: "us-east-1"}}}
	for _, g := range []struct {
		acct, name string
		n          int
	}{{stagingAcct, "stg", 3}, {prodA, "prda", 5}, {prodB, "prdb", 5}} {
		sc.Groups = append(sc.Groups, awssim.Group{Account: g.acct, Region: "us-east-1", Count: g.n, Name: g.name,
			Platform: "Amazon Linux", Tags: map[string]string{"App": "payments"}, Missing: 4})
	}
	return sc
}

// ringsPolicy is the example policies/rings/payments-rings.yaml in one
// region, with edits.
func ringsPolicy(t *testing.T, edits map[string]string) *policy.Policy {
	t.Helper()
	data, err := os.ReadFile("../../policies/rings/payments-rings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(data), "regions: [us-east-1, eu-west-1]", "regions: [us-east-1]", 1)
	for old, new := range edits {
		if !strings.Contains(src, old) {
			t.Fatalf("%q is not in the example", old)
		}
		src = strings.Replace(src, old, new, 1)
	}
	p, probs := policy.Parse("payments-rings.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatal(probs.Error())
	}
	return p
}

func targetPhase(t *testing.T, r *result.Run, account, phase string) result.Phase {
	t.Helper()
	for _, tg := range r.Policies[0].Targets {
		if tg.AccountID != account {
			continue
		}
		for _, ph := range tg.Phases {
			if ph.Name == phase {
				return ph
			}
		}
	}
	t.Fatalf("no phase %s in %s: %+v", phase, account, r.Policies[0].Targets)
	return result.Phase{}
}

func sendsTo(s *awssim.Sim, account string) []awssim.SendRecord {
	var out []awssim.SendRecord
	for _, r := range s.Sends() {
		if r.Account == account {
			out = append(out, r)
		}
	}
	return out
}

// TestRingsPromoteAcrossRuns: run 1 patches the staging account only and
// production waits (status waiting, exit 0, with when it becomes
// eligible); three days later, run 2 promotes production in both
// production accounts, each through its own role, with exactly the patch
// set staging installed: patches released since are not installed.
func TestRingsPromoteAcrossRuns(t *testing.T) { synctest.Test(t, testRingsPromoteAcrossRuns) }

func testRingsPromoteAcrossRuns(t *testing.T) {
	h := newHarness(t, ringsScenario())
	h.opt.ForceWindow = true
	p := ringsPolicy(t, nil)

	h.opt.RunID = "1"
	r1 := h.run(context.Background(), p)
	if r1.Status != result.StatusWaiting || exitcode.ForStatus(r1.Status) != exitcode.OK {
		t.Fatalf("run 1: %s (%s)", r1.Status, r1.Summary)
	}
	stg := targetPhase(t, r1, stagingAcct, "staging")
	if stg.Status != result.StatusPassed || !strings.HasPrefix(stg.Record, "patchgate/records/payments-rings/staging/") {
		t.Fatalf("run 1 staging: %s %+v record %q", stg.Status, stg.Reasons, stg.Record)
	}
	for _, acct := range []string{prodA, prodB} {
		prd := targetPhase(t, r1, acct, "production")
		if prd.Status != result.StatusWaiting || !strings.Contains(prd.Reasons[0].Message, "eligible from") {
			t.Fatalf("run 1 production in %s: %s %+v", acct, prd.Status, prd.Reasons)
		}
		if n := len(sendsTo(h.sim, acct)); n != 0 {
			t.Fatalf("run 1 sent %d commands to production account %s", n, acct)
		}
	}

	// Vendors release patches after staging passed; three days pass.
	h.sim.ReleasePatches(h.clock.Now().Add(time.Hour), "", 2)
	time.Sleep(73 * time.Hour)

	h.opt.RunID = "2"
	r2 := h.run(context.Background(), p)
	if r2.Status != result.StatusPassed {
		t.Fatalf("run 2: %s (%s) %+v", r2.Status, r2.Summary, r2.Policies[0].Targets)
	}
	for _, acct := range []string{prodA, prodB} {
		prd := targetPhase(t, r2, acct, "production")
		if prd.Status != result.StatusPassed || prd.Promotion == nil || prd.Promotion.SourceRun != "1" ||
			prd.Promotion.Mechanism != "InstallOverrideList" || !prd.Promotion.Exact {
			t.Fatalf("run 2 production in %s: %s %+v promotion %+v", acct, prd.Status, prd.Reasons, prd.Promotion)
		}
		sends := sendsTo(h.sim, acct)
		if len(sends) == 0 {
			t.Fatalf("run 2 sent nothing to %s", acct)
		}
		for _, s := range sends {
			if len(s.Parameters["InstallOverrideList"]) != 1 {
				t.Fatalf("production in %s was sent without the replay list: %v", acct, s.Parameters)
			}
		}
	}
	// Staging in run 2 installed the released patches; production did not.
	if stg2 := targetPhase(t, r2, stagingAcct, "staging"); stg2.Status != result.StatusPassed {
		t.Fatalf("run 2 staging %s %+v", stg2.Status, stg2.Reasons)
	}
}

// TestRingsStagingFailureWritesAFailedRecord: a failed staging writes a
// failed record, and production is never sent, in this run or the next.
func TestRingsStagingFailureWritesAFailedRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := ringsScenario()
		sc.Groups[0].Behavior = "fail"
		h := newHarness(t, sc)
		h.opt.ForceWindow = true
		p := ringsPolicy(t, nil)
		r1 := h.run(context.Background(), p)
		stg := targetPhase(t, r1, stagingAcct, "staging")
		if r1.Status != result.StatusFailed || stg.Record == "" {
			t.Fatalf("run 1 %s, staging record %q", r1.Status, stg.Record)
		}
		time.Sleep(80 * time.Hour)
		h.opt.RunID = "2"
		r2 := h.run(context.Background(), p)
		prd := targetPhase(t, r2, prodA, "production")
		if prd.Status == result.StatusPassed || len(sendsTo(h.sim, prodA))+len(sendsTo(h.sim, prodB)) != 0 {
			t.Fatalf("production after a failed staging: %s %+v", prd.Status, prd.Reasons)
		}
	})
}

// TestRingsUntrustedRecordSendsNothing: a record changed in the bucket after
// it was written is refused with a clear error before anything is sent.
func TestRingsUntrustedRecordSendsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ringsScenario())
		h.opt.ForceWindow = true
		p := ringsPolicy(t, nil)
		r1 := h.run(context.Background(), p)
		key := targetPhase(t, r1, stagingAcct, "staging").Record
		if key == "" {
			t.Fatal("no record written")
		}
		h.sim.SetObject(ringsBucket, key, []byte(`{"schema":"patchgate.dev/promotion-record/v1","policy":"payments-rings","phase":"staging","verdict":"passed"}`))
		time.Sleep(80 * time.Hour)
		before := len(h.sim.Sends())
		h.opt.RunID = "2"
		r2 := h.run(context.Background(), p)
		if r2.Status != result.StatusError || exitcode.ForStatus(r2.Status) != exitcode.Usage || len(h.sim.Sends()) != before {
			t.Fatalf("run 2 %s, %d sends: %s", r2.Status, len(h.sim.Sends())-before, r2.Policies[0].Reason)
		}
		if !strings.Contains(r2.Policies[0].Reason, key) {
			t.Fatalf("the error must name the record: %s", r2.Policies[0].Reason)
		}
	})
}

// TestRingsStoreDeniedSendsNothing: a store patchgate may not write stops
// the run before anything is sent, naming the bucket and the IAM action.
func TestRingsStoreDeniedSendsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ringsScenario())
		h.opt.ForceWindow = true
		h.sim.Deny("s3:PutObject")
		r := h.run(context.Background(), ringsPolicy(t, nil))
		if r.Status != result.StatusError || len(h.sim.Sends()) != 0 {
			t.Fatalf("%s, %d sends", r.Status, len(h.sim.Sends()))
		}
		if why := r.Policies[0].Reason; !strings.Contains(why, "s3:PutObject") || !strings.Contains(why, ringsBucket) {
			t.Fatalf("reason %q", why)
		}
	})
}

// TestIndependentTargetsOptOut: only the policy's explicit
// independentTargets lets an account-region move on while staging failed
// in another.
func TestIndependentTargetsOptOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := scenario(fleet{staging: 2, production: 4})
		for i, g := range sc.Groups {
			if g.Account == "444455556666" && g.Region == "eu-west-1" && g.Name == "stg" {
				sc.Groups[i].Behavior = "fail"
			}
		}
		h := newHarness(t, sc)
		src := strings.Replace(testPolicy, "  regions: [us-east-1, eu-west-1]\n", "  regions: [us-east-1, eu-west-1]\n  rings: {independentTargets: true}\n", 1)
		r := h.run(context.Background(), mustPolicy(t, src))
		if got := phaseOf(t, r, "444455556666", "eu-west-1", "production"); got.Status != result.StatusHalted {
			t.Fatalf("production where staging failed: %s", got.Status)
		}
		if got := phaseOf(t, r, "111122223333", "us-east-1", "production"); got.Status != result.StatusPassed {
			t.Fatalf("production elsewhere: %s %+v", got.Status, got.Reasons)
		}
		if n := sendsFor(h.sim, "production"); n != 9 {
			t.Fatalf("production sends %d, want 3 waves in each of the 3 other account-regions", n)
		}
	})
}
