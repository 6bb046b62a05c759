// Package verify decides the evidence half of a phase's gate: are the
// patched instances measurably patched? It compares SSM patch states before
// and after the phase, and answers pass, fail or inconclusive with
// machine-readable reasons. It never passes an instance it has no evidence
// for.
package verify

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/gate"
	"github.com/patchgate/patchgate/internal/result"
)

// PatchStates is the part of SSM verification reads.
type PatchStates interface {
	DescribeInstancePatchStates(ctx context.Context, in *ssm.DescribeInstancePatchStatesInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstancePatchStatesOutput, error)
	DescribeInstancePatches(ctx context.Context, in *ssm.DescribeInstancePatchesInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstancePatchesOutput, error)
}

// Detail bounds: the missing and failed patches of at most this many
// non-compliant instances, at most this many patches each, are listed. A
// report needs examples, not the whole fleet.
const (
	detailInstances = 20
	detailPatches   = 20
)

// Settings are the phase's verification settings, taken from its policy.
type Settings struct {
	Compliance bool // every patched instance must report compliant
	// AllowPendingReboot accepts InstalledPendingReboot (rebootOption NoReboot).
	AllowPendingReboot bool
	// AllowMissing accepts approved patches still missing after the
	// Install: a promoted phase that replays its source's patch set leaves
	// patches approved since missing on purpose (the engine checks that
	// nothing outside the set was installed).
	AllowMissing bool
	// Inspector asks for an Amazon Inspector rescan gate.
	Inspector      bool
	FailOnSeverity string        // ACTIVE findings with a fix at or above this fail the gate
	RescanTimeout  time.Duration // how long to wait for scans newer than the patches
	RequireFixed   []string      // CVEs that must be CLOSED on every patched instance
	// Tags are the phase's target tags; a large phase's Inspector reads are
	// listed by one of them instead of by instance id: TagKey's, else the
	// first key in order.
	Tags   map[string]string
	TagKey string
	// Slack is how much later the rescan wait may see its last rescan at
	// no cost: another account-region of the phase is expected to end it
	// later still (nil: none). Looks are spaced by it, at most
	// rescanPollMax apart.
	Slack func() time.Duration
	// LastChance is the chance that this account-region ends the phase
	// last (nil: 1): only the last one's rescans delay the next phase, so
	// looks through a rescan window are 1/sqrt(chance) times rarer.
	LastChance func() float64
}

// Verifier gathers and judges evidence in one account and region.
type Verifier struct {
	SSM PatchStates
	// Inspector reads Amazon Inspector; nil means a phase that asks for the
	// Inspector gate is inconclusive.
	Inspector Findings
	// Clock paces the wait for rescans; default the wall clock.
	Clock clock.Clock
}

// Snapshot is the state before a phase.
type Snapshot struct {
	// Taken is when the phase began, before anything was sent: Inspector
	// findings first observed earlier were there before the phase.
	Taken time.Time
}

