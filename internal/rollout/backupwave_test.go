package rollout

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/patchgate/patchgate/internal/backup"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/policy"
)

// instantEC2 snapshots every instance at once: one volume, completed; no
// earlier snapshots.
type instantEC2 struct{}

func (instantEC2) CreateSnapshots(_ context.Context, in *ec2.CreateSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error) {
	id := aws.ToString(in.InstanceSpecification.InstanceId)
	return &ec2.CreateSnapshotsOutput{Snapshots: []ec2types.SnapshotInfo{{SnapshotId: aws.String("snap-" + id), VolumeId: aws.String("vol-" + id), State: ec2types.SnapshotStateCompleted}}}, nil
}

func (instantEC2) DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	return &ec2.DescribeSnapshotsOutput{}, nil
}

func (instantEC2) DeleteSnapshot(context.Context, *ec2.DeleteSnapshotInput, ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	return &ec2.DeleteSnapshotOutput{}, nil
}

// The wave a backup leaves ready is the wave as cut: its share and where
// it stands in the phase (the waves after it, which the pacer and the
// phase's account-regions read), only its instances fewer.
func TestBackupKeepsTheWave(t *testing.T) {
	e := &Engine{opt: Options{Clock: clock.Real{}, RunID: "42"}}
	tg := &target{e: e, plan: &policy.Rollout{Policy: "web", Backup: &policy.BackupPlan{WaitFor: "completed", Timeout: time.Minute}},
		c: &Clients{Backups: &backup.Backups{EC2: instantEC2{}, Clock: clock.Real{}}}}
	w := waveSpec{share: "50%", instances: []Instance{{ID: "i-1"}, {ID: "i-2"}}, left: 2}
	ready, held, rows, err := tg.backupWave(context.Background(), &policy.Stage{Name: "production"}, 1, w)
	if err != nil {
		t.Fatal(err)
	}
	if ready.left != 2 || ready.share != "50%" || len(ready.instances) != 2 || len(held) != 0 || len(rows) != 2 {
		t.Fatalf("ready %+v, held %v, rows %d; want the wave as cut (left 2, 50%%, both instances)", ready, held, len(rows))
	}
}
