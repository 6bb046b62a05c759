package report

import (
	"strings"
	"testing"
)

func TestBackupsListSnapshotsAndRestoreCommandsOfFailedInstances(t *testing.T) {
	out := Backups([]BackupRow{
		{Account: "111122223333", Region: "us-east-1", InstanceID: "i-1", Snapshots: []string{"snap-a", "snap-b"}},
		{Account: "111122223333", Region: "us-east-1", InstanceID: "i-2", Snapshots: []string{"snap-c"}, Failed: true,
			Restore: []string{"aws ec2 create-volume --region us-east-1 --availability-zone us-east-1a --snapshot-id snap-c"}},
		{Account: "111122223333", Region: "us-east-1", InstanceID: "i-3", Reason: "backup failed: snapshot snap-d | <b>error</b>\n::error::x"},
	})
	for _, want := range []string{"| `i-1` | 111122223333/us-east-1 | `snap-a` `snap-b` |  |", "patch failed: restore below",
		"  - `aws ec2 create-volume --region us-east-1 --availability-zone us-east-1a --snapshot-id snap-c`",
		"not patched: backup failed: snapshot snap-d \\| &lt;b&gt;error&lt;/b&gt; ::error::x"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Count(out, "\n::") > 0 || strings.Contains(out, "i-1`\n  -") {
		t.Errorf("%s", out)
	}
	if Backups(nil) != "" {
		t.Error("no backups, no section")
	}
}

// TestBackupsWithoutFailuresHaveNoRestore: the restore section is there
// only for instances that failed to patch.
func TestBackupsWithoutFailuresHaveNoRestore(t *testing.T) {
	out := Backups([]BackupRow{{Account: "1", Region: "r", InstanceID: "i-1", Snapshots: []string{"snap-a"}}, {Account: "1", Region: "r", InstanceID: "i-2", Reason: "snapshot failed"}})
	if strings.Contains(out, "Restore") || !strings.Contains(out, "| `i-2` | 1/r |  | not patched: snapshot failed |") {
		t.Errorf("%s", out)
	}
}
