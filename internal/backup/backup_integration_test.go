//go:build integration

package backup_test

// EC2 snapshots against moto: CreateSnapshots of a running instance's
// volumes with patchgate's tags, found again by those tags on a rerun, and
// a sweep that leaves young snapshots alone.

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/patchgate/patchgate/internal/backup"
	"github.com/patchgate/patchgate/internal/motoenv"
	"github.com/patchgate/patchgate/internal/policy"
)

func TestMotoSnapshotsBeforeAWave(t *testing.T) {
	cfg, _ := motoenv.FreshAccount(t)
	cl := ec2.NewFromConfig(cfg)
	ctx := context.Background()
	imgs, err := cl.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("no image to launch from: %v", err)
	}
	run, err := cl.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: ec2types.InstanceTypeT3Micro})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	b := &backup.Backups{EC2: cl, Poll: 10 * time.Millisecond}
	plan := policy.BackupPlan{WaitFor: policy.WaitCompleted, Timeout: time.Minute}
	target := []backup.Target{{Policy: motoenv.Unique("it-"), RunID: "run-1", Phase: "staging", Wave: 1, InstanceID: id}}
	rs, err := b.Wave(ctx, target, plan)
	if err != nil {
		t.Fatal(err)
	}
	if !rs[0].Ready() || len(rs[0].Snapshots) == 0 || rs[0].Reused {
		t.Fatalf("%+v", rs[0])
	}
	again, err := b.Wave(ctx, target, plan)
	if err != nil || !again[0].Reused || len(again[0].Snapshots) != len(rs[0].Snapshots) {
		t.Fatalf("a rerun must find the first snapshots by their tags: %v %+v", err, again)
	}
	got, err := cl.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []ec2types.Filter{{Name: aws.String("tag:" + backup.TagInstance), Values: []string{id}}}})
	if err != nil || len(got.Snapshots) != len(rs[0].Snapshots) {
		t.Fatalf("%v: %d snapshots tagged for %s, want %d", err, len(got.Snapshots), id, len(rs[0].Snapshots))
	}
	deleted, err := b.Sweep(ctx, target[0].Policy, "run-2", 1)
	if err != nil || len(deleted) != 0 {
		t.Errorf("a sweep deleted young snapshots: %v %v", err, deleted)
	}
}
