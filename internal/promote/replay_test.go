package promote

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/policy"
)

const (
	stagingAccount    = "111122223333"
	productionAccount = "444455556666"
)

func group(acct, name, platform string, missing int) awssim.Group {
	return awssim.Group{Account: acct, Region: homeRegion, Count: 2, Name: name, Platform: platform, Missing: missing,
		Tags: map[string]string{"Ring": name}}
}

// install sends AWS-RunPatchBaseline Install to a group's instances and
// returns them as targets.
func install(t *testing.T, e *env, acct, name, os string, params map[string][]string) []Target {
	t.Helper()
	ctx := context.Background()
	client := ssm.NewFromConfig(awssim.Config(e.url, acct, homeRegion))
	var ids []string
	var targets []Target
	for _, in := range e.sim.Instances(acct, homeRegion) {
		if in.Tags["Ring"] == name {
			ids = append(ids, in.ID)
			targets = append(targets, Target{InstanceID: in.ID, OS: os})
		}
	}
	p := map[string][]string{"Operation": {"Install"}, "RebootOption": {"RebootIfNeeded"}}
	for k, v := range params {
		p[k] = v
	}
	if _, err := client.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPatchBaseline"), InstanceIds: ids, Parameters: p}); err != nil {
		t.Fatal(err)
	}
	return targets
}