// taken is the snapshot's time; without a snapshot every finding counts as
// having been there before (never "new" without evidence).
func (s *Snapshot) taken() time.Time {
	if s == nil || s.Taken.IsZero() {
		return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return s.Taken
}

// Before records when the phase began. It reads nothing: the gate judges
// the patch states after the phase on their own (the last Install, its
// end, what is missing or failed), and a read of every instance before
// it cost a call per 50 instances for a "before" count no verdict uses;
// the result says it was not read (Compliance.BeforeNotRead).
func (v *Verifier) Before(ctx context.Context, s Settings, ids []string) (*Snapshot, error) {
	clk := v.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	return &Snapshot{Taken: clk.Now()}, ctx.Err()
}

// patchState is what verification keeps of an instance's patch state: a
// phase holds one per instance for hours, so not the SDK's whole struct
// (nor the response buffers its strings point into).
type patchState struct {
	operation ssmtypes.PatchOperationType
	ended     time.Time // OperationEndTime; zero when not reported
	counts    result.PatchCounts
}

func compact(st ssmtypes.InstancePatchState) patchState {
	ps := patchState{operation: ssmtypes.PatchOperationType(strings.Clone(string(st.Operation)))}
	if st.OperationEndTime != nil {
		ps.ended = *st.OperationEndTime
	}
	addCounts(&ps.counts, st)
	return ps
}

// compactStates reads the patch states of ids, compacted.
func (v *Verifier) compactStates(ctx context.Context, ids []string) (map[string]patchState, error) {
	out := make(map[string]patchState, len(ids))
	err := v.eachState(ctx, ids, func(st ssmtypes.InstancePatchState) {
		out[strings.Clone(aws.ToString(st.InstanceId))] = compact(st)
	})
	return out, err
}

// states reads the patch states of ids as SSM returns them.
func (v *Verifier) states(ctx context.Context, ids []string) (map[string]ssmtypes.InstancePatchState, error) {
	out := make(map[string]ssmtypes.InstancePatchState, len(ids))
	err := v.eachState(ctx, ids, func(st ssmtypes.InstancePatchState) { out[aws.ToString(st.InstanceId)] = st })
	return out, err
}

// eachState reads DescribeInstancePatchStates in batches of 50 (its limit).
func (v *Verifier) eachState(ctx context.Context, ids []string, fn func(ssmtypes.InstancePatchState)) error {
	for start := 0; start < len(ids); start += 50 {
		batch := ids[start:min(start+50, len(ids))]
		p := ssm.NewDescribeInstancePatchStatesPaginator(v.SSM, &ssm.DescribeInstancePatchStatesInput{InstanceIds: batch, MaxResults: aws.Int32(50)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("reading patch states with ssm:DescribeInstancePatchStates: %w", err)
			}
			for _, st := range page.InstancePatchStates {
				fn(st)
			}
		}
	}
	return nil
}

// After judges the phase. instances are every instance of the phase with
// its outcome; only those whose invocation succeeded are judged on
// compliance (the others already count against the success threshold).
func (v *Verifier) After(ctx context.Context, s Settings, runStarted time.Time, before *Snapshot, instances []result.Instance) (*result.Verification, error) {
	res := &result.Verification{Verdict: result.StatusPassed}
	clk := v.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	var patched []string
	for _, in := range instances {
		if in.Outcome == result.OutcomeSucceeded {
			patched = append(patched, in.ID)
		}
	}
	sort.Strings(patched)
	// The patch states are read first: they date each instance's Install
	// for the rescan wait when the invocations were not listed.
	var after map[string]patchState
	if s.Compliance {
		var err error
		if after, err = v.compactStates(ctx, patched); err != nil {
			return nil, err
		}
	}
	if s.Inspector {
		if v.Inspector == nil {
			res.Verdict = result.StatusInconclusive
			res.Reasons = append(res.Reasons, result.Reason{Code: "inspector-unavailable",
				Message: "the policy asks for an Amazon Inspector rescan gate, but no Inspector client is configured; no evidence, so no pass"})
		} else if err := v.inspector(ctx, s, before, patchEnds(instances, after, runStarted, clk.Now()), res); err != nil {
			return nil, err
		}
	}
	if !s.Compliance {
		res.Warnings = append(res.Warnings, "compliance verification is disabled for this phase (verify.compliance: false)")
		return res, nil
	}
	c := &result.Compliance{Instances: len(patched), BeforeNotRead: true}
	var noState []string
	for _, id := range patched {
		st, ok := after[id]
		if !ok {
			noState = append(noState, id)
			c.NonCompliant = append(c.NonCompliant, result.InstanceCompliance{InstanceID: id, Reason: "no patch state reported after patching"})
			continue
		}
		c.After = c.After.Plus(st.counts)
		if n := st.counts.InstalledPendingReboot; n > 0 {
			c.PendingReboot.Instances++
			c.PendingReboot.Patches += n
		}
		if s.AllowMissing {
			st.counts.Missing = 0
		}
		if reason := nonCompliant(st, runStarted, s.AllowPendingReboot); reason != "" {
			c.NonCompliant = append(c.NonCompliant, result.InstanceCompliance{InstanceID: id, Reason: reason,
				Missing: st.counts.Missing, Failed: st.counts.Failed, PendingReboot: st.counts.InstalledPendingReboot})
			continue
		}
		c.Compliant++
		c.After.CompliantInstances++
	}
	if s.AllowMissing && c.After.Missing > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d approved patches outside the replayed patch set are still missing, as the replay intends; the next promotion installs them once they pass the source phase", c.After.Missing))
	}
	if len(patched) > 0 {
		c.Percent = float64(c.Compliant) * 100 / float64(len(patched))
	} else {
		c.Percent = 100
	}
	res.Compliance = c
	if len(noState) > 0 {
		res.Reasons = append(res.Reasons, result.Reason{Code: "no-patch-state", Instances: noState,
			Message: fmt.Sprintf("%d patched instances report no patch state, so their compliance is unknown", len(noState))})
		if res.Verdict == result.StatusPassed {
			res.Verdict = result.StatusInconclusive
		}
	}
	if err := v.details(ctx, c.NonCompliant); err != nil {
		return nil, err
	}
	var bad, rebootOnly []string
	for _, nc := range c.NonCompliant {
		switch {
		case nc.Reason == "no patch state reported after patching":
		case nc.Missing == 0 && nc.Failed == 0 && nc.PendingReboot > 0 && strings.Contains(nc.Reason, "wait for a reboot"):
			rebootOnly = append(rebootOnly, nc.InstanceID)
		default:
			bad = append(bad, nc.InstanceID)
		}
	}
	if len(bad) > 0 {
		res.Verdict = result.StatusFailed // a failure outranks anything inconclusive
		res.Reasons = append(res.Reasons, result.Reason{Code: "noncompliant", Instances: bad,
			Message: fmt.Sprintf("%d of %d patched instances are not compliant after patching", len(bad), len(patched))})
	}
	if len(rebootOnly) > 0 {
		// Patches installed, the reboot not done: the policy's
		// pendingReboot rule (fail) makes this a failure.
		res.Verdict = result.StatusFailed
		res.Reasons = append(res.Reasons, result.Reason{Code: "pending-reboot", Instances: rebootOnly,
			Message: fmt.Sprintf("%s, and the policy's pendingReboot is fail: reboot them, or set pendingReboot: warn if a later reboot is planned",
				gate.PendingRebootText(c.PendingReboot))})
	}
	return res, nil
}

