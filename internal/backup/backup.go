// Package backup takes EBS snapshots of an instance's volumes before it is
// patched (EC2 CreateSnapshots: every volume of one instance, crash
// consistent, tagged with the policy, run, phase, wave and instance), waits
// for them as the policy asks, sweeps away patchgate's old snapshots, and
// says how to restore.
//
// A rerun of the same run finds the snapshots an earlier attempt made (by
// their tags) instead of taking new ones. An instance whose snapshots fail
// or do not get ready in time is not to be patched: the caller counts it as
// skipped with Result.Reason.
package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/oneline"
	"github.com/patchgate/patchgate/internal/policy"
)

// EC2 is the part of the EC2 API backups use.
type EC2 interface {
	CreateSnapshots(ctx context.Context, in *ec2.CreateSnapshotsInput, optFns ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error)
	DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error)
}

// Tags patchgate puts on every snapshot it makes. The sweep deletes only
// snapshots carrying TagManagedBy=ManagedBy and the policy's TagPolicy.
const (
	TagManagedBy = "patchgate:managed-by"
	ManagedBy    = "patchgate"
	TagPolicy    = "patchgate:policy"
	TagRun       = "patchgate:run-id"
	TagPhase     = "patchgate:phase"
	TagWave      = "patchgate:wave"
	TagInstance  = "patchgate:instance-id"
)

// Target is one instance to back up before one wave of one run.
type Target struct {
	Policy, RunID, Phase string
	Wave                 int // 1-based
	InstanceID           string
}

func (t Target) tags() map[string]string {
	return map[string]string{TagManagedBy: ManagedBy, TagPolicy: t.Policy, TagRun: t.RunID, TagPhase: t.Phase,
		TagWave: strconv.Itoa(t.Wave), TagInstance: t.InstanceID}
}

// Snapshot is one volume's snapshot.
type Snapshot struct {
	ID, VolumeID, State, Message string
}

// Result is one instance's backup.
type Result struct {
	InstanceID string     `json:"instanceId"`
	Snapshots  []Snapshot `json:"snapshots,omitempty"`
	// Reused: the snapshots were made by an earlier attempt of this run.
	Reused bool `json:"reused,omitempty"`
	// Reason is why the instance must not be patched; empty when its
	// backup is ready.
	Reason string `json:"reason,omitempty"`
}

// Ready reports whether the instance may be patched.
func (r Result) Ready() bool { return r.Reason == "" }

// Backups takes and waits for snapshots.
type Backups struct {
	EC2   EC2
	Clock clock.Clock   // nil: the wall clock
	Poll  time.Duration // between DescribeSnapshots polls; 0: 15s
	Log   *slog.Logger  // nil: slog.Default()
}

func (b *Backups) clock() clock.Clock {
	if b.Clock == nil {
		return clock.Real{}
	}
	return b.Clock
}

func (b *Backups) log() *slog.Logger {
	if b.Log == nil {
		return slog.Default()
	}
	return b.Log
}

// maxCreateAttempts bounds CreateSnapshots attempts per instance. The SDK
// does not retry the call (a lost response would make a second set); after
// a failure patchgate looks for the first set by its tags before trying
// again.
const maxCreateAttempts = 3

// Wave backs up every target of one wave and waits until each instance's
// snapshots reach plan.WaitFor or plan.Timeout passes. It returns one
// Result per target, in order; an instance whose Result is not Ready must
// not be patched. The error is for the wave as a whole (a denied
// CreateSnapshots, ctx done): then no instance of the wave may be patched.
func (b *Backups) Wave(ctx context.Context, targets []Target, plan policy.BackupPlan) ([]Result, error) {
	out := make([]Result, len(targets))
	// One look for the whole wave's earlier snapshots (a rerun), rather
	// than one per instance.
	var earlier map[string][]Snapshot
	if len(targets) > 0 && sameWave(targets) {
		var err error
		if earlier, err = b.find(ctx, targets[0], false); err != nil {
			return nil, fmt.Errorf("backup before %s wave %d: %w", targets[0].Phase, targets[0].Wave, err)
		}
	}
	for i, t := range targets {
		out[i] = Result{InstanceID: t.InstanceID}
		snaps, reused, err := b.take(ctx, t, earlier)
		if err != nil {
			if denied(err) || ctx.Err() != nil {
				return nil, fmt.Errorf("backup of %s before %s wave %d: %w", t.InstanceID, t.Phase, t.Wave, err)
			}
			out[i].Reason = "backup failed: " + oneline.Clean(err.Error(), 300)
			continue
		}
		out[i].Snapshots, out[i].Reused = snaps, reused
		if len(snaps) == 0 {
			out[i].Reason = "backup failed: the instance has no EBS volume to snapshot"
		}
	}
	if err := b.wait(ctx, out, plan); err != nil {
		return nil, err
	}
	return out, nil
}

