package policy

import "time"

// Defaults, in one place. docs/policy.md lists the same values, and
// `patchgate plan` shows the effective policy with them applied.
const (
	DefaultRebootOption          = "RebootIfNeeded"
	DefaultDeliveryTimeout       = 10 * time.Minute
	DefaultExecutionTimeout      = 2 * time.Hour
	DefaultMaxConcurrency        = "10%"
	DefaultMaxErrors             = "0"
	DefaultSuccessThreshold      = "100%"
	DefaultOffline               = "fail"
	DefaultRejectedPatchesAction = "ALLOW_AS_DEPENDENCY"
	DefaultComplianceLevel       = "UNSPECIFIED"
	DefaultFailOnSeverity        = "HIGH"
	DefaultRescanTimeout         = 45 * time.Minute
	DefaultScheduleDuration      = 4 * time.Hour
	DefaultTimezone              = "UTC"
)

// DefaultPendingReboot is the pending-reboot rule for a reboot option: with
// RebootIfNeeded a pending reboot means the reboot did not happen (fail);
// with NoReboot it is expected (warn), as v1 counted it compliant.
func DefaultPendingReboot(rebootOption string) string {
	if rebootOption == "NoReboot" {
		return PendingRebootWarn
	}
	return PendingRebootFail
}

// Pending-reboot rules.
const (
	PendingRebootFail = "fail"
	PendingRebootWarn = "warn"
)

// DefaultWaves is one wave with every instance.
var DefaultWaves = []string{"100%"}

// ApplyDefaults fills every field the policy left empty. It is idempotent.
func ApplyDefaults(p *Policy) {
	s := &p.Spec
	if s.Baseline.RejectedPatchesAction == "" {
		s.Baseline.RejectedPatchesAction = DefaultRejectedPatchesAction
	}
	for i := range s.Baseline.ApprovalRules {
		if s.Baseline.ApprovalRules[i].ComplianceLevel == "" {
			s.Baseline.ApprovalRules[i].ComplianceLevel = DefaultComplianceLevel
		}
	}
	if s.Install.RebootOption == "" {
		s.Install.RebootOption = DefaultRebootOption
	}
	if s.Install.PendingReboot == "" {
		s.Install.PendingReboot = DefaultPendingReboot(s.Install.RebootOption)
	}
	if s.Install.DeliveryTimeout.Duration == 0 {
		s.Install.DeliveryTimeout.Duration = DefaultDeliveryTimeout
	}
	if s.Install.ExecutionTimeout.Duration == 0 {
		s.Install.ExecutionTimeout.Duration = DefaultExecutionTimeout
	}
	if sc := s.Schedule; sc != nil {
		if sc.Duration.Duration == 0 {
			sc.Duration.Duration = DefaultScheduleDuration
		}
		if sc.Timezone == "" {
			sc.Timezone = DefaultTimezone
		}
	}
	for i := range s.Phases {
		ph := &s.Phases[i]
		if ph.MaxConcurrency == "" {
			ph.MaxConcurrency = DefaultMaxConcurrency
		}
		if ph.MaxErrors == "" {
			ph.MaxErrors = DefaultMaxErrors
		}
		if ph.SuccessThreshold == "" {
			ph.SuccessThreshold = DefaultSuccessThreshold
		}
		if ph.Offline == "" {
			ph.Offline = DefaultOffline
		}
		if len(ph.Waves) == 0 {
			ph.Waves = append([]string(nil), DefaultWaves...)
		}
		if ph.Verify.Compliance == nil {
			t := true
			ph.Verify.Compliance = &t
		}
		if ph.Verify.Inspector.FailOnSeverity == "" {
			ph.Verify.Inspector.FailOnSeverity = DefaultFailOnSeverity
		}
		if ph.Verify.Inspector.RescanTimeout.Duration == 0 {
			ph.Verify.Inspector.RescanTimeout.Duration = DefaultRescanTimeout
		}
	}
	applySafetyDefaults(s)
}
