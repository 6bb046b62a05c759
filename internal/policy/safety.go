package policy

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Safety settings of issue #20: a backup before each wave, lifecycle hooks,
// an application-health gate, and where findings and notifications go.
// Their types, defaults, validation and compiled form live here; docs/policy.md
// ("Backups, hooks, health and notifications") is their contract.

// Backup is install.backup: EBS snapshots of every targeted instance's
// volumes before its wave is sent.
type Backup struct {
	// Mode is "snapshot" (CreateSnapshots per instance) or "none".
	Mode string `yaml:"mode" json:"mode"`
	// RetainDays: snapshots patchgate made that are older are deleted by the
	// retention sweep. Default 14.
	RetainDays int `yaml:"retainDays" json:"retainDays,omitempty"`
	// WaitFor is the snapshot state patching may start at: "pending" (the
	// default: EBS fixes a snapshot's point in time when CreateSnapshots
	// returns, so later writes do not reach it) or "completed" (every
	// snapshot readable before anything changes; slower, for the cautious).
	WaitFor string `yaml:"waitFor" json:"waitFor,omitempty"`
	// Timeout bounds the wait; an instance whose snapshots are not ready by
	// then is not patched. Default 30m.
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// Hooks is install.hooks: SSM documents AWS-RunPatchBaselineWithHooks runs
// before the install, after it (before the reboot) and on exit (after the
// reboot).
type Hooks struct {
	PreInstall  string `yaml:"preInstall" json:"preInstall,omitempty"`
	PostInstall string `yaml:"postInstall" json:"postInstall,omitempty"`
	OnExit      string `yaml:"onExit" json:"onExit,omitempty"`
}

// Health is a phase's verify.health: CloudWatch alarms that must stay out
// of ALARM while the phase patches and soaks.
type Health struct {
	// Alarms are alarm names; one ending in "*" is a name prefix.
	Alarms []string `yaml:"alarms" json:"alarms"`
	// During is "soak" (the default: read before the phase, after each wave
	// and polled through the soak) or "waves" (also polled while each wave's
	// command runs, so an alarm stops a wave in flight).
	During string `yaml:"during" json:"during,omitempty"`
	// AllowAlarmAtStart lets a phase start while a listed alarm is already
	// in ALARM; it then fails the phase only if it re-enters ALARM (a newer
	// state change). Default false: an alarm in ALARM refuses the phase.
	AllowAlarmAtStart bool `yaml:"allowAlarmAtStart" json:"allowAlarmAtStart,omitempty"`
	// PollInterval is how often alarms are read while watching. Default 1m
	// (CloudWatch evaluates most alarms once a minute), 10s..15m.
	PollInterval Duration `yaml:"pollInterval" json:"pollInterval"`
}

// Safety defaults and values.
const (
	BackupSnapshot          = "snapshot"
	BackupNone              = "none"
	WaitPending             = "pending"
	WaitCompleted           = "completed"
	HealthDuringSoak        = "soak"
	HealthDuringWaves       = "waves"
	DefaultRetainDays       = 14
	DefaultBackupTimeout    = 30 * time.Minute
	DefaultHealthPoll       = time.Minute
	DefaultHealthDuring     = HealthDuringSoak
	DefaultBackupWaitFor    = WaitPending
	MaxHealthAlarms         = 100
	maxAlarmNameLength      = 255
	maxSNSTopicNameLength   = 256
	hookDocumentNameMaxSize = 128
)

var (
	BackupModes   = []string{BackupSnapshot, BackupNone}
	WaitStates    = []string{WaitPending, WaitCompleted}
	HealthDurings = []string{HealthDuringSoak, HealthDuringWaves}
	// HookDocumentPattern is the pattern AWS-RunPatchBaselineWithHooks
	// applies to its hook parameters: a document name, or a document ARN.
	HookDocumentPattern = regexp.MustCompile(`^([a-zA-Z0-9_.-]{3,128}|arn:aws(-[a-z]+)*:ssm:[a-z0-9-]+:[0-9]{12}:document/[a-zA-Z0-9_.-]{3,128})$`)
	snsTopicPattern     = regexp.MustCompile(`^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)
)

// SnapshotEnabled reports whether install.backup asks for snapshots.
func (b *Backup) SnapshotEnabled() bool { return b != nil && b.Mode == BackupSnapshot }

// Set reports whether any hook is named.
func (h *Hooks) Set() bool {
	return h != nil && (h.PreInstall != "" || h.PostInstall != "" || h.OnExit != "")
}

// applySafetyDefaults fills the safety settings' defaults; ApplyDefaults
// calls it.
func applySafetyDefaults(s *Spec) {
	if b := s.Install.Backup; b != nil && b.Mode == BackupSnapshot {
		if b.RetainDays == 0 {
			b.RetainDays = DefaultRetainDays
		}
		if b.WaitFor == "" {
			b.WaitFor = DefaultBackupWaitFor
		}
		if b.Timeout.Duration == 0 {
			b.Timeout.Duration = DefaultBackupTimeout
		}
	}
	for i := range s.Phases {
		if h := s.Phases[i].Verify.Health; h != nil {
			if h.During == "" {
				h.During = DefaultHealthDuring
			}
			if h.PollInterval.Duration == 0 {
				h.PollInterval.Duration = DefaultHealthPoll
			}
		}
	}
}

// safety validates install.backup, install.hooks, every phase's
// verify.health and reporting.sns.
func (c *v) safety() {
	s := &c.p.Spec
	if b := s.Install.Backup; b != nil {
		const bp = "spec.install.backup"
		if c.required(bp+".mode", b.Mode) {
			c.oneOf(bp+".mode", b.Mode, BackupModes)
		}
		c.oneOf(bp+".waitFor", b.WaitFor, WaitStates)
		if b.RetainDays < 0 || b.RetainDays > 3650 {
			c.add(bp+".retainDays", "retainDays %d must be between 1 and 3650 days", b.RetainDays)
		}
		c.durationIn(bp+".timeout", b.Timeout, time.Minute, 24*time.Hour, true)
		if b.Mode == BackupNone && (b.RetainDays != 0 || b.WaitFor != "" || b.Timeout.Duration != 0) {
			c.add(bp, "backup settings are given but mode is none: set mode: snapshot or remove them")
		}
	}
	if h := s.Install.Hooks; h != nil {
		const hp = "spec.install.hooks"
		if !h.Set() {
			c.add(hp, "install.hooks names no document: set preInstall, postInstall or onExit, or remove the key")
		}
		for _, f := range []struct{ field, val string }{{"preInstall", h.PreInstall}, {"postInstall", h.PostInstall}, {"onExit", h.OnExit}} {
			if f.val != "" && !HookDocumentPattern.MatchString(f.val) {
				c.add(hp+"."+f.field, "%s %q is not an SSM document name (3-128 of letters, digits, _ . -) or document ARN", f.field, f.val)
			}
		}
		if s.OperatingSystem == "MACOS" && h.Set() {
			c.add(hp, "install.hooks cannot be used on MACOS: AWS-RunPatchBaselineWithHooks does not support macOS; remove them")
		}
	}
	for i := range s.Phases {
		h := s.Phases[i].Verify.Health
		if h == nil {
			continue
		}
		hp := fmt.Sprintf("spec.phases[%d].verify.health", i)
		if len(h.Alarms) == 0 {
			c.add(hp+".alarms", "verify.health.alarms is empty: list 1 to %d alarm names or prefixes (ending in *), or remove verify.health", MaxHealthAlarms)
		} else {
			c.count(hp+".alarms", len(h.Alarms), 1, MaxHealthAlarms, "alarms")
		}
		for j, a := range h.Alarms {
			if msg := alarmProblem(a); msg != "" {
				c.add(fmt.Sprintf("%s.alarms[%d]", hp, j), "alarm %q %s", a, msg)
			}
		}
		c.unique(hp+".alarms", h.Alarms, "alarm")
		c.oneOf(hp+".during", h.During, HealthDurings)
		c.durationIn(hp+".pollInterval", h.PollInterval, 10*time.Second, 15*time.Minute, true)
	}
	if t := s.Reporting.SNS; t != "" && !snsTopicPattern.MatchString(t) {
		c.add("spec.reporting.sns", "sns %q is not an SNS topic ARN like arn:aws:sns:us-east-1:111122223333:patchgate", t)
	}
}

// alarmProblem says what is wrong with an alarm name or prefix, or "".
func alarmProblem(a string) string {
	name, _ := strings.CutSuffix(a, "*")
	switch {
	case strings.TrimSpace(name) == "":
		return "must name an alarm or a prefix of at least one character before *"
	case len(name) > maxAlarmNameLength:
		return fmt.Sprintf("is longer than %d characters", maxAlarmNameLength)
	case strings.Contains(name, "*"):
		return "may contain * only at its end (a prefix)"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "contains a control character"
	}
	return ""
}

// HealthGate is a stage's compiled verify.health.
type HealthGate struct {
	Names             []string      `json:"names,omitempty"`    // exact alarm names
	Prefixes          []string      `json:"prefixes,omitempty"` // name prefixes (the * removed)
	During            string        `json:"during"`
	AllowAlarmAtStart bool          `json:"allowAlarmAtStart,omitempty"`
	PollInterval      time.Duration `json:"-"`
	PollIntervalText  string        `json:"pollInterval"`
}

// BackupPlan is the rollout's compiled install.backup.
type BackupPlan struct {
	RetainDays  int           `json:"retainDays"`
	WaitFor     string        `json:"waitFor"`
	Timeout     time.Duration `json:"-"`
	TimeoutText string        `json:"timeout"`
}

// Notifications are where the rollout reports besides the run's report.
type Notifications struct {
	SecurityHub bool   `json:"securityHub,omitempty"`
	SNSTopic    string `json:"sns,omitempty"`
}

// cloneSafety gives s its own copies of the safety settings, so that
// defaults applied to a copy of a policy do not write the original.
func cloneSafety(s *Spec) {
	if b := s.Install.Backup; b != nil {
		c := *b
		s.Install.Backup = &c
	}
	for i := range s.Phases {
		if h := s.Phases[i].Verify.Health; h != nil {
			c := *h
			s.Phases[i].Verify.Health = &c
		}
	}
}

// compileSafety fills r's and its stages' safety settings from q, a
// defaulted copy of the policy.
func compileSafety(q *Policy, r *Rollout) {
	in := q.Spec.Install
	if in.Backup.SnapshotEnabled() {
		b := in.Backup
		r.Backup = &BackupPlan{RetainDays: b.RetainDays, WaitFor: b.WaitFor, Timeout: b.Timeout.Duration, TimeoutText: b.Timeout.String()}
	}
	if in.Hooks.Set() {
		h := *in.Hooks
		r.Hooks = &h
	}
	r.Notify = Notifications{SecurityHub: q.Spec.Reporting.SecurityHub, SNSTopic: q.Spec.Reporting.SNS}
	for i := range r.Stages {
		h := q.Spec.Phases[r.Stages[i].Index].Verify.Health
		if h == nil {
			continue
		}
		g := &HealthGate{During: h.During, AllowAlarmAtStart: h.AllowAlarmAtStart, PollInterval: h.PollInterval.Duration, PollIntervalText: h.PollInterval.String()}
		for _, a := range h.Alarms {
			if p, ok := strings.CutSuffix(a, "*"); ok {
				g.Prefixes = append(g.Prefixes, p)
			} else {
				g.Names = append(g.Names, a)
			}
		}
		r.Stages[i].Health = g
	}
}