// sameWave reports whether every target belongs to one policy, run, phase
// and wave.
func sameWave(ts []Target) bool {
	for _, t := range ts[1:] {
		if t.Policy != ts[0].Policy || t.RunID != ts[0].RunID || t.Phase != ts[0].Phase || t.Wave != ts[0].Wave {
			return false
		}
	}
	return true
}

// take returns the instance's snapshots for this run, phase and wave: those
// an earlier attempt made, or new ones.
// earlier, when not nil, is the wave's earlier snapshots by instance,
// read just before: the first attempt uses it instead of looking again.
func (b *Backups) take(ctx context.Context, t Target, earlier map[string][]Snapshot) ([]Snapshot, bool, error) {
	var lastErr error
	for attempt := 1; attempt <= maxCreateAttempts; attempt++ {
		found := earlier
		if attempt > 1 || found == nil {
			var err error
			if found, err = b.find(ctx, t, true); err != nil {
				return nil, false, err
			}
		}
		if snaps := found[t.InstanceID]; len(snaps) > 0 {
			return snaps, true, nil
		}
		if attempt > 1 {
			if err := b.clock().Sleep(ctx, time.Duration(attempt)*b.poll()); err != nil {
				return nil, false, err
			}
		}
		snaps, err := b.create(ctx, t)
		if err == nil {
			return snaps, false, nil
		}
		lastErr = err
		if denied(err) || !retryable(err) {
			return nil, false, err
		}
		b.log().Warn("CreateSnapshots failed; looking for its snapshots before trying again", "instance", t.InstanceID, "attempt", attempt, "err", err)
	}
	return nil, false, lastErr
}

func (b *Backups) create(ctx context.Context, t Target) ([]Snapshot, error) {
	tags := t.tags()
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ts []ec2types.Tag
	for _, k := range keys {
		ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	out, err := b.EC2.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &ec2types.InstanceSpecification{InstanceId: aws.String(t.InstanceID), ExcludeBootVolume: aws.Bool(false)},
		CopyTagsFromSource:    "", // the volumes' own tags are not copied: only patchgate's identify the snapshot
		Description:           aws.String(oneline.Clean(fmt.Sprintf("patchgate %s run %s %s wave %d", t.Policy, t.RunID, t.Phase, t.Wave), 255)),
		TagSpecifications:     []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: ts}},
	}, func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
	if err != nil {
		return nil, fmt.Errorf("ec2:CreateSnapshots %s: %w", t.InstanceID, err)
	}
	var snaps []Snapshot
	for _, s := range out.Snapshots {
		snaps = append(snaps, Snapshot{ID: aws.ToString(s.SnapshotId), VolumeID: aws.ToString(s.VolumeId), State: string(s.State)})
	}
	return snaps, nil
}

// find returns the usable snapshots earlier attempts made for t's wave, by
// instance: t's instance only when one is true, else every instance's.
// Those in state error are left for the sweep (new ones are taken).
func (b *Backups) find(ctx context.Context, t Target, one bool) (map[string][]Snapshot, error) {
	keys := []string{TagManagedBy, TagPolicy, TagRun, TagPhase, TagWave}
	if one {
		keys = append(keys, TagInstance)
	}
	var filters []ec2types.Filter
	for _, k := range keys {
		filters = append(filters, ec2types.Filter{Name: aws.String("tag:" + k), Values: []string{t.tags()[k]}})
	}
	p := ec2.NewDescribeSnapshotsPaginator(b.EC2, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: filters, MaxResults: aws.Int32(1000)})
	out := map[string][]Snapshot{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ec2:DescribeSnapshots for earlier snapshots of run %s %s wave %d: %w", t.RunID, t.Phase, t.Wave, err)
		}
		for _, s := range page.Snapshots {
			tags := map[string]string{}
			for _, tg := range s.Tags {
				tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
			// Check what the filters promised: another run's or wave's
			// snapshot is never taken for this one.
			match := s.State != ec2types.SnapshotStateError
			for _, k := range keys {
				match = match && tags[k] == t.tags()[k]
			}
			if !match {
				continue
			}
			id := tags[TagInstance]
			out[id] = append(out[id], Snapshot{ID: aws.ToString(s.SnapshotId), VolumeID: aws.ToString(s.VolumeId), State: string(s.State)})
		}
	}
	for _, snaps := range out {
		sort.Slice(snaps, func(i, j int) bool { return snaps[i].VolumeID < snaps[j].VolumeID })
	}
	return out, nil
}

