package plan

import (
	"fmt"
	"slices"

	"github.com/patchgate/patchgate/internal/policy"
)

// Risk checks of the safety settings (issue #20).
const (
	RiskBackupOff          = "backup-off"
	RiskHealthAlarmRemoved = "health-alarm-removed"
	RiskHooksRemoved       = "hooks-removed"
)

// safetyFields are the safety settings as plan's field changes show them.
func safetyFields(s *policy.Spec, add func(field, value string)) {
	if b := s.Install.Backup; b != nil {
		v := b.Mode
		if b.SnapshotEnabled() {
			v = fmt.Sprintf("snapshot, retain %d days, wait for %s (timeout %s)", b.RetainDays, b.WaitFor, b.Timeout)
		}
		add("backup", v)
	}
	if h := s.Install.Hooks; h.Set() {
		add("hook preInstall", h.PreInstall)
		add("hook postInstall", h.PostInstall)
		add("hook onExit", h.OnExit)
	}
	for _, ph := range s.Phases {
		if h := ph.Verify.Health; h != nil {
			add(ph.Name+": health alarms", list(h.Alarms))
			add(ph.Name+": health during", h.During)
			if h.AllowAlarmAtStart {
				add(ph.Name+": health allowAlarmAtStart", "true")
			}
		}
	}
	if s.Reporting.SecurityHub {
		add("securityHub", "true")
	}
	add("sns", s.Reporting.SNS)
}

// safetyRisks: a backup turned off, a health alarm removed (or an alarm
// already firing let through at start), a hook removed.
func safetyRisks(old, cur *policy.Policy, add func(check, phase, format string, args ...any)) {
	if old.Spec.Install.Backup.SnapshotEnabled() && !cur.Spec.Install.Backup.SnapshotEnabled() {
		add(RiskBackupOff, "", "install.backup is turned off: instances are patched without a snapshot to restore from")
	}
	oh, nh := old.Spec.Install.Hooks, cur.Spec.Install.Hooks
	if oh.Set() {
		if nh == nil {
			nh = &policy.Hooks{}
		}
		for _, h := range []struct{ name, was, is string }{{"preInstall", oh.PreInstall, nh.PreInstall}, {"postInstall", oh.PostInstall, nh.PostInstall}, {"onExit", oh.OnExit, nh.OnExit}} {
			if h.was != "" && h.is == "" {
				add(RiskHooksRemoved, "", "the %s hook %s is removed: it no longer runs around the install", h.name, h.was)
			}
		}
	}
	curPhases := phaseMap(cur)
	for _, o := range old.Spec.Phases {
		ph := curPhases[o.Name]
		if ph == nil || o.Verify.Health == nil {
			continue // a removed phase is a risk of its own
		}
		n := o.Name
		var now []string
		if ph.Verify.Health != nil {
			now = ph.Verify.Health.Alarms
		}
		for _, a := range o.Verify.Health.Alarms {
			if !slices.Contains(now, a) {
				add(RiskHealthAlarmRemoved, n, "%s: health alarm %s is no longer watched: its ALARM no longer stops the rollout", n, a)
			}
		}
		if ph.Verify.Health != nil && !o.Verify.Health.AllowAlarmAtStart && ph.Verify.Health.AllowAlarmAtStart {
			add(RiskHealthAlarmRemoved, n, "%s: health allowAlarmAtStart is turned on: the phase starts while a listed alarm is already in ALARM", n)
		}
	}
}
