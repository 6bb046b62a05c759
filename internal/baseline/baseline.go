// Package baseline is baseline-as-code: the SSM patch baseline a policy
// declares (Desired), how a live baseline differs from it (Compare), and
// the sync that makes AWS match the repository, idempotently.
package baseline

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/policy"
)

// Tags patchgate puts on the baselines it manages; prune touches only
// baselines carrying ManagedByTag=ManagedByValue.
const (
	ManagedByTag   = "managed-by"
	ManagedByValue = "patchgate"
	PolicyTag      = "patchgate-policy"
	NamePrefix     = "patchgate-"
)

// Name is the SSM baseline name of a policy.
func Name(policyName string) string { return NamePrefix + policyName }

// Definition is a patch baseline as patchgate compares it: normalised, so
// that equal intent compares equal whatever order AWS returns lists in.
type Definition struct {
	Name                  string
	OperatingSystem       string
	Description           string
	Rules                 []Rule
	ApprovedPatches       []string
	RejectedPatches       []string
	RejectedPatchesAction string
	PatchGroups           []string
}

// Rule is one approval rule.
type Rule struct {
	Filters           map[string][]string // PatchFilter key -> sorted values
	ApproveAfterDays  *int32
	ApproveUntilDate  string
	ComplianceLevel   string
	EnableNonSecurity bool
}

// PatchGroupTags are the instance tags SSM reads a patch group from.
var PatchGroupTags = []string{"Patch Group", "PatchGroup"}