func (b *Backups) poll() time.Duration {
	if b.Poll > 0 {
		return b.Poll
	}
	return 15 * time.Second
}

// wait polls the snapshots of every result still without a reason until
// each is ready (plan.WaitFor), failed, or plan.Timeout has passed.
func (b *Backups) wait(ctx context.Context, rs []Result, plan policy.BackupPlan) error {
	if plan.Timeout <= 0 {
		plan.Timeout = policy.DefaultBackupTimeout // an uncompiled plan: never a zero wait that skips every instance
	}
	deadline := b.clock().Now().Add(plan.Timeout)
	for {
		ids := map[string]string{} // snapshot id -> state
		for _, r := range rs {
			for _, s := range r.Snapshots {
				if r.Ready() {
					ids[s.ID] = s.State
				}
			}
		}
		if len(ids) == 0 {
			return nil
		}
		states, err := b.describe(ctx, ids)
		if err != nil {
			return err
		}
		waiting := false
		for i := range rs {
			r := &rs[i]
			if !r.Ready() {
				continue
			}
			ready := true
			for j := range r.Snapshots {
				s := &r.Snapshots[j]
				if st, ok := states[s.ID]; ok {
					s.State, s.Message = st.State, st.Message
				}
				switch {
				case s.State == string(ec2types.SnapshotStateError):
					r.Reason = fmt.Sprintf("backup failed: snapshot %s of %s is in state error", s.ID, s.VolumeID)
					if s.Message != "" {
						r.Reason += ": " + oneline.Clean(s.Message, 300)
					}
				case !reached(s.State, plan.WaitFor):
					ready = false
				}
			}
			if r.Ready() && !ready {
				waiting = true
			}
		}
		if !waiting {
			return nil
		}
		if !b.clock().Now().Before(deadline) {
			for i := range rs {
				if r := &rs[i]; r.Ready() && !allReached(r.Snapshots, plan.WaitFor) {
					r.Reason = fmt.Sprintf("backup not %s within %s: %s", plan.WaitFor, plan.Timeout, states2(r.Snapshots))
				}
			}
			return nil
		}
		if err := b.clock().Sleep(ctx, b.poll()); err != nil {
			return fmt.Errorf("waiting for snapshots: %w", err)
		}
	}
}

type snapState struct{ State, Message string }

// describe reads the states of ids. A snapshot just made may be missing
// from DescribeSnapshots for a while (eventual consistency): it keeps the
// state it had.
func (b *Backups) describe(ctx context.Context, ids map[string]string) (map[string]snapState, error) {
	all := make([]string, 0, len(ids))
	for id := range ids {
		all = append(all, id)
	}
	sort.Strings(all)
	out := map[string]snapState{}
	for len(all) > 0 {
		n := min(len(all), 200)
		batch := all[:n]
		all = all[n:]
		page, err := b.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: batch, OwnerIds: []string{"self"}})
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "InvalidSnapshot.NotFound" {
			// One of the batch is not visible yet: ask one by one so the
			// others' states are still read.
			for _, id := range batch {
				one, err := b.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}, OwnerIds: []string{"self"}})
				if errors.As(err, &ae) && ae.ErrorCode() == "InvalidSnapshot.NotFound" {
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("ec2:DescribeSnapshots %s: %w", id, err)
				}
				collect(out, one.Snapshots)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ec2:DescribeSnapshots: %w", err)
		}
		collect(out, page.Snapshots)
	}
	return out, nil
}

func collect(out map[string]snapState, snaps []ec2types.Snapshot) {
	for _, s := range snaps {
		out[aws.ToString(s.SnapshotId)] = snapState{State: string(s.State), Message: aws.ToString(s.StateMessage)}
	}
}

// reached reports whether a snapshot in state may let patching start under
// waitFor: pending suffices for "pending" (the point in time is fixed when
// CreateSnapshots returns); "completed" needs completed.
func reached(state, waitFor string) bool {
	switch state {
	case string(ec2types.SnapshotStateCompleted):
		return true
	case string(ec2types.SnapshotStatePending):
		return waitFor == policy.WaitPending
	}
	return false
}