func patchSet(t *testing.T, e *env, acct string, targets []Target, from time.Time) []OSPatches {
	t.Helper()
	set, err := PatchSet(context.Background(), ssm.NewFromConfig(awssim.Config(e.url, acct, homeRegion)), targets, from, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func count(set []OSPatches) int {
	n := 0
	for _, s := range set {
		n += len(s.Patches)
	}
	return n
}

// TestExactReplay is two runs: staging installs and records its patch set;
// new patches are released; three days later production, promoted with
// the InstallOverrideList, installs exactly staging's set and not the new
// patches, while an install without the list would have taken them.
func TestExactReplay(t *testing.T) {
	sc := &awssim.Scenario{Accounts: []string{homeAccount, stagingAccount, productionAccount}, Groups: []awssim.Group{
		group(stagingAccount, "stg-linux", "Amazon Linux", 4),
		group(stagingAccount, "stg-win", "Microsoft Windows Server 2022", 3),
		group(productionAccount, "prd-linux", "Amazon Linux", 4),
		group(productionAccount, "prd-win", "Microsoft Windows Server 2022", 3),
		group(productionAccount, "prd-control", "Amazon Linux", 4),
	}}
	e := newEnv(t, sc)
	ctx := context.Background()

	// Run 1: staging.
	t0 := e.clock.Now()
	stg := append(install(t, e, stagingAccount, "stg-linux", "AMAZON_LINUX_2023", nil), install(t, e, stagingAccount, "stg-win", "WINDOWS", nil)...)
	e.clock.Advance(time.Hour)
	set := patchSet(t, e, stagingAccount, stg, t0)
	if count(set) != 7 || len(set) != 2 || set[0].OS != "AMAZON_LINUX_2023" || set[1].OS != "WINDOWS" {
		t.Fatalf("staging patch set = %+v, want 4 Linux and 3 Windows patches", set)
	}
	if p := set[1].Patches[0]; !strings.HasPrefix(p.KB, "KB") || p.KB != p.ID {
		t.Errorf("a Windows patch is named by its KB: %+v", p)
	}
	if p := set[0].Patches[0]; p.Version == "" || !strings.HasPrefix(p.Title, p.ID+":") {
		t.Errorf("a Linux patch carries its version: %+v", p)
	}
	rec := record(Passed, e.clock.Now())
	rec.Started, rec.Patches = t0, set
	if _, err := e.store.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}

	// The vendors release new patches between the runs.
	e.sim.ReleasePatches(t0.Add(24*time.Hour), "", 2)
	e.clock.Advance(79 * time.Hour)

	// Run 2: production, three days later.
	src, err := e.store.Latest(ctx, "payments-rings", "staging", digestA)
	if err != nil {
		t.Fatal(err)
	}
	if ok, reason, _ := Eligible(src, 72*time.Hour, 336*time.Hour, e.clock.Now(), digestA); !ok {
		t.Fatalf("production must be eligible: %s", reason)
	}
	replays, err := e.store.OverrideList(ctx, src, ringsPolicy(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	urls := map[string]string{}
	for _, r := range replays {
		if r.Mechanism != MechanismOverrideList || r.Parameter != "InstallOverrideList" || !r.Exact || !strings.HasPrefix(r.URL, "https://s3.us-east-1.amazonaws.com/"+bucket+"/patchgate/override-lists/") {
			t.Errorf("replay %+v: want an InstallOverrideList URL in the store", r)
		}
		urls[r.OS] = r.URL
	}
	t1 := e.clock.Now()
	prd := append(install(t, e, productionAccount, "prd-linux", "AMAZON_LINUX_2023", map[string][]string{"InstallOverrideList": {urls["AMAZON_LINUX_2023"]}}),
		install(t, e, productionAccount, "prd-win", "WINDOWS", map[string][]string{"InstallOverrideList": {urls["WINDOWS"]}})...)
	control := install(t, e, productionAccount, "prd-control", "AMAZON_LINUX_2023", nil)
	e.clock.Advance(time.Hour)

	got := patchSet(t, e, productionAccount, prd, t1)
	if extra := Outside(src.Patches, got); len(extra) > 0 {
		t.Errorf("production installed patches staging did not: %+v", extra)
	}
	if count(got) != count(src.Patches) {
		t.Errorf("production installed %d patches, want staging's %d", count(got), count(src.Patches))
	}
	// The released patches are still missing on the replayed instances.
	client := ssm.NewFromConfig(awssim.Config(e.url, productionAccount, homeRegion))
	out, err := client.DescribeInstancePatches(ctx, &ssm.DescribeInstancePatchesInput{InstanceId: aws.String(prd[0].InstanceID),
		Filters: []ssmtypes.PatchOrchestratorFilter{{Key: aws.String("State"), Values: []string{"Missing"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Patches) != 2 || !strings.HasPrefix(aws.ToString(out.Patches[0].KBId), "sim-update") {
		t.Errorf("the released patches must stay missing after an exact replay: %+v", out.Patches)
	}
	// Without the list the same install takes the new patches: the check
	// above is not vacuous.
	extra := Outside(src.Patches, patchSet(t, e, productionAccount, control, t1))
	if count(extra) != 2 {
		t.Errorf("an install without the list must take the 2 released patches, Outside = %+v", extra)
	}

	// The list is written once; writing it again finds the same bytes.
	if _, err := e.store.OverrideList(ctx, src, ringsPolicy(t, nil)); err != nil {
		t.Errorf("a second OverrideList for the same record: %v", err)
	}
}

// ringsPolicy is the rings example, edited.
func ringsPolicy(t *testing.T, edit map[string]string) *policy.Policy {
	t.Helper()
	data, err := os.ReadFile("../../policies/rings/payments-rings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	for old, new := range edit {
		if !strings.Contains(src, old) {
			t.Fatalf("edit: %q not in the example", old)
		}
		src = strings.Replace(src, old, new, 1)
	}
	p, probs := policy.Parse("payments-rings.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return p
}

var macPolicy = map[string]string{"operatingSystem: AMAZON_LINUX_2023": "operatingSystem: MACOS", "        severities: [Critical, Important]\n": "", "classifications: [Security, Bugfix]": "classifications: [softwareupdate]"}

// TestCutoffReplay: macOS is not replayed patch by patch; a BaselineOverride
// approves only patches released before staging started (less the rule's
// 3-day delay), so a patch released after staging is not installed, and the
// plan is told the replay is not exact.
func TestCutoffReplay(t *testing.T) {
	sc := &awssim.Scenario{Accounts: []string{homeAccount, stagingAccount, productionAccount}, Groups: []awssim.Group{
		group(stagingAccount, "stg-mac", "macOS Sonoma", 2),
		group(productionAccount, "prd-mac", "macOS Sonoma", 2),
	}}
	e := newEnv(t, sc)
	ctx := context.Background()
	t0 := e.clock.Now()
	stg := install(t, e, stagingAccount, "stg-mac", "MACOS", nil)
	e.clock.Advance(time.Hour)
	rec := record(Passed, e.clock.Now())
	rec.Started, rec.Patches = t0, patchSet(t, e, stagingAccount, stg, t0)
	if count(rec.Patches) != 2 {
		t.Fatalf("staging installed %+v, want 2 patches", rec.Patches)
	}
	if _, err := e.store.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	e.sim.ReleasePatches(t0.Add(24*time.Hour), "mac", 1)
	e.clock.Advance(79 * time.Hour)
	replays, err := e.store.OverrideList(ctx, rec, ringsPolicy(t, macPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if len(replays) != 1 || replays[0].Mechanism != MechanismApprovalCutoff || replays[0].Exact || replays[0].Parameter != "BaselineOverride" ||
		!strings.HasPrefix(replays[0].URL, "s3://"+bucket+"/") || !strings.Contains(replays[0].Note, "cannot be replayed patch by patch") {
		t.Fatalf("replays = %+v, want a BaselineOverride cutoff, said to be inexact", replays)
	}
	// Staging started 2026-11-23; the rule delays 3 days: the cutoff is the day before 2026-11-20.
	if got := replays[0].Cutoff.Format("2006-01-02"); got != "2026-11-19" {
		t.Errorf("cutoff %s, want 2026-11-19", got)
	}
	key := strings.TrimPrefix(replays[0].URL, "s3://"+bucket+"/")
	data, _ := e.sim.Object(bucket, key)
	var doc []struct {
		OperatingSystem string
		ApprovalRules   struct {
			PatchRules []struct {
				PatchFilterGroup struct{ PatchFilters []struct{ Key string } }
				ApproveUntilDate string
				ApproveAfterDays *int
			}
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil || len(doc) != 1 || doc[0].OperatingSystem != "MACOS" || len(doc[0].ApprovalRules.PatchRules) != 1 {
		t.Fatalf("BaselineOverride = %s (%v)", data, err)
	}
	if r := doc[0].ApprovalRules.PatchRules[0]; r.ApproveUntilDate != "2026-11-19" || r.ApproveAfterDays != nil || len(r.PatchFilterGroup.PatchFilters) != 1 {
		t.Errorf("rule = %+v, want the policy's filter with the cutoff date instead of the delay", r)
	}
	t1 := e.clock.Now()
	prd := install(t, e, productionAccount, "prd-mac", "MACOS", map[string][]string{"BaselineOverride": {replays[0].URL}})
	e.clock.Advance(time.Hour)
	if extra := Outside(rec.Patches, patchSet(t, e, productionAccount, prd, t1)); len(extra) > 0 {
		t.Errorf("production installed a patch released after staging: %+v", extra)
	}
}

func TestReplayNothingInstalled(t *testing.T) {
	e := newEnv(t, nil)
	rec := record(Passed, start)
	rec.Seq, rec.Patches = 1, nil
	replays, err := e.store.OverrideList(context.Background(), rec, ringsPolicy(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(replays) != 1 || replays[0].OS != "AMAZON_LINUX_2023" || replays[0].Mechanism != MechanismNothing || replays[0].URL != "" {
		t.Fatalf("replays = %+v, want: nothing to send for the policy's system", replays)
	}
	if keys := e.sim.Objects(bucket, "patchgate/override-lists/"); len(keys) != 0 {
		t.Errorf("no list is written for nothing: %v", keys)
	}
	other := ringsPolicy(t, map[string]string{"name: payments-rings": "name: other"})
	if _, err := e.store.OverrideList(context.Background(), rec, other); err == nil {
		t.Error("a record of another policy must not be replayed")
	}
}

func TestOverrideListContentAndTamper(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	rec := record(Passed, start)
	rec.Seq = 1
	replays, err := e.store.OverrideList(ctx, rec, ringsPolicy(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimPrefix(replays[0].URL, "https://s3.us-east-1.amazonaws.com/"+bucket+"/")
	data, _ := e.sim.Object(bucket, key)
	if want := "patches:\n    - id: openssh-server.x86_64\n      title: openssh-server.x86_64:0:1.0.1-1.amzn2023\n"; string(data) != want {
		t.Errorf("list =\n%s\nwant\n%s", data, want)
	}
	e.sim.SetObject(bucket, key, []byte("patches:\n  - id: '*'\n"))
	if _, err := e.store.OverrideList(ctx, rec, ringsPolicy(t, nil)); err == nil || !strings.Contains(err.Error(), "other content") {
		t.Errorf("a list changed in the store must be refused, got %v", err)
	}
}
