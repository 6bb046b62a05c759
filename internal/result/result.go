// Package result is the run result: the one JSON document a `patchgate run`
// produces and every report is rendered from. rollout fills it, verify adds
// its evidence, report and metrics read it. It has no behaviour beyond small
// derivations, and it never calls AWS.
//
// The document is versioned by SchemaVersion; add fields freely, but renaming
// or removing one needs a new version.
package result

import (
	"slices"
	"time"

	"github.com/patchgate/patchgate/internal/policy"
)

// SchemaVersion identifies this shape of the JSON document.
const SchemaVersion = "patchgate.dev/run-result/v1"

// Status is the outcome of a run, policy, target, phase or wave.
type Status string

const (
	StatusPassed       Status = "passed"       // every gate passed
	StatusFailed       Status = "failed"       // a gate failed; later phases were not sent
	StatusInconclusive Status = "inconclusive" // evidence missing (no rescan, unknown invocation state); halts like a failure
	StatusHalted       Status = "halted"       // not started because an earlier phase did not pass
	StatusCancelled    Status = "cancelled"    // interrupted (signal, deadline); in-flight commands were cancelled
	StatusRefused      Status = "refused"      // preflight refused: outside schedule, freeze, change calendar closed, lock held
	StatusError        Status = "error"        // patchgate could not do its job (API error, config error)
	StatusDryRun       Status = "dry-run"      // computed what would be sent; nothing was sent
	StatusSkipped      Status = "skipped"      // nothing to do (no targets, not due)
	StatusRunning      Status = "running"      // written while in progress or when resumed
	// StatusWaiting: a promoted phase was not started because its source
	// phase has no eligible record yet (too recent, or none); the reason
	// says when it becomes eligible. Nothing is wrong: exit 0.
	StatusWaiting Status = "waiting"
)

// Severity orders statuses so that an aggregate shows its worst part.
// Higher is worse.
func (s Status) Severity() int {
	switch s {
	case StatusPassed, StatusSkipped, StatusDryRun:
		return 0
	case StatusWaiting:
		return 1
	case StatusRunning:
		return 2
	case StatusHalted:
		return 3
	case StatusRefused:
		return 4
	case StatusInconclusive:
		return 5
	case StatusFailed:
		return 6
	case StatusCancelled:
		return 7
	case StatusError:
		return 8
	}
	return 8
}

// Worst returns the most severe of the statuses (StatusSkipped for none).
func Worst(ss ...Status) Status {
	w := StatusSkipped
	for _, s := range ss {
		if s.Severity() > w.Severity() || (s.Severity() == w.Severity() && w == StatusSkipped) {
			w = s
		}
	}
	return w
}

// Outcome is what happened to one instance in one wave.
type Outcome string

const (
	OutcomeSucceeded    Outcome = "succeeded"
	OutcomeFailed       Outcome = "failed"
	OutcomeTimedOut     Outcome = "timed-out"    // execution deadline passed, or SSM's DeliveryTimedOut/ExecutionTimedOut
	OutcomeOffline      Outcome = "offline"      // SSM agent not Online at preflight (counted against the threshold when offline: fail)
	OutcomeSkipped      Outcome = "skipped"      // excluded on purpose (offline: skip)
	OutcomeCancelled    Outcome = "cancelled"    // cancelled by patchgate or an operator
	OutcomeInconclusive Outcome = "inconclusive" // status unknown or missing
	OutcomePending      Outcome = "pending"      // dry run, or not yet sent
)

// Run is the whole result document.
type Run struct {
	SchemaVersion string    `json:"schemaVersion"`
	RunID         string    `json:"runId"`
	RunURL        string    `json:"runUrl,omitempty"`
	Version       string    `json:"version"` // patchgate version that produced it
	DryRun        bool      `json:"dryRun,omitempty"`
	ForcedWindow  bool      `json:"forcedWindow,omitempty"` // --force-window was used
	SnapshotID    string    `json:"snapshotId,omitempty"`   // AWS-RunPatchBaseline SnapshotId shared by the run
	StartedAt     time.Time `json:"startedAt"`
	EndedAt       time.Time `json:"endedAt,omitzero"`
	Status        Status    `json:"status"`
	Summary       string    `json:"summary"` // one human sentence explaining Status
	Policies      []Policy  `json:"policies"`
	Errors        []string  `json:"errors,omitempty"` // run-level problems not tied to a policy
}