func allReached(snaps []Snapshot, waitFor string) bool {
	for _, s := range snaps {
		if !reached(s.State, waitFor) {
			return false
		}
	}
	return true
}

func states2(snaps []Snapshot) string {
	var parts []string
	for _, s := range snaps {
		st := s.State
		if st == "" {
			st = "not visible yet"
		}
		parts = append(parts, s.ID+" "+st)
	}
	return strings.Join(parts, ", ")
}

// Sweep deletes the snapshots patchgate made for policyName that started
// more than retainDays before now. It touches only snapshots owned by the
// account and tagged TagManagedBy=patchgate and TagPolicy=policyName, never
// one of runID's own (the run in progress). It returns the ids deleted; a
// snapshot that cannot be deleted (in use by an AMI, say) is logged and
// left.
func (b *Backups) Sweep(ctx context.Context, policyName, runID string, retainDays int) ([]string, error) {
	if retainDays < 1 {
		return nil, fmt.Errorf("backup sweep for %s: retainDays %d must be at least 1", policyName, retainDays)
	}
	cutoff := b.clock().Now().Add(-time.Duration(retainDays) * 24 * time.Hour)
	p := ec2.NewDescribeSnapshotsPaginator(b.EC2, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, MaxResults: aws.Int32(1000),
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + TagManagedBy), Values: []string{ManagedBy}}, {Name: aws.String("tag:" + TagPolicy), Values: []string{policyName}}}})
	var old []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("backup sweep for %s: ec2:DescribeSnapshots: %w", policyName, err)
		}
		for _, s := range page.Snapshots {
			tags := map[string]string{}
			for _, t := range s.Tags {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			// Filters are applied by EC2; check again so that a server that
			// ignores one cannot make patchgate delete what is not its own.
			if tags[TagManagedBy] != ManagedBy || tags[TagPolicy] != policyName || tags[TagRun] == runID {
				continue
			}
			if s.StartTime != nil && s.StartTime.Before(cutoff) {
				old = append(old, aws.ToString(s.SnapshotId))
			}
		}
	}
	sort.Strings(old)
	var deleted []string
	for _, id := range old {
		_, err := b.EC2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
		var ae smithy.APIError
		switch {
		case err == nil:
			deleted = append(deleted, id)
		case errors.As(err, &ae) && ae.ErrorCode() == "InvalidSnapshot.NotFound":
			// Already gone (another sweep): nothing to do.
		case denied(err) || ctx.Err() != nil:
			return deleted, fmt.Errorf("backup sweep for %s: ec2:DeleteSnapshot %s: %w", policyName, id, err)
		default:
			b.log().Warn("backup sweep could not delete a snapshot; left in place", "policy", policyName, "snapshot", id, "err", err)
		}
	}
	return deleted, nil
}

// RestoreCommands are the AWS CLI commands that bring back an instance's
// volumes from r's snapshots: a new volume per snapshot (to attach in place
// of the damaged one) and, for the root volume, a root volume replacement
// task. zone is the instance's availability zone ("" writes a placeholder).
func RestoreCommands(region, zone string, r Result) []string {
	if zone == "" {
		zone = "<availability-zone-of-" + r.InstanceID + ">"
	}
	var out []string
	for i, s := range r.Snapshots {
		out = append(out, fmt.Sprintf("aws ec2 create-volume --region %s --availability-zone %s --snapshot-id %s  # replaces %s",
			shellWord(region), shellWord(zone), shellWord(s.ID), shellWord(s.VolumeID)))
		if i == 0 {
			out = append(out, fmt.Sprintf("aws ec2 create-replace-root-volume-task --region %s --instance-id %s --snapshot-id %s  # if %s is the root volume",
				shellWord(region), shellWord(r.InstanceID), shellWord(s.ID), shellWord(s.VolumeID)))
		}
	}
	return out
}

// shellWord quotes s for a POSIX shell unless it is plainly safe (ids
// and regions are; anything else, from a hostile API answer, is quoted).
func shellWord(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func denied(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	c := ae.ErrorCode()
	return c == "UnauthorizedOperation" || c == "AccessDenied" || c == "AccessDeniedException" || c == "AuthFailure"
}

// retryable: a call whose outcome is unknown or refused for now.
func retryable(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "RequestLimitExceeded", "Throttling", "ThrottlingException", "InternalError", "ServiceUnavailable", "Unavailable", "SnapshotCreationPerVolumeRateExceeded":
			return true
		}
		return false
	}
	return true // transport: the snapshots may or may not exist
}
