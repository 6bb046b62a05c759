package backup

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/policy"
)

const acct, region = "111122223333", "us-east-1"

var start = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// harness serves the simulator on loopback; the simulator and the code
// under test share a Step clock, so waits take no wall time.
func harness(t *testing.T, sc *awssim.Scenario) (*awssim.Sim, *Backups, *clock.Step) {
	t.Helper()
	c := clock.NewStep(start)
	sim := awssim.New(sc, c)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, &Backups{EC2: ec2.NewFromConfig(awssim.Config(srv.URL, acct, region)), Clock: c}, c
}

func scenario(groups ...awssim.Group) *awssim.Scenario {
	return &awssim.Scenario{Accounts: []string{acct}, Groups: groups}
}

func targets(sim *awssim.Sim, run string) []Target {
	var out []Target
	for _, in := range sim.Instances(acct, region) {
		out = append(out, Target{Policy: "web", RunID: run, Phase: "staging", Wave: 1, InstanceID: in.ID})
	}
	return out
}

var pendingPlan = policy.BackupPlan{RetainDays: 14, WaitFor: policy.WaitPending, Timeout: 30 * time.Minute}

func TestWaveSnapshotsEveryVolumeTaggedAndARerunReusesThem(t *testing.T) {
	sim, b, _ := harness(t, scenario(awssim.Group{Region: region, Count: 2, Name: "web"}))
	ts := targets(sim, "run-1")
	rs, err := b.Wave(context.Background(), ts, pendingPlan)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if !r.Ready() || len(r.Snapshots) != 2 || r.Reused || r.InstanceID != ts[i].InstanceID {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	snaps := sim.Snapshots()
	if len(snaps) != 4 {
		t.Fatalf("want 4 snapshots (2 volumes x 2 instances), got %d", len(snaps))
	}
	for _, s := range snaps {
		want := map[string]string{TagManagedBy: ManagedBy, TagPolicy: "web", TagRun: "run-1", TagPhase: "staging", TagWave: "1", TagInstance: s.InstanceID}
		for k, v := range want {
			if s.Tags[k] != v {
				t.Errorf("snapshot %s tag %s=%q, want %q", s.ID, k, s.Tags[k], v)
			}
		}
	}
	// The same run again (a rerun after a crash): no second set, and one
	// look for the whole wave's earlier snapshots (plus one wait).
	describes := sim.Calls()["ec2:DescribeSnapshots"]
	rs2, err := b.Wave(context.Background(), ts, pendingPlan)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs2 {
		if !r.Ready() || !r.Reused || len(r.Snapshots) != 2 || r.Snapshots[0].ID != rs[i].Snapshots[0].ID && r.Snapshots[0].ID != rs[i].Snapshots[1].ID {
			t.Errorf("rerun result %d: %+v (first %+v)", i, r, rs[i])
		}
	}
	if n := len(sim.Snapshots()); n != 4 {
		t.Errorf("a rerun made %d more snapshots", n-4)
	}
	if n := sim.Calls()["ec2:DescribeSnapshots"] - describes; n != 2 {
		t.Errorf("a rerun of a 2-instance wave made %d DescribeSnapshots calls, want 2", n)
	}
	if n := sim.Calls()["ec2:CreateSnapshots"]; n != 2 {
		t.Errorf("CreateSnapshots called %d times, want 2", n)
	}
	// Another run is another backup.
	if _, err := b.Wave(context.Background(), targets(sim, "run-2"), pendingPlan); err != nil || len(sim.Snapshots()) != 8 {
		t.Errorf("run-2: %v, %d snapshots", err, len(sim.Snapshots()))
	}
}

func TestAFailedSnapshotKeepsItsInstanceUnpatched(t *testing.T) {
	sim, b, _ := harness(t, scenario(awssim.Group{Region: region, Count: 1, Name: "ok"}, awssim.Group{Region: region, Count: 1, Name: "bad", SnapshotFails: true}))
	rs, err := b.Wave(context.Background(), targets(sim, "run-1"), pendingPlan)
	if err != nil {
		t.Fatal(err)
	}
	if !rs[0].Ready() {
		t.Errorf("the healthy instance must be patched: %+v", rs[0])
	}
	if rs[1].Ready() || !strings.Contains(rs[1].Reason, "state error") || !strings.Contains(rs[1].Reason, "Snapshot creation failed") {
		t.Errorf("the instance whose snapshot failed must not be patched, with the reason: %+v", rs[1])
	}
}

func TestWaitForCompletedWaitsAndTimesOut(t *testing.T) {
	sc := scenario(awssim.Group{Region: region, Count: 1, Name: "web"})
	sc.SnapshotDuration = 20 * time.Minute
	sim, b, c := harness(t, sc)
	plan := policy.BackupPlan{WaitFor: policy.WaitCompleted, Timeout: 30 * time.Minute}
	rs, err := b.Wave(context.Background(), targets(sim, "run-1"), plan)
	if err != nil {
		t.Fatal(err)
	}
	if !rs[0].Ready() || rs[0].Snapshots[0].State != "completed" || c.Now().Sub(start) < 20*time.Minute {
		t.Errorf("waitFor completed returned at %v with %+v", c.Now().Sub(start), rs[0])
	}
	// Pending is enough under waitFor: pending: no wait at all.
	sim2, b2, c2 := harness(t, sc)
	rs, err = b2.Wave(context.Background(), targets(sim2, "run-1"), pendingPlan)
	if err != nil || !rs[0].Ready() || rs[0].Snapshots[0].State != "pending" || c2.Now() != start {
		t.Errorf("waitFor pending: %v %+v after %v", err, rs, c2.Now().Sub(start))
	}
	// Not completed within the timeout: not patched.
	sc.SnapshotDuration = 3 * time.Hour
	sim3, b3, _ := harness(t, sc)
	rs, err = b3.Wave(context.Background(), targets(sim3, "run-1"), plan)
	if err != nil || rs[0].Ready() || !strings.Contains(rs[0].Reason, "not completed within 30m") {
		t.Errorf("timeout: %v %+v", err, rs)
	}
}

func TestALostCreateSnapshotsResponseMakesNoSecondSet(t *testing.T) {
	sim, b, _ := harness(t, scenario(awssim.Group{Region: region, Count: 1, Name: "web"}))
	sim.DropResponse("ec2:CreateSnapshots", 1)
	rs, err := b.Wave(context.Background(), targets(sim, "run-1"), pendingPlan)
	if err != nil || !rs[0].Ready() || !rs[0].Reused {
		t.Fatalf("%v %+v", err, rs)
	}
	if n := len(sim.Snapshots()); n != 2 {
		t.Errorf("%d snapshots after a lost response, want the first 2", n)
	}
}

func TestSweepDeletesOnlyPatchgatesOldSnapshotsOfThePolicy(t *testing.T) {
	sim, b, c := harness(t, scenario())
	ours := func(policy, run string) map[string]string {
		return map[string]string{TagManagedBy: ManagedBy, TagPolicy: policy, TagRun: run}
	}
	old := start.Add(-20 * 24 * time.Hour)
	del := sim.AddSnapshot(acct, region, "vol-1", old, ours("web", "run-0"))
	keep := []string{
		sim.AddSnapshot(acct, region, "vol-2", start.Add(-2*24*time.Hour), ours("web", "run-0")), // young
		sim.AddSnapshot(acct, region, "vol-3", old, ours("db", "run-0")),                         // another policy
		sim.AddSnapshot(acct, region, "vol-4", old, map[string]string{TagPolicy: "web"}),         // not made by patchgate
		sim.AddSnapshot(acct, region, "vol-5", old, nil),                                         // untagged
		sim.AddSnapshot(acct, region, "vol-6", old, ours("web", "run-now")),                      // the run in progress
		sim.AddSnapshot("444455556666", region, "vol-7", old, ours("web", "run-0")),              // another account
	}
	_ = c
	got, err := b.Sweep(context.Background(), "web", "run-now", 14)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != del {
		t.Errorf("deleted %v, want [%s]", got, del)
	}
	for _, s := range sim.Snapshots() {
		for _, k := range keep {
			if s.ID == k && s.Deleted {
				t.Errorf("deleted %s (%s, %v)", k, s.VolumeID, s.Tags)
			}
		}
	}
	if _, err := b.Sweep(context.Background(), "web", "run-now", 0); err == nil {
		t.Error("retainDays 0 would delete every snapshot: must be refused")
	}
}

func TestRestoreCommandsQuoteWhatTheyDoNotTrust(t *testing.T) {
	r := Result{InstanceID: "i-0123456789abcdef0", Snapshots: []Snapshot{{ID: "snap-1", VolumeID: "vol-1"}, {ID: "snap-2; rm -rf /", VolumeID: "vol-2"}}}
	cmds := RestoreCommands("us-east-1", "us-east-1a", r)
	if len(cmds) != 3 || !strings.HasPrefix(cmds[0], "aws ec2 create-volume --region us-east-1 --availability-zone us-east-1a --snapshot-id snap-1") ||
		!strings.Contains(cmds[1], "create-replace-root-volume-task --region us-east-1 --instance-id i-0123456789abcdef0 --snapshot-id snap-1") ||
		!strings.Contains(cmds[2], "--snapshot-id 'snap-2; rm -rf /'") {
		t.Errorf("%q", cmds)
	}
}
