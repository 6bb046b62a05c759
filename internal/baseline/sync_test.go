package baseline_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/baseline"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/memnet"
	"github.com/patchgate/patchgate/internal/policy"
)

func examplePolicies(t *testing.T) []*policy.Policy {
	t.Helper()
	set, err := policy.Load(os.DirFS("../.."), "policies")
	if err != nil || len(set.Problems) > 0 {
		t.Fatalf("loading examples: %v %v", err, set.Problems)
	}
	return set.Policies
}

func wantsOf(ps []*policy.Policy) map[string]baseline.Definition {
	out := map[string]baseline.Definition{}
	for _, p := range ps {
		out[p.Metadata.Name] = baseline.Desired(p)
	}
	return out
}

// writes counts the calls that change AWS.
func writes(s *awssim.Sim) int {
	n := 0
	for op, c := range s.Calls() {
		for _, w := range []string{"Create", "Update", "Register", "Deregister", "Delete", "AddTags", "RemoveTags"} {
			if strings.HasPrefix(op, "ssm:"+w) {
				n += c
			}
		}
	}
	return n
}

// startSim serves the demo scenario's simulator over an in-memory network
// on synctest's fake clock, from 2026-11-22 03:00 UTC; awssim.Config(ep, ...)
// reaches it. A test that uses it runs its body in synctest.Test.
func startSim(t *testing.T) (*awssim.Sim, string) {
	t.Helper()
	// Outside a bubble Wait panics ("goroutine is not in a bubble"): the
	// test must run its body in synctest.Test.
	synctest.Wait()
	time.Sleep(time.Until(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC))) // the fake clock moves on to the start
	s := awssim.New(awssim.DemoScenario(awssim.DemoOptions{}), clock.Real{})
	srv := memnet.Serve(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func TestSyncCreateUpdateNoopPrune(t *testing.T) { synctest.Test(t, testSyncCreateUpdateNoopPrune) }

func testSyncCreateUpdateNoopPrune(t *testing.T) {
	s, ep := startSim(t)
	ctx := context.Background()
	cl := ssm.NewFromConfig(awssim.Config(ep, "111122223333", "us-east-1"))
	ps := examplePolicies(t)
	wants := wantsOf(ps)

	// Dry run: says what it would do, writes nothing.
	out, err := baseline.Sync(ctx, cl, "111122223333", "us-east-1", wants, baseline.Options{DryRun: true, Token: "run-1"})
	if err != nil || len(out) != 3 || out[0].Action != baseline.Create || writes(s) != 0 {
		t.Fatalf("dry run: %v %+v writes=%d", err, out, writes(s))
	}

	out, err = baseline.Sync(ctx, cl, "111122223333", "us-east-1", wants, baseline.Options{Token: "run-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if o.Action != baseline.Create || o.BaselineID == "" || len(o.Register) != 1 {
			t.Fatalf("first sync: %+v", o)
		}
	}
	web := out[1] // sorted: ubuntu-fleet, web-fleet, windows-fleet
	if web.Policy != "web-fleet" || web.Register[0] != "patchgate-web-fleet" {
		t.Fatalf("web-fleet outcome: %+v", web)
	}
	got, err := cl.GetPatchBaseline(ctx, &ssm.GetPatchBaselineInput{BaselineId: aws.String(web.BaselineID)})
	if err != nil {
		t.Fatal(err)
	}
	if *got.Name != "patchgate-web-fleet" || got.OperatingSystem != ssmtypes.OperatingSystemAmazonLinux2023 || len(got.ApprovalRules.PatchRules) != 2 ||
		*got.ApprovalRules.PatchRules[0].ApproveAfterDays != 7 || got.RejectedPatchesAction != ssmtypes.PatchActionBlock || got.PatchGroups[0] != "patchgate-web-fleet" {
		t.Fatalf("created baseline: %+v", got)
	}
	pg, err := cl.GetPatchBaselineForPatchGroup(ctx, &ssm.GetPatchBaselineForPatchGroupInput{PatchGroup: aws.String("patchgate-web-fleet"), OperatingSystem: ssmtypes.OperatingSystemAmazonLinux2023})
	if err != nil || *pg.BaselineId != web.BaselineID {
		t.Fatalf("registration: %v %v", err, pg)
	}

	// Second sync: equal, so not one write.
	before := writes(s)
	out, err = baseline.Sync(ctx, cl, "111122223333", "us-east-1", wants, baseline.Options{Token: "run-2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if o.Action != baseline.NoChange || o.Writes() {
			t.Fatalf("second sync: %+v", o)
		}
	}
	if writes(s) != before {
		t.Fatalf("second sync wrote %d times", writes(s)-before)
	}

	// Out of band change: drift is reported field by field, then fixed.
	if _, err := cl.UpdatePatchBaseline(ctx, &ssm.UpdatePatchBaselineInput{BaselineId: aws.String(web.BaselineID), RejectedPatches: []string{},
		ApprovalRules: &ssmtypes.PatchRuleGroup{PatchRules: []ssmtypes.PatchRule{{ApproveAfterDays: aws.Int32(0), ComplianceLevel: ssmtypes.PatchComplianceLevelCritical,
			PatchFilterGroup: &ssmtypes.PatchFilterGroup{PatchFilters: []ssmtypes.PatchFilter{{Key: ssmtypes.PatchFilterKeyClassification, Values: []string{"Security"}}}}}}}}); err != nil {
		t.Fatal(err)
	}
	live, err := baseline.Inventory(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	_, changes, _, _, err := baseline.Drift(ctx, cl, live, wants["web-fleet"])
	if err != nil {
		t.Fatal(err)
	}
	text := ""
	for _, c := range changes {
		text += c.String() + "\n"
	}
	for _, want := range []string{"rejectedPatches: [] -> [kernel-6.1.0-1*]", "approvalRules[0].approval: after 0 days -> after 7 days", "approvalRules[1]: (none) ->"} {
		if !strings.Contains(text, want) {
			t.Errorf("drift lacks %q:\n%s", want, text)
		}
	}
	out, err = baseline.Sync(ctx, cl, "111122223333", "us-east-1", wants, baseline.Options{})
	if err != nil || out[1].Action != baseline.Update {
		t.Fatalf("update: %v %+v", err, out)
	}
	if _, changes, _, _, _ = baseline.Drift(ctx, cl, live, wants["web-fleet"]); len(changes) != 0 {
		t.Fatalf("still drifting after update: %v", changes)
	}

	// A policy removed: its baseline is an orphan, kept until --prune.
	delete(wants, "ubuntu-fleet")
	out, err = baseline.Sync(ctx, cl, "111122223333", "us-east-1", wants, baseline.Options{})
	if err != nil || out[len(out)-1].Action != baseline.Orphan || out[len(out)-1].Policy != "ubuntu-fleet" {
		t.Fatalf("orphan: %v %+v", err, out)
	}
	out, err = baseline.Sync(ctx, cl, "111122223333", "us-east-1", wants, baseline.Options{Prune: true})
	if err != nil || out[len(out)-1].Action != baseline.Prune || len(out[len(out)-1].Deregister) != 1 {
		t.Fatalf("prune: %v %+v", err, out)
	}
	if live, _ = baseline.Inventory(ctx, cl); len(live.Managed()) != 2 {
		t.Fatalf("after prune: %v", live.Managed())
	}
	// The other account was never touched.
	other, _ := baseline.Inventory(ctx, ssm.NewFromConfig(awssim.Config(ep, "444455556666", "us-east-1")))
	if len(other.Managed()) != 0 {
		t.Fatalf("other account has %v", other.Managed())
	}
}

func TestSyncRefusesWhatItDoesNotManage(t *testing.T) {
	synctest.Test(t, testSyncRefusesWhatItDoesNotManage)
}

func testSyncRefusesWhatItDoesNotManage(t *testing.T) {
	s, ep := startSim(t)
	ctx := context.Background()
	cl := ssm.NewFromConfig(awssim.Config(ep, "111122223333", "us-east-1"))
	ps := examplePolicies(t)
	wants := wantsOf(ps)
	// Someone made a baseline with patchgate's name by hand, and registered
	// the web fleet's patch group to another baseline.
	if _, err := cl.CreatePatchBaseline(ctx, &ssm.CreatePatchBaselineInput{Name: aws.String("patchgate-ubuntu-fleet"), OperatingSystem: ssmtypes.OperatingSystemUbuntu}); err != nil {
		t.Fatal(err)
	}
	other, err := cl.CreatePatchBaseline(ctx, &ssm.CreatePatchBaselineInput{Name: aws.String("team-al2023"), OperatingSystem: ssmtypes.OperatingSystemAmazonLinux2023})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RegisterPatchBaselineForPatchGroup(ctx, &ssm.RegisterPatchBaselineForPatchGroupInput{BaselineId: other.BaselineId, PatchGroup: aws.String("patchgate-web-fleet")}); err != nil {
		t.Fatal(err)
	}
	out, err := baseline.Sync(ctx, cl, "111122223333", "us-east-1", wants, baseline.Options{Prune: true})
	if err == nil {
		t.Fatal("want errors")
	}
	msg := err.Error()
	for _, want := range []string{"patchgate-ubuntu-fleet", "is not managed by patchgate", "patch group \"patchgate-web-fleet\" is registered to " + *other.BaselineId} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	// The windows baseline is unaffected by its neighbours' errors, and the
	// unmanaged one is neither updated nor pruned.
	if out[2].Error != "" || out[2].Action != baseline.Create {
		t.Fatalf("windows: %+v", out[2])
	}
	if s.Calls()["ssm:DeletePatchBaseline"] != 0 || s.Calls()["ssm:UpdatePatchBaseline"] != 0 {
		t.Fatalf("touched an unmanaged baseline: %v", s.Calls())
	}
}

func TestDesiredMapsTheFormat(t *testing.T) {
	ps := examplePolicies(t)
	for _, p := range ps {
		d := baseline.Desired(p)
		switch p.Metadata.Name {
		case "windows-fleet":
			if _, ok := d.Rules[0].Filters["MSRC_SEVERITY"]; !ok {
				t.Errorf("windows severities map to MSRC_SEVERITY: %+v", d.Rules[0])
			}
		case "ubuntu-fleet":
			if d.Rules[0].ApproveAfterDays == nil || *d.Rules[0].ApproveAfterDays != 0 {
				t.Errorf("ubuntu rules approve at once: %+v", d.Rules[0])
			}
			if _, ok := d.Rules[0].Filters["PRIORITY"]; !ok {
				t.Errorf("ubuntu raw filters kept: %+v", d.Rules[0])
			}
		}
		if len(d.Description) == 0 || !strings.Contains(d.Description, p.Source.File) {
			t.Errorf("description names the file: %q", d.Description)
		}
	}
}
