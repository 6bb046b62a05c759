package policy

import (
	"encoding/json"
	"fmt"
	"time"
)

// Rollout is a validated policy compiled for running: every default
// applied and every limit parsed once, so that `run`, `run --dry-run`,
// `plan` and the reports read the same numbers. Waves and chunks depend on
// how many instances a phase finds, so a Stage cuts them on demand.
type Rollout struct {
	Policy           string        `json:"policy"`
	RebootOption     string        `json:"rebootOption"`
	PendingReboot    string        `json:"pendingReboot"` // PendingRebootFail or PendingRebootWarn
	DeliveryTimeout  time.Duration `json:"-"`
	ExecutionTimeout time.Duration `json:"-"`
	// The durations as the policy writes them, for JSON.
	DeliveryTimeoutText  string  `json:"deliveryTimeout"`
	ExecutionTimeoutText string  `json:"executionTimeout"`
	Stages               []Stage `json:"phases"`
	Rings                *Rings  `json:"rings,omitempty"` // the store and the barrier opt-out
	// Backup, Hooks and Notify are the safety settings (safety.go); nil
	// Backup or Hooks: none.
	Backup *BackupPlan   `json:"backup,omitempty"`
	Hooks  *Hooks        `json:"hooks,omitempty"`
	Notify Notifications `json:"notify"`
}

// Stage is one compiled phase.
type Stage struct {
	Index            int     `json:"index"` // 0-based position in the policy
	Name             string  `json:"name"`
	Targets          Targets `json:"targets"`
	MaxConcurrency   Percent `json:"maxConcurrency"`
	MaxErrors        Percent `json:"maxErrors"`
	SuccessThreshold Percent `json:"successThreshold"` // always a percentage
	// OfflineFails: instances whose agent is not Online count against the
	// threshold (offline: fail); otherwise they are skipped.
	OfflineFails bool          `json:"offlineFails"`
	Waves        []Percent     `json:"waves"` // cumulative shares, the last 100%
	Soak         time.Duration `json:"-"`
	SoakText     string        `json:"soak,omitempty"`
	Compliance   bool          `json:"compliance"`
	Inspector    Inspection    `json:"inspector"`
	// PendingReboot is the policy's rule, repeated here because the gate
	// reads one stage.
	PendingReboot string `json:"pendingReboot"`
	// The phase's scope and promotion (rings.go).
	Accounts  []Account       `json:"accounts,omitempty"`
	Regions   []string        `json:"regions,omitempty"`
	Promotion *StagePromotion `json:"promotion,omitempty"`
	// Health is the application-health gate (nil: none).
	Health *HealthGate `json:"health,omitempty"`
}

// Inspection is a stage's Amazon Inspector rescan gate.
type Inspection struct {
	Enabled        bool          `json:"enabled"`
	FailOnSeverity string        `json:"failOnSeverity,omitempty"`
	RescanTimeout  time.Duration `json:"-"`
	RequireFixed   []string      `json:"requireFixed,omitempty"`
}

// MarshalJSON writes a limit as the policy does ("5%", "2").
func (p Percent) MarshalJSON() ([]byte, error) { return []byte(`"` + p.String() + `"`), nil }

