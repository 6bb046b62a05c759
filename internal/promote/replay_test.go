package promote

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/awssim"
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
	replays, err := e.store.OverrideList(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	urls := map[string]string{}
	for _, r := range replays {
		if r.Mechanism != MechanismOverrideList || !strings.HasPrefix(r.URL, "https://s3.us-east-1.amazonaws.com/"+bucket+"/patchgate/override-lists/") {
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
	if _, err := e.store.OverrideList(ctx, src); err != nil {
		t.Errorf("a second OverrideList for the same record: %v", err)
	}
}

func TestOverrideListFallbackAndTamper(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	rec := record(Passed, start)
	rec.Seq = 1
	rec.Patches = append(rec.Patches, OSPatches{OS: "MACOS", Patches: []Patch{{ID: "macOS Sonoma 14.6", Title: "macOS Sonoma 14.6"}}})
	replays, err := e.store.OverrideList(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(replays) != 2 || replays[1].Mechanism != MechanismApprovalCutoff || !replays[1].Cutoff.Equal(start) || replays[1].URL != "" || !strings.Contains(replays[1].Note, "cannot be replayed") {
		t.Fatalf("macOS replay = %+v, want the approval cutoff at the source's time, said so", replays)
	}
	key := strings.TrimPrefix(replays[0].URL, "https://s3.us-east-1.amazonaws.com/"+bucket+"/")
	data, _ := e.sim.Object(bucket, key)
	if want := "patches:\n    - id: openssh-server.x86_64\n      title: openssh-server.x86_64:0:1.0.1-1.amzn2023\n"; string(data) != want {
		t.Errorf("list =\n%s\nwant\n%s", data, want)
	}
	e.sim.SetObject(bucket, key, []byte("patches:\n  - id: '*'\n"))
	if _, err := e.store.OverrideList(ctx, rec); err == nil || !strings.Contains(err.Error(), "other patches") {
		t.Errorf("a list changed in the store must be refused, got %v", err)
	}
}