// Policy is one policy's share of a run.
type Policy struct {
	Name        string   `json:"name"`
	File        string   `json:"file,omitempty"`
	Description string   `json:"description,omitempty"`
	Owners      []string `json:"owners,omitempty"`
	Status      Status   `json:"status"`
	Reason      string   `json:"reason,omitempty"`
	Targets     []Target `json:"targets"` // one per account x region
	// Plan is the compiled policy a dry run would run: every default
	// applied, every limit as patchgate reads it.
	Plan *policy.Rollout `json:"rollout,omitempty"`
}

// Target is one policy in one account and region.
type Target struct {
	AccountID string    `json:"accountId"`
	Region    string    `json:"region"`
	Status    Status    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	Lock      *Lock     `json:"lock,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	Phases    []Phase   `json:"phases"`
}

// Lock describes the Parameter Store lock a target held (or found held).
type Lock struct {
	Parameter string    `json:"parameter"`
	HolderRun string    `json:"holderRun"`
	HolderURL string    `json:"holderUrl,omitempty"`
	Acquired  time.Time `json:"acquired,omitzero"`
	Expires   time.Time `json:"expires,omitzero"`
	Held      bool      `json:"held"` // true: this run held it; false: another run did and this one stopped
}

// Phase is one phase (staging, production, ...) of a target.
type Phase struct {
	Name      string    `json:"name"`
	Status    Status    `json:"status"`
	Reasons   []Reason  `json:"reasons,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	Counts    Counts    `json:"counts"`
	// SuccessThreshold is the policy's share ("98%") the succeeded count was held to.
	SuccessThreshold string `json:"successThreshold,omitempty"`
	Waves            []Wave `json:"waves"`
	// Verification is the gate's evidence (compliance, Inspector); nil when not run.
	Verification *Verification `json:"verification,omitempty"`
	SoakSeconds  float64       `json:"soakSeconds,omitempty"`
	// Promotion: the phase was promoted from an earlier run's record.
	Promotion *Promotion `json:"promotion,omitempty"`
	// Record is the promotion record this phase wrote (s3://...), if any.
	Record string `json:"record,omitempty"`
}

// Promotion says which record a phase was promoted from and how its patch
// set was replayed.
type Promotion struct {
	From       string    `json:"from"`      // the source phase
	Record     string    `json:"record"`    // its record's key
	SourceRun  string    `json:"sourceRun"` // the run that wrote it
	SourceURL  string    `json:"sourceUrl,omitempty"`
	SourceTime time.Time `json:"sourceTime"` // when its verdict was given
	// Mechanism is how the patch set was replayed: InstallOverrideList,
	// BaselineOverride (approval cutoff), Nothing, or "" without replay.
	Mechanism string `json:"mechanism,omitempty"`
	Exact     bool   `json:"exact"`
	Patches   int    `json:"patches"`
	Note      string `json:"note,omitempty"`
}

// Reason is a machine-readable cause plus a human sentence.
type Reason struct {
	Code      string   `json:"code"` // e.g. "success-threshold", "inspector-severity", "require-fixed", "noncompliant", "no-rescan"
	Message   string   `json:"message"`
	Instances []string `json:"instances,omitempty"`
	CVEs      []string `json:"cves,omitempty"`
}

// Counts tallies instance outcomes. Targeted = every instance the phase
// selected, whatever happened to it.
type Counts struct {
	Targeted     int `json:"targeted"`
	Succeeded    int `json:"succeeded"`
	Failed       int `json:"failed"`
	TimedOut     int `json:"timedOut"`
	Offline      int `json:"offline"`
	Skipped      int `json:"skipped"`
	Cancelled    int `json:"cancelled"`
	Inconclusive int `json:"inconclusive"`
	Pending      int `json:"pending"`
}