// UnmarshalJSON reads a limit written by MarshalJSON.
func (p *Percent) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParsePercent(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Ceil is the share of total rounded up (a whole number is itself): the
// instances a wave share covers, or the successes a threshold requires.
func (p Percent) Ceil(total int) int {
	if p.IsPercent {
		return (total*p.Value + 99) / 100
	}
	return p.Value
}

// Compile turns a valid policy into its rollout. The policy must have
// passed validation; a value that still does not parse is an error, never
// a silent default.
func Compile(p *Policy) (*Rollout, error) {
	// Defaults go on a copy; the parts the rollout does not read are left
	// out so that nothing shared with p is written.
	q := *p
	q.Spec.Phases = append([]Phase(nil), p.Spec.Phases...)
	q.Spec.Schedule, q.Spec.Baseline.ApprovalRules = nil, nil
	cloneSafety(&q.Spec)
	ApplyDefaults(&q)
	in := q.Spec.Install
	r := &Rollout{
		Policy: q.Metadata.Name, RebootOption: in.RebootOption, PendingReboot: in.PendingReboot,
		DeliveryTimeout: in.DeliveryTimeout.Duration, ExecutionTimeout: in.ExecutionTimeout.Duration,
		DeliveryTimeoutText: in.DeliveryTimeout.String(), ExecutionTimeoutText: in.ExecutionTimeout.String(), Rings: q.Spec.Rings,
	}
	for i, ph := range q.Spec.Phases {
		where := func(field string) string {
			return fmt.Sprintf("%s: spec.phases[%d].%s", p.Source.File, i, field)
		}
		st := Stage{Index: i, Name: ph.Name, Targets: ph.Targets, OfflineFails: ph.Offline != "skip",
			Soak: ph.Soak.Duration, Compliance: ph.Verify.ComplianceEnabled(), PendingReboot: in.PendingReboot}
		st.Accounts, st.Regions, st.Promotion = scope(&q.Spec, &ph)
		if ph.Soak.Duration > 0 {
			st.SoakText = ph.Soak.String()
		}
		var err error
		if st.MaxConcurrency, err = ParsePercent(ph.MaxConcurrency); err != nil || st.MaxConcurrency.Value < 1 {
			return nil, fmt.Errorf("%s: maxConcurrency %q: must be at least 1 or 1%%", where("maxConcurrency"), ph.MaxConcurrency)
		}
		if st.MaxErrors, err = ParsePercent(ph.MaxErrors); err != nil {
			return nil, fmt.Errorf("%s: %w", where("maxErrors"), err)
		}
		if st.SuccessThreshold, err = ParsePercent(ph.SuccessThreshold); err != nil || !st.SuccessThreshold.IsPercent ||
			st.SuccessThreshold.Value < 1 || st.SuccessThreshold.Value > 100 {
			return nil, fmt.Errorf("%s: successThreshold %q: must be a percentage from 1%% to 100%%", where("successThreshold"), ph.SuccessThreshold)
		}
		prev := 0
		for j, w := range ph.Waves {
			wp, err := ParsePercent(w)
			if err != nil || !wp.IsPercent || wp.Value <= prev || wp.Value > 100 {
				return nil, fmt.Errorf("%s: wave %q: shares must be strictly increasing percentages up to 100%%", where(fmt.Sprintf("waves[%d]", j)), w)
			}
			prev = wp.Value
			st.Waves = append(st.Waves, wp)
		}
		if prev != 100 {
			return nil, fmt.Errorf("%s: the last wave must be 100%%", where("waves"))
		}
		iv := ph.Verify.Inspector
		if iv.Enabled {
			st.Inspector = Inspection{Enabled: true, FailOnSeverity: iv.FailOnSeverity, RescanTimeout: iv.RescanTimeout.Duration, RequireFixed: iv.RequireFixed}
		}
		r.Stages = append(r.Stages, st)
	}
	compileSafety(&q, r)
	return r, nil
}

// WaveEnds is where each wave of n instances ends (cumulative, one per
// share, rounded up; a wave that would be empty takes one instance while
// any remain, and the last wave ends at n).
func (s *Stage) WaveEnds(n int) []int {
	out := make([]int, len(s.Waves))
	done := 0
	for i, w := range s.Waves {
		end := min(w.Ceil(n), n)
		if i == len(s.Waves)-1 {
			end = n
		}
		if end <= done && done < n {
			end = done + 1
		}
		done = max(done, end)
		out[i] = done
	}
	return out
}

// ErrorLimit is how many failed invocations a wave of n instances tolerates
// (maxErrors, a percentage rounded down as SSM reads it).
func (s *Stage) ErrorLimit(n int) int { return s.MaxErrors.Of(n) }

// Required is how many of d counted instances must succeed to meet the
// success threshold.
func (s *Stage) Required(d int) int { return s.SuccessThreshold.Ceil(d) }

// Stage returns the compiled stage of the named phase, or nil.
func (r *Rollout) Stage(name string) *Stage {
	for i := range r.Stages {
		if r.Stages[i].Name == name {
			return &r.Stages[i]
		}
	}
	return nil
}