// PatchGroups are the patch groups a policy's baseline is registered for:
// the "Patch Group" (or "PatchGroup") values its phases target, or, when
// no phase targets by patch group, the group named like the baseline.
// AWS-RunPatchBaseline applies a baseline only to instances tagged with a
// registered group; plan warns about targeted instances that are not.
func PatchGroups(p *policy.Policy) []string {
	var out []string
	for _, ph := range p.Spec.Phases {
		for _, key := range PatchGroupTags {
			if v, ok := ph.Targets.Tags[key]; ok && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	if len(out) == 0 {
		out = []string{Name(p.Metadata.Name)}
	}
	sort.Strings(out)
	return out
}

// Desired is the baseline a policy declares.
func Desired(p *policy.Policy) Definition {
	b := p.Spec.Baseline
	d := Definition{
		Name:            Name(p.Metadata.Name),
		OperatingSystem: p.Spec.OperatingSystem,
		Description: fmt.Sprintf("Managed by patchgate from %s (policy %s); changes made here are overwritten by the next sync.",
			p.Source.File, p.Metadata.Name),
		ApprovedPatches:       sorted(b.ApprovedPatches),
		RejectedPatches:       sorted(b.RejectedPatches),
		RejectedPatchesAction: b.RejectedPatchesAction,
		PatchGroups:           PatchGroups(p),
	}
	if len(d.Description) > 1024 {
		d.Description = d.Description[:1024]
	}
	for _, r := range b.ApprovalRules {
		rule := Rule{Filters: map[string][]string{}, ApproveUntilDate: r.ApproveUntilDate, ComplianceLevel: r.ComplianceLevel,
			EnableNonSecurity: r.EnableNonSecurity}
		if r.ApproveAfterDays != nil {
			rule.ApproveAfterDays = aws.Int32(int32(*r.ApproveAfterDays))
		} else if r.ApproveUntilDate == "" {
			// SSM needs one of the two; Debian-like systems take no delay,
			// which SSM spells ApproveAfterDays 0.
			rule.ApproveAfterDays = aws.Int32(0)
		}
		add := func(key string, vals []string) {
			if len(vals) > 0 {
				rule.Filters[key] = sorted(vals)
			}
		}
		add("CLASSIFICATION", r.Classifications)
		add(policy.SeverityKey(p.Spec.OperatingSystem), r.Severities)
		add("PRODUCT", r.Products)
		for k, v := range r.Filters {
			add(k, v)
		}
		d.Rules = append(d.Rules, rule)
	}
	return d
}

// FromSSM normalises a live baseline.
func FromSSM(out *ssm.GetPatchBaselineOutput) Definition {
	d := Definition{
		Name:                  aws.ToString(out.Name),
		OperatingSystem:       string(out.OperatingSystem),
		Description:           aws.ToString(out.Description),
		ApprovedPatches:       sorted(out.ApprovedPatches),
		RejectedPatches:       sorted(out.RejectedPatches),
		RejectedPatchesAction: string(out.RejectedPatchesAction),
		PatchGroups:           sorted(out.PatchGroups),
	}
	if d.RejectedPatchesAction == "" {
		d.RejectedPatchesAction = policy.DefaultRejectedPatchesAction
	}
	if out.ApprovalRules != nil {
		for _, r := range out.ApprovalRules.PatchRules {
			rule := Rule{Filters: map[string][]string{}, ApproveAfterDays: r.ApproveAfterDays, ApproveUntilDate: aws.ToString(r.ApproveUntilDate),
				ComplianceLevel: string(r.ComplianceLevel), EnableNonSecurity: aws.ToBool(r.EnableNonSecurity)}
			if rule.ComplianceLevel == "" {
				rule.ComplianceLevel = policy.DefaultComplianceLevel
			}
			if r.PatchFilterGroup != nil {
				for _, f := range r.PatchFilterGroup.PatchFilters {
					rule.Filters[string(f.Key)] = sorted(f.Values)
				}
			}
			d.Rules = append(d.Rules, rule)
		}
	}
	return d
}

// Change is one field that differs between the declared and the live
// baseline, in words a reviewer reads.
type Change struct {
	Field string `json:"field"`
	Live  string `json:"live"`
	Want  string `json:"want"`
}

func (c Change) String() string { return fmt.Sprintf("%s: %s -> %s", c.Field, c.Live, c.Want) }

// Compare lists how live differs from want, field by field. Patch groups
// are compared separately (they are registrations, not baseline fields).
func Compare(want, live Definition) []Change {
	var out []Change
	diff := func(field, l, w string) {
		if l != w {
			out = append(out, Change{Field: field, Live: l, Want: w})
		}
	}
	diff("operatingSystem", live.OperatingSystem, want.OperatingSystem)
	diff("description", quote(live.Description), quote(want.Description))
	diff("approvedPatches", list(live.ApprovedPatches), list(want.ApprovedPatches))
	diff("rejectedPatches", list(live.RejectedPatches), list(want.RejectedPatches))
	diff("rejectedPatchesAction", live.RejectedPatchesAction, want.RejectedPatchesAction)
	for i := 0; i < max(len(want.Rules), len(live.Rules)); i++ {
		field := fmt.Sprintf("approvalRules[%d]", i)
		switch {
		case i >= len(live.Rules):
			diff(field, "(none)", want.Rules[i].String())
		case i >= len(want.Rules):
			diff(field, live.Rules[i].String(), "(none)")
		default:
			l, w := live.Rules[i], want.Rules[i]
			diff(field+".filters", filters(l.Filters), filters(w.Filters))
			diff(field+".approval", l.approval(), w.approval())
			diff(field+".complianceLevel", l.ComplianceLevel, w.ComplianceLevel)
			diff(field+".enableNonSecurity", fmt.Sprint(l.EnableNonSecurity), fmt.Sprint(w.EnableNonSecurity))
		}
	}
	return out
}

func (r Rule) approval() string {
	if r.ApproveUntilDate != "" {
		return "until " + r.ApproveUntilDate
	}
	if r.ApproveAfterDays != nil {
		return fmt.Sprintf("after %d days", *r.ApproveAfterDays)
	}
	return "(none)"
}

func (r Rule) String() string {
	return fmt.Sprintf("%s, approve %s, %s", filters(r.Filters), r.approval(), r.ComplianceLevel)
}

func filters(f map[string][]string) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strings.Join(f[k], ",")
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func list(v []string) string { return "[" + strings.Join(v, ", ") + "]" }

func quote(s string) string { return fmt.Sprintf("%q", s) }

func sorted(v []string) []string {
	out := append([]string(nil), v...)
	sort.Strings(out)
	return out
}

// ruleGroup renders rules as SSM's PatchRuleGroup.
func (d Definition) ruleGroup() *ssmtypes.PatchRuleGroup {
	g := &ssmtypes.PatchRuleGroup{PatchRules: []ssmtypes.PatchRule{}}
	for _, r := range d.Rules {
		keys := make([]string, 0, len(r.Filters))
		for k := range r.Filters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fg := &ssmtypes.PatchFilterGroup{PatchFilters: []ssmtypes.PatchFilter{}}
		for _, k := range keys {
			fg.PatchFilters = append(fg.PatchFilters, ssmtypes.PatchFilter{Key: ssmtypes.PatchFilterKey(k), Values: r.Filters[k]})
		}
		pr := ssmtypes.PatchRule{PatchFilterGroup: fg, ComplianceLevel: ssmtypes.PatchComplianceLevel(r.ComplianceLevel), ApproveAfterDays: r.ApproveAfterDays}
		if r.ApproveUntilDate != "" {
			pr.ApproveUntilDate = aws.String(r.ApproveUntilDate)
		}
		if r.EnableNonSecurity {
			pr.EnableNonSecurity = aws.Bool(true)
		}
		g.PatchRules = append(g.PatchRules, pr)
	}
	return g
}
