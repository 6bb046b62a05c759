package report

import (
	"fmt"
	"strings"
)

// BackupRow is one instance's backup as the report shows it; the engine
// fills it from backup.Result and the instance's outcome.
type BackupRow struct {
	Account, Region, InstanceID string
	Snapshots                   []string // snapshot ids
	// Reason: the backup failed and the instance was not patched.
	Reason string
	// Failed: the instance failed to patch; Restore are the commands
	// that bring its volumes back (backup.RestoreCommands).
	Failed  bool
	Restore []string
}

// Backups renders the snapshots taken per instance and, for each instance
// that failed to patch, how to restore it. Every value is escaped: ids and
// reasons come from AWS.
func Backups(rows []BackupRow) string {
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("### Backups\n\n")
	t := newTable(&b, "instance", "account/region", "snapshots", "note")
	var restore []BackupRow
	for _, r := range rows {
		snaps := make([]string, len(r.Snapshots))
		for i, s := range r.Snapshots {
			snaps[i] = code(cell(s, 64))
		}
		note := ""
		switch {
		case r.Reason != "":
			note = "not patched: " + cell(r.Reason, 200)
		case r.Failed:
			note = "patch failed: restore below"
			restore = append(restore, r)
		}
		t.row(code(cell(r.InstanceID, 64)), cell(r.Account+"/"+r.Region, 64), strings.Join(snaps, " "), note)
	}
	if len(restore) > 0 {
		b.WriteString("\n**Restore** (a new volume from each snapshot, then swap it in; or replace the root volume):\n\n")
		for _, r := range restore {
			fmt.Fprintf(&b, "- %s\n", code(cell(r.InstanceID, 64)))
			for _, c := range r.Restore {
				fmt.Fprintf(&b, "  - %s\n", code(c))
			}
		}
	}
	b.WriteString("\n")
	return b.String()
}