// patchEnds dates the patch of each succeeded instance, for the rescan
// wait: its invocation's end when listed, else the end of the Install its
// patch state reports if that began with this run, else now. A date too
// late only makes the wait stricter; one too early would accept a scan
// from before the patch, so an unknown end is never left at zero.
func patchEnds(instances []result.Instance, states map[string]patchState, runStarted, now time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	for _, in := range instances {
		if in.Outcome != result.OutcomeSucceeded {
			continue
		}
		end := in.PatchEndedAt
		if end.IsZero() {
			end = now
			if st, ok := states[in.ID]; ok && st.operation == ssmtypes.PatchOperationTypeInstall &&
				!st.ended.IsZero() && !st.ended.Before(runStarted) && st.ended.Before(now) {
				end = st.ended
			}
		}
		out[in.ID] = end
	}
	return out
}

// nonCompliant says why a patch state is not compliant, or "".
func nonCompliant(st patchState, runStarted time.Time, allowPendingReboot bool) string {
	switch {
	case st.operation != ssmtypes.PatchOperationTypeInstall:
		return "the last patch operation was " + string(st.operation) + ", not Install"
	case st.ended.IsZero() || st.ended.Before(runStarted):
		return "the last Install ended before this run started"
	case st.counts.Failed > 0:
		return fmt.Sprintf("%d patches failed to install", st.counts.Failed)
	case st.counts.Missing > 0:
		return fmt.Sprintf("%d approved patches are still missing", st.counts.Missing)
	case !allowPendingReboot && st.counts.InstalledPendingReboot > 0:
		return fmt.Sprintf("%d patches are installed but wait for a reboot", st.counts.InstalledPendingReboot)
	}
	return ""
}

func addCounts(p *result.PatchCounts, st ssmtypes.InstancePatchState) {
	p.Installed += int(st.InstalledCount)
	p.InstalledOther += int(st.InstalledOtherCount)
	p.InstalledPendingReboot += int(aws.ToInt32(st.InstalledPendingRebootCount))
	p.InstalledRejected += int(aws.ToInt32(st.InstalledRejectedCount))
	p.Missing += int(st.MissingCount)
	p.Failed += int(st.FailedCount)
	p.NotApplicable += int(st.NotApplicableCount)
}

// details lists the missing and failed patches, with their CVEs, of the first
// non-compliant instances (DescribeInstancePatches, one call each, bounded).
func (v *Verifier) details(ctx context.Context, ncs []result.InstanceCompliance) error {
	for i := range ncs {
		if i >= detailInstances {
			break
		}
		nc := &ncs[i]
		if nc.Missing == 0 && nc.Failed == 0 {
			continue
		}
		out, err := v.SSM.DescribeInstancePatches(ctx, &ssm.DescribeInstancePatchesInput{InstanceId: aws.String(nc.InstanceID), MaxResults: aws.Int32(detailPatches),
			Filters: []ssmtypes.PatchOrchestratorFilter{{Key: aws.String("State"), Values: []string{"Missing", "Failed"}}}})
		if err != nil {
			return fmt.Errorf("listing missing patches of %s with ssm:DescribeInstancePatches: %w", nc.InstanceID, err)
		}
		seen := map[string]bool{}
		for _, p := range out.Patches {
			var cves []string
			for _, c := range strings.Split(aws.ToString(p.CVEIds), ",") {
				if c = strings.TrimSpace(c); c != "" {
					cves = append(cves, c)
					if !seen[c] {
						seen[c] = true
						nc.CVEs = append(nc.CVEs, c)
					}
				}
			}
			nc.Patches = append(nc.Patches, result.Patch{Title: aws.ToString(p.Title), KBID: aws.ToString(p.KBId), State: string(p.State),
				Severity: aws.ToString(p.Severity), Classification: aws.ToString(p.Classification), CVEs: cves})
		}
	}
	return nil
}

// Today is the read-only evidence `plan` shows for a phase: the patch
// states of ids and, when v has Inspector, their ACTIVE package findings.
// It sends nothing and judges nothing.
func (v *Verifier) Today(ctx context.Context, ids []string) (map[string]ssmtypes.InstancePatchState, []result.Finding, error) {
	states, err := v.states(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	if v.Inspector == nil {
		return states, nil, nil
	}
	listed, err := v.findings(ctx, scope{ids: ids}, findingFilter{statuses: []string{"ACTIVE"}})
	fs := make([]result.Finding, len(listed))
	for i, f := range listed {
		fs[i] = f.Finding
	}
	return states, fs, err
}

// Compliant reports whether a patch state has nothing missing, failed or
// waiting for a reboot.
func Compliant(st ssmtypes.InstancePatchState) bool {
	return st.MissingCount == 0 && st.FailedCount == 0 && aws.ToInt32(st.InstalledPendingRebootCount) == 0
}