// Add counts one outcome.
func (c *Counts) Add(o Outcome) {
	c.Targeted++
	switch o {
	case OutcomeSucceeded:
		c.Succeeded++
	case OutcomeFailed:
		c.Failed++
	case OutcomeTimedOut:
		c.TimedOut++
	case OutcomeOffline:
		c.Offline++
	case OutcomeSkipped:
		c.Skipped++
	case OutcomeCancelled:
		c.Cancelled++
	case OutcomePending:
		c.Pending++
	default:
		c.Inconclusive++
	}
}

// Plus returns the sum of two tallies.
func (c Counts) Plus(o Counts) Counts {
	return Counts{
		Targeted: c.Targeted + o.Targeted, Succeeded: c.Succeeded + o.Succeeded, Failed: c.Failed + o.Failed,
		TimedOut: c.TimedOut + o.TimedOut, Offline: c.Offline + o.Offline, Skipped: c.Skipped + o.Skipped,
		Cancelled: c.Cancelled + o.Cancelled, Inconclusive: c.Inconclusive + o.Inconclusive, Pending: c.Pending + o.Pending,
	}
}

// Wave is one SendCommand of a phase.
type Wave struct {
	Index      int       `json:"index"` // 1-based
	Share      string    `json:"share"` // cumulative share from the policy, e.g. "50%"
	CommandID  string    `json:"commandId,omitempty"`
	Comment    string    `json:"comment,omitempty"`
	ConsoleURL string    `json:"consoleUrl,omitempty"`
	Status     Status    `json:"status"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	EndedAt    time.Time `json:"endedAt,omitzero"`
	Resumed    bool      `json:"resumed,omitempty"` // found by Comment from an earlier attempt of this run; not re-sent
	Counts     Counts    `json:"counts"`
	// Backups are the wave's snapshots taken before it was sent
	// (install.backup), one per instance.
	Backups []Backup `json:"backups,omitempty"`
	// Commands are the SendCommand calls of the wave (SSM takes at most 50
	// instance ids a call, so a large wave is several commands).
	Commands  []Command  `json:"commands,omitempty"`
	Instances []Instance `json:"instances"`
}

// Backup is one instance's snapshots before its wave.
type Backup struct {
	InstanceID string   `json:"instanceId"`
	Snapshots  []string `json:"snapshots,omitempty"`
	Volumes    []string `json:"volumes,omitempty"` // the volume of each snapshot
	Reused     bool     `json:"reused,omitempty"`  // taken by an earlier attempt of this run
	// Restore are the commands that bring the instance's volumes back,
	// for an instance that failed to patch.
	Restore []string `json:"restore,omitempty"`
	Reason  string   `json:"reason,omitempty"` // why it is not ready: the instance was not patched
}

// Command is one SendCommand of a wave: sent, resumed or (dry run) planned.
type Command struct {
	CommandID      string `json:"commandId,omitempty"`
	Comment        string `json:"comment"`
	ConsoleURL     string `json:"consoleUrl,omitempty"`
	Instances      int    `json:"instances"`
	MaxConcurrency string `json:"maxConcurrency"`
	MaxErrors      string `json:"maxErrors"`
	TimeoutSeconds int32  `json:"timeoutSeconds"`
	Document       string `json:"document"`
	// Parameters are the document parameters (Operation, SnapshotId, RebootOption).
	Parameters map[string][]string `json:"parameters,omitempty"`
	Status     string              `json:"status,omitempty"` // SSM's command status when last seen
	// FromCounts: SSM's counts said every invocation succeeded, so the
	// outcomes were taken from them instead of listing each invocation;
	// the phase's patch states after patching are the per-instance proof.
	FromCounts bool `json:"fromCounts,omitempty"`
	Resumed    bool `json:"resumed,omitempty"`
	Sent       bool `json:"sent"`
	// Reconciled: the SendCommand's answer was lost or unreadable and the
	// command was then found in SSM (and tracked like any other).
	Reconciled bool `json:"reconciled,omitempty"`
	// Resent: an ambiguous SendCommand left no trace within the reconcile
	// window, so it was sent again ResentAfterSeconds after the first try.
	Resent             bool    `json:"resent,omitempty"`
	ResentAfterSeconds float64 `json:"resentAfterSeconds,omitempty"`
	// Unknown: patchgate could not tell whether the command was sent; its
	// instances are inconclusive and nothing later was sent.
	Unknown bool `json:"unknown,omitempty"`
}

// Instance is one instance's outcome in a wave.
type Instance struct {
	ID            string    `json:"id"`
	Name          string    `json:"name,omitempty"` // Name tag or computer name
	Platform      string    `json:"platform,omitempty"`
	Outcome       Outcome   `json:"outcome"`
	SSMStatus     string    `json:"ssmStatus,omitempty"`     // invocation Status
	StatusDetails string    `json:"statusDetails,omitempty"` // invocation StatusDetails
	Error         string    `json:"error,omitempty"`         // short excerpt of the failure output
	PatchEndedAt  time.Time `json:"patchEndedAt,omitzero"`
}

// Verification is the evidence a phase's gate was decided on.
type Verification struct {
	Verdict    Status      `json:"verdict"` // passed, failed or inconclusive
	Reasons    []Reason    `json:"reasons,omitempty"`
	Compliance *Compliance `json:"compliance,omitempty"`
	Inspector  *Inspector  `json:"inspector,omitempty"`
	Warnings   []string    `json:"warnings,omitempty"`
}

// Compliance summarises patch states before and after the phase.
type Compliance struct {
	Before    PatchCounts `json:"before"`
	After     PatchCounts `json:"after"`
	Instances int         `json:"instances"`
	Compliant int         `json:"compliant"`
	Percent   float64     `json:"percent"` // Compliant/Instances*100
	// PendingReboot counts the patched instances with patches installed
	// but waiting for a reboot, whatever the policy's rule makes of them.
	PendingReboot PendingReboot        `json:"pendingReboot,omitzero"`
	NonCompliant  []InstanceCompliance `json:"nonCompliant,omitempty"`
	// BeforeNotRead: the patch states were not read before the phase (its
	// gate judges only the states after), so Before is unknown, not zero.
	BeforeNotRead bool `json:"beforeNotRead,omitempty"`
}

// PendingReboot is how many patches await a reboot on how many instances.
type PendingReboot struct {
	Instances int `json:"instances"`
	Patches   int `json:"patches"`
}

// PatchCounts sums DescribeInstancePatchStates counts over the phase's instances.
type PatchCounts struct {
	Installed              int `json:"installed"`
	InstalledOther         int `json:"installedOther"`
	InstalledPendingReboot int `json:"installedPendingReboot"`
	InstalledRejected      int `json:"installedRejected"`
	Missing                int `json:"missing"`
	Failed                 int `json:"failed"`
	NotApplicable          int `json:"notApplicable"`
	CompliantInstances     int `json:"compliantInstances"`
}

// Plus adds two sets of counts.
func (p PatchCounts) Plus(o PatchCounts) PatchCounts {
	return PatchCounts{Installed: p.Installed + o.Installed, InstalledOther: p.InstalledOther + o.InstalledOther,
		InstalledPendingReboot: p.InstalledPendingReboot + o.InstalledPendingReboot, InstalledRejected: p.InstalledRejected + o.InstalledRejected,
		Missing: p.Missing + o.Missing, Failed: p.Failed + o.Failed, NotApplicable: p.NotApplicable + o.NotApplicable,
		CompliantInstances: p.CompliantInstances + o.CompliantInstances}
}

// InstanceCompliance explains why one instance is not compliant.
type InstanceCompliance struct {
	InstanceID    string   `json:"instanceId"`
	Reason        string   `json:"reason"`
	Missing       int      `json:"missing"`
	Failed        int      `json:"failed"`
	PendingReboot int      `json:"pendingReboot"`
	Patches       []Patch  `json:"patches,omitempty"` // missing/failed patches, bounded
	CVEs          []string `json:"cves,omitempty"`
}

// Patch is one missing or failed patch.
type Patch struct {
	Title          string   `json:"title"`
	KBID           string   `json:"kbId,omitempty"`
	State          string   `json:"state"`
	Severity       string   `json:"severity,omitempty"`
	Classification string   `json:"classification,omitempty"`
	CVEs           []string `json:"cves,omitempty"`
}

// Inspector is the Amazon Inspector evidence for a phase.
type Inspector struct {
	Fixed     []Finding `json:"fixed,omitempty"`     // ACTIVE before, CLOSED after
	Remaining []Finding `json:"remaining,omitempty"` // still ACTIVE with a fix available
	NoFix     []Finding `json:"noFix,omitempty"`     // ACTIVE, no fix available: reported, not blocking
	New       []Finding `json:"new,omitempty"`       // not ACTIVE before the run, ACTIVE after
	// FixedBySeverity and RemainingBySeverity count findings per Inspector severity.
	FixedBySeverity     map[string]int `json:"fixedBySeverity,omitempty"`
	RemainingBySeverity map[string]int `json:"remainingBySeverity,omitempty"`
	Uncovered           []Coverage     `json:"uncovered,omitempty"` // instances without a rescan newer than their patch
	Evidence            []Coverage     `json:"evidence,omitempty"`  // per-instance scan time vs patch time
	// Listed, when set, says only the findings the gate judges were
	// listed: Fixed, NoFix and New and the counts below Listed.MinSeverity
	// hold only what that listing met, so a report shows them as not
	// measured, never as zero. Nil: every ACTIVE and CLOSED finding was
	// listed.
	Listed *FindingsListed `json:"listed,omitempty"`
}

// Counted reports whether RemainingBySeverity measures severity: every
// severity when all findings were listed, else those at or above
// Listed.MinSeverity (Inspector's order; an unknown one is not counted).
func (in *Inspector) Counted(severity string) bool {
	if in.Listed == nil || in.Listed.MinSeverity == "" {
		return true
	}
	s, sok := SeverityRank(severity)
	t, tok := SeverityRank(in.Listed.MinSeverity)
	return sok && tok && s >= t
}

// severityOrder is Inspector's severities, lowest first.
var severityOrder = []string{"UNTRIAGED", "INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// SeverityRank is an Inspector severity's place in Inspector's order:
// UNTRIAGED 0 up to CRITICAL 5. It is 0 and false for a severity Inspector
// does not define. The one order every package judges severities by.
func SeverityRank(severity string) (int, bool) {
	i := slices.Index(severityOrder, severity)
	return max(i, 0), i >= 0
}

// Severities lists Inspector's severities, lowest first.
func Severities() []string { return slices.Clone(severityOrder) }

// FindingsListed is what a gate's Inspector listing asked for: ACTIVE
// findings with a fix at or above MinSeverity (every severity when empty),
// and ACTIVE findings of RequiredCVEs whatever their severity or fix.
type FindingsListed struct {
	MinSeverity  string   `json:"minSeverity,omitempty"`
	RequiredCVEs []string `json:"requiredCves,omitempty"`
}

// Finding is one CVE on one instance.
type Finding struct {
	InstanceID   string `json:"instanceId"`
	CVE          string `json:"cve"`
	Severity     string `json:"severity"`
	Package      string `json:"package,omitempty"`
	FixAvailable bool   `json:"fixAvailable"`
	Status       string `json:"status"`
}

// Coverage is one instance's Inspector scan evidence.
type Coverage struct {
	InstanceID    string    `json:"instanceId"`
	ScanStatus    string    `json:"scanStatus"`
	Reason        string    `json:"reason,omitempty"`
	LastScannedAt time.Time `json:"lastScannedAt,omitzero"`
	PatchEndedAt  time.Time `json:"patchEndedAt,omitzero"`
}
