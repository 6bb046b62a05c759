// Package policy is patchgate's policy-as-code format, version 1: the types,
// a strict loader over fs.FS that reports every problem as FILE:LINE:COL,
// validation of every constraint of the format, and the defaults, applied
// in one place (ApplyDefaults). The format's contract is docs/policy.md.
//
// The package never imports AWS: it describes intent; other packages act.
package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// APIVersion and Kind identify a v1 policy document.
const (
	APIVersion = "patchgate.dev/v1"
	Kind       = "PatchPolicy"
)

// Policy is one policy file.
type Policy struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`

	// Source is where the policy came from; not part of the document.
	Source Source `yaml:"-" json:"-"`
}

// Source locates a policy and its fields for error messages.
type Source struct {
	File string
	// pos maps a field path ("spec.phases[1].maxErrors") to its position.
	pos map[string]Pos
}

// Pos is a 1-based line and column.
type Pos struct{ Line, Col int }

// PosOf returns the position of the field at path, or of its nearest
// ancestor that has one.
func (s Source) PosOf(path string) Pos {
	for path != "" {
		if p, ok := s.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return s.pos[""]
}

// Metadata names and describes a policy.
type Metadata struct {
	Name        string   `yaml:"name" json:"name"`
	Description string   `yaml:"description" json:"description,omitempty"`
	Owners      []string `yaml:"owners" json:"owners,omitempty"`
}

// Spec is what the policy asks for.
type Spec struct {
	OperatingSystem string    `yaml:"operatingSystem" json:"operatingSystem"`
	Baseline        Baseline  `yaml:"baseline" json:"baseline"`
	Install         Install   `yaml:"install" json:"install"`
	Schedule        *Schedule `yaml:"schedule" json:"schedule,omitempty"`
	Accounts        []Account `yaml:"accounts" json:"accounts,omitempty"`
	Regions         []string  `yaml:"regions" json:"regions"`
	Phases          []Phase   `yaml:"phases" json:"phases"`
	Reporting       Reporting `yaml:"reporting" json:"reporting"`
	Rings           *Rings    `yaml:"rings" json:"rings,omitempty"` // rings.go
}

// Baseline is synced to the SSM patch baseline patchgate-<name>.
type Baseline struct {
	ApprovalRules         []ApprovalRule `yaml:"approvalRules" json:"approvalRules"`
	ApprovedPatches       []string       `yaml:"approvedPatches" json:"approvedPatches,omitempty"`
	RejectedPatches       []string       `yaml:"rejectedPatches" json:"rejectedPatches,omitempty"`
	RejectedPatchesAction string         `yaml:"rejectedPatchesAction" json:"rejectedPatchesAction"`
}

// ApprovalRule is one SSM patch baseline approval rule.
type ApprovalRule struct {
	Classifications   []string            `yaml:"classifications" json:"classifications,omitempty"`
	Severities        []string            `yaml:"severities" json:"severities,omitempty"`
	Products          []string            `yaml:"products" json:"products,omitempty"`
	Filters           map[string][]string `yaml:"filters" json:"filters,omitempty"`
	ApproveAfterDays  *int                `yaml:"approveAfterDays" json:"approveAfterDays,omitempty"`
	ApproveUntilDate  string              `yaml:"approveUntilDate" json:"approveUntilDate,omitempty"`
	ComplianceLevel   string              `yaml:"complianceLevel" json:"complianceLevel"`
	EnableNonSecurity bool                `yaml:"enableNonSecurity" json:"enableNonSecurity"`
}

// Install says how AWS-RunPatchBaseline installs.
type Install struct {
	RebootOption string `yaml:"rebootOption" json:"rebootOption"`
	// PendingReboot is what a patch installed but waiting for a reboot
	// means to the gate: "fail" or "warn". Default: fail with
	// RebootIfNeeded (the reboot should have happened), warn with NoReboot.
	PendingReboot    string   `yaml:"pendingReboot" json:"pendingReboot"`
	DeliveryTimeout  Duration `yaml:"deliveryTimeout" json:"deliveryTimeout"`
	ExecutionTimeout Duration `yaml:"executionTimeout" json:"executionTimeout"`
	Backup           *Backup  `yaml:"backup" json:"backup,omitempty"` // see safety.go
	Hooks            *Hooks   `yaml:"hooks" json:"hooks,omitempty"`
}

// Schedule restricts when a policy may patch.
type Schedule struct {
	Cron            string   `yaml:"cron" json:"cron"`
	Duration        Duration `yaml:"duration" json:"duration"`
	Timezone        string   `yaml:"timezone" json:"timezone"`
	Freezes         []Freeze `yaml:"freezes" json:"freezes,omitempty"`
	ChangeCalendars []string `yaml:"changeCalendars" json:"changeCalendars,omitempty"`
}

// Freeze is an inclusive range of dates without patching.
type Freeze struct {
	From   string `yaml:"from" json:"from"`
	To     string `yaml:"to" json:"to"`
	Reason string `yaml:"reason" json:"reason,omitempty"`
}

// Account is an AWS account the policy patches.
type Account struct {
	ID      string `yaml:"id" json:"id"`
	RoleArn string `yaml:"roleArn" json:"roleArn,omitempty"`
}

// Phase is one ring of the rollout.
type Phase struct {
	Name             string   `yaml:"name" json:"name"`
	Targets          Targets  `yaml:"targets" json:"targets"`
	MaxConcurrency   string   `yaml:"maxConcurrency" json:"maxConcurrency"`
	MaxErrors        string   `yaml:"maxErrors" json:"maxErrors"`
	SuccessThreshold string   `yaml:"successThreshold" json:"successThreshold"`
	Offline          string   `yaml:"offline" json:"offline"`
	Waves            []string `yaml:"waves" json:"waves"`
	Soak             Duration `yaml:"soak" json:"soak"`
	Verify           Verify   `yaml:"verify" json:"verify"`
	// Accounts, Regions and Promotion: see rings.go.
	Accounts  []Account  `yaml:"accounts" json:"accounts,omitempty"`
	Regions   []string   `yaml:"regions" json:"regions,omitempty"`
	Promotion *Promotion `yaml:"promotion" json:"promotion,omitempty"`
}

// Targets select a phase's instances: exactly one of Tags or InstanceIDs.
type Targets struct {
	Tags        map[string]string `yaml:"tags" json:"tags,omitempty"`
	InstanceIDs []string          `yaml:"instanceIds" json:"instanceIds,omitempty"`
}

// Verify configures a phase's evidence gate.
type Verify struct {
	Compliance *bool           `yaml:"compliance" json:"compliance"`
	Inspector  InspectorVerify `yaml:"inspector" json:"inspector"`
	Health     *Health         `yaml:"health" json:"health,omitempty"` // see safety.go
}

// ComplianceEnabled reports whether patch compliance is checked (default true).
func (v Verify) ComplianceEnabled() bool { return v.Compliance == nil || *v.Compliance }

// InspectorVerify configures the Amazon Inspector rescan gate.
type InspectorVerify struct {
	Enabled        bool     `yaml:"enabled" json:"enabled"`
	FailOnSeverity string   `yaml:"failOnSeverity" json:"failOnSeverity"`
	RescanTimeout  Duration `yaml:"rescanTimeout" json:"rescanTimeout"`
	RequireFixed   []string `yaml:"requireFixed" json:"requireFixed,omitempty"`
}

// Reporting configures where results go besides the report.
type Reporting struct {
	CloudwatchNamespace string `yaml:"cloudwatchNamespace" json:"cloudwatchNamespace,omitempty"`
	SecurityHub         bool   `yaml:"securityHub" json:"securityHub,omitempty"`
	SNS                 string `yaml:"sns" json:"sns,omitempty"`
}

// Duration is a Go duration written as a string ("90s", "30m", "2h").
type Duration struct{ time.Duration }

// String renders the duration compactly ("2h", "30m", "1h30m").
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalJSON writes the duration as its string form.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.String())), nil }

// Percent is SSM's "N" or "N%" (maxConcurrency, maxErrors) or a share ("98%").
type Percent struct {
	Value     int
	IsPercent bool
}

// ParsePercent parses "N" or "N%".
func ParsePercent(s string) (Percent, error) {
	s = strings.TrimSpace(s)
	p := Percent{IsPercent: strings.HasSuffix(s, "%")}
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil || n < 0 || strings.HasPrefix(strings.TrimSuffix(s, "%"), "+") {
		return Percent{}, fmt.Errorf("%q is not a whole number or a percentage like \"10\" or \"10%%\"", s)
	}
	p.Value = n
	return p, nil
}

// Of applies the value to a total: a percentage of it, or the number itself.
func (p Percent) Of(total int) int {
	if p.IsPercent {
		return total * p.Value / 100
	}
	return p.Value
}

func (p Percent) String() string {
	if p.IsPercent {
		return strconv.Itoa(p.Value) + "%"
	}
	return strconv.Itoa(p.Value)
}
