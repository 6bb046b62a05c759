// Package plan tells reviewers what merging a policy change does: a
// semantic diff of the base and head policy sets in plain words, the risk
// checks reviewers care about, and (with read-only AWS credentials) the
// instances each phase targets, their compliance today, open Inspector
// findings and the drift between declared and live patch baselines.
package plan

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/patchgate/patchgate/internal/policy"
)

// Status is what happened to a policy between base and head.
type Status string

const (
	Added     Status = "added"
	Removed   Status = "removed"
	Renamed   Status = "renamed"
	Changed   Status = "changed"
	Unchanged Status = "unchanged"
	// Invalid is a head policy file that does not validate: what merging
	// it does is unknown until it is fixed, so it is not "removed".
	Invalid Status = "invalid"
)

// FieldChange is one field that differs, in a reviewer's words.
type FieldChange struct {
	Field string `json:"field"`          // "production: maxErrors"
	From  string `json:"from,omitempty"` // "" when the field is new
	To    string `json:"to,omitempty"`   // "" when the field is gone
}

func (c FieldChange) String() string {
	switch {
	case c.From == "":
		return fmt.Sprintf("%s: set to %s", c.Field, c.To)
	case c.To == "":
		return fmt.Sprintf("%s: removed (was %s)", c.Field, c.From)
	}
	return fmt.Sprintf("%s: %s -> %s", c.Field, c.From, c.To)
}

// Risk is a change reviewers should look at twice.
type Risk struct {
	Check   string `json:"check"` // stable id, e.g. "max-errors-raised"
	Phase   string `json:"phase,omitempty"`
	Message string `json:"message"`
}

// Risk checks, by id.
const (
	RiskPolicyRemoved        = "policy-removed"
	RiskPhaseRemoved         = "phase-removed"
	RiskPhaseReordered       = "phase-reordered"
	RiskThresholdLowered     = "success-threshold-lowered"
	RiskMaxErrorsRaised      = "max-errors-raised"
	RiskMaxConcurrencyRaised = "max-concurrency-raised"
	RiskVerificationWeakened = "verification-weakened"
	RiskOfflineSkipped       = "offline-skipped"
	RiskRebootChanged        = "reboot-changed"
	RiskFreezeRemoved        = "freeze-removed"
	RiskWindowRemoved        = "window-removed"
	RiskTargetsWidened       = "targets-widened"
	RiskScopeWidened         = "scope-widened"
	RiskApprovalFaster       = "approval-faster"
	RiskPolicyInvalid        = "policy-invalid"
	RiskRejectedPatchRemoved = "rejected-patch-removed"
	RiskRejectionRelaxed     = "rejection-relaxed"
	RiskSoakShortened        = "soak-shortened"
	RiskWavesCollapsed       = "waves-collapsed"
	RiskPromotionWeakened    = "promotion-weakened"
	RiskBarrierOff           = "barrier-off"
)

// PolicyDiff is the diff of one policy.
type PolicyDiff struct {
	Name    string        `json:"name"`
	OldName string        `json:"oldName,omitempty"` // renamed from
	File    string        `json:"file"`
	Status  Status        `json:"status"`
	Changes []FieldChange `json:"changes,omitempty"`
	Risks   []Risk        `json:"risks,omitempty"`
	// Problems are why an Invalid policy does not validate (FILE:LINE:COL: msg).
	Problems []string `json:"problems,omitempty"`
}

// Diff compares two policy sets. Policies are matched by name; a policy
// that disappears while one appears in the same file, or with an identical
// spec, is a rename.
func Diff(base, head []*policy.Policy) []PolicyDiff {
	byName := func(ps []*policy.Policy) map[string]*policy.Policy {
		m := map[string]*policy.Policy{}
		for _, p := range ps {
			m[p.Metadata.Name] = p
		}
		return m
	}
	b, h := byName(base), byName(head)
	var gone, fresh []*policy.Policy
	for _, p := range base {
		if h[p.Metadata.Name] == nil {
			gone = append(gone, p)
		}
	}
	for _, p := range head {
		if b[p.Metadata.Name] == nil {
			fresh = append(fresh, p)
		}
	}
	// A new policy is a rename of the first removed one, not yet taken,
	// in its file, else of the first with an identical spec. Each policy's
	// key is worked out once and looked up: comparing every new policy
	// with every removed one marshalled both specs each time, so renaming
	// 1,000 policies took 20 s.
	renamed := map[string]*policy.Policy{} // head name -> base policy
	for _, key := range []func(p *policy.Policy) string{
		func(p *policy.Policy) string { return p.Source.File },
		specJSON,
	} {
		byKey := map[string][]int{} // key -> indexes in gone, in order
		for i, o := range gone {
			if o != nil {
				k := key(o)
				byKey[k] = append(byKey[k], i)
			}
		}
		for _, n := range fresh {
			if renamed[n.Metadata.Name] != nil {
				continue
			}
			k := key(n)
			if at := byKey[k]; len(at) > 0 {
				renamed[n.Metadata.Name], gone[at[0]] = gone[at[0]], nil
				byKey[k] = at[1:]
			}
		}
	}

	var out []PolicyDiff
	for _, p := range head {
		name := p.Metadata.Name
		old := b[name]
		d := PolicyDiff{Name: name, File: p.Source.File}
		switch {
		case old == nil && renamed[name] != nil:
			old = renamed[name]
			d.Status, d.OldName = Renamed, old.Metadata.Name
		case old == nil:
			d.Status = Added
			out = append(out, d)
			continue
		}
		d.Changes = fieldChanges(old, p)
		if old.Source.File != p.Source.File {
			d.Changes = append([]FieldChange{{Field: "file", From: old.Source.File, To: p.Source.File}}, d.Changes...)
		}
		d.Risks = risks(old, p)
		if d.Status == "" {
			d.Status = Unchanged
			if len(d.Changes) > 0 {
				d.Status = Changed
			}
		}
		out = append(out, d)
	}
	for _, o := range gone {
		if o == nil {
			continue
		}
		out = append(out, PolicyDiff{Name: o.Metadata.Name, File: o.Source.File, Status: Removed, Risks: []Risk{{Check: RiskPolicyRemoved,
			Message: fmt.Sprintf("policy %s is removed: its instances are no longer patched by patchgate, and its baseline %s is kept until `sync --prune`", o.Metadata.Name, "patchgate-"+o.Metadata.Name)}}})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func specJSON(p *policy.Policy) string {
	b, _ := json.Marshal(p.Spec)
	return string(b)
}

// field is one flattened field of a policy: a reviewer's label and the
// rendered value.
type field struct{ key, val string }

// fields flattens a (defaulted) policy into labelled values. Phases are
// keyed by name and approval rules by what they approve, so that inserting
// a phase or rule does not make every later one look changed.
func fields(p *policy.Policy) []field {
	var out []field
	add := func(key, val string) {
		if val != "" && val != "[]" {
			out = append(out, field{key, val})
		}
	}
	s := p.Spec
	add("description", p.Metadata.Description)
	add("owners", list(p.Metadata.Owners))
	add("operatingSystem", s.OperatingSystem)
	labels := map[string]int{}
	for _, r := range s.Baseline.ApprovalRules {
		label := ruleLabel(r)
		labels[label]++
		if labels[label] > 1 {
			label = fmt.Sprintf("%s #%d", label, labels[label])
		}
		pre := "rule " + label + ": "
		if r.ApproveAfterDays != nil {
			add(pre+"approveAfterDays", fmt.Sprint(*r.ApproveAfterDays))
		}
		add(pre+"approveUntilDate", r.ApproveUntilDate)
		add(pre+"complianceLevel", r.ComplianceLevel)
		add(pre+"products", list(r.Products))
		keys := make([]string, 0, len(r.Filters))
		for k := range r.Filters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			add(pre+"filter "+k, list(r.Filters[k]))
		}
		if r.EnableNonSecurity {
			add(pre+"enableNonSecurity", "true")
		}
	}
	add("approvedPatches", list(s.Baseline.ApprovedPatches))
	add("rejectedPatches", list(s.Baseline.RejectedPatches))
	add("rejectedPatchesAction", s.Baseline.RejectedPatchesAction)
	add("rebootOption", s.Install.RebootOption)
	add("deliveryTimeout", s.Install.DeliveryTimeout.String())
	add("executionTimeout", s.Install.ExecutionTimeout.String())
	if sc := s.Schedule; sc != nil {
		add("schedule", fmt.Sprintf("%q for %s (%s)", sc.Cron, sc.Duration, sc.Timezone))
		var fr []string
		for _, f := range sc.Freezes {
			fr = append(fr, freeze(f))
		}
		add("freezes", list(fr))
		add("changeCalendars", list(sc.ChangeCalendars))
	}
	var accts []string
	for _, a := range s.Accounts {
		if a.RoleArn != "" {
			accts = append(accts, a.ID+" via "+a.RoleArn)
		} else {
			accts = append(accts, a.ID)
		}
	}
	add("accounts", list(accts))
	add("regions", list(s.Regions))
	var names []string
	for _, ph := range s.Phases {
		names = append(names, ph.Name)
	}
	add("phases", strings.Join(names, " -> "))
	for _, ph := range s.Phases {
		pre := ph.Name + ": "
		add(pre+"targets", targets(ph.Targets))
		add(pre+"maxConcurrency", ph.MaxConcurrency)
		add(pre+"maxErrors", ph.MaxErrors)
		add(pre+"successThreshold", ph.SuccessThreshold)
		add(pre+"offline", ph.Offline)
		add(pre+"waves", list(ph.Waves))
		if ph.Soak.Duration > 0 {
			add(pre+"soak", ph.Soak.String())
		}
		add(pre+"verify compliance", fmt.Sprint(ph.Verify.ComplianceEnabled()))
		add(pre+"verify inspector", fmt.Sprint(ph.Verify.Inspector.Enabled))
		if in := ph.Verify.Inspector; in.Enabled {
			add(pre+"inspector failOnSeverity", in.FailOnSeverity)
			add(pre+"inspector rescanTimeout", in.RescanTimeout.String())
			add(pre+"inspector requireFixed", list(in.RequireFixed))
		}
	}
	add("cloudwatchNamespace", s.Reporting.CloudwatchNamespace)
	safetyFields(&s, add) // safety.go
	return out
}

func fieldChanges(old, cur *policy.Policy) []FieldChange {
	of, nf := fields(old), fields(cur)
	ov := map[string]string{}
	for _, f := range of {
		ov[f.key] = f.val
	}
	nv := map[string]string{}
	var out []FieldChange
	for _, f := range nf {
		nv[f.key] = f.val
		if o, ok := ov[f.key]; !ok || o != f.val {
			out = append(out, FieldChange{Field: f.key, From: ov[f.key], To: f.val})
		}
	}
	for _, f := range of {
		if _, ok := nv[f.key]; !ok {
			out = append(out, FieldChange{Field: f.key, From: f.val})
		}
	}
	return out
}

// ruleLabel names a rule by what it approves: "Security,Bugfix/Critical".
func ruleLabel(r policy.ApprovalRule) string {
	parts := []string{}
	if len(r.Classifications) > 0 {
		parts = append(parts, strings.Join(r.Classifications, ","))
	}
	if len(r.Severities) > 0 {
		parts = append(parts, strings.Join(r.Severities, ","))
	}
	if len(parts) == 0 {
		keys := make([]string, 0, len(r.Filters))
		for k := range r.Filters {
			keys = append(keys, k+"="+strings.Join(r.Filters[k], ","))
		}
		sort.Strings(keys)
		parts = keys
	}
	if len(parts) == 0 {
		return "(all patches)"
	}
	return strings.Join(parts, "/")
}

func targets(t policy.Targets) string {
	if len(t.InstanceIDs) > 0 {
		return "instanceIds " + list(t.InstanceIDs)
	}
	keys := make([]string, 0, len(t.Tags))
	for k := range t.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + t.Tags[k]
	}
	return "tags {" + strings.Join(parts, ", ") + "}"
}

func freeze(f policy.Freeze) string { return f.From + ".." + f.To }

func list(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return "[" + strings.Join(v, ", ") + "]"
}

var severityRank = map[string]int{"UNTRIAGED": 0, "INFORMATIONAL": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5}

// risks runs every risk check on a policy present in both sets.
func risks(old, cur *policy.Policy) []Risk {
	var out []Risk
	add := func(check, phase, format string, args ...any) {
		out = append(out, Risk{Check: check, Phase: phase, Message: fmt.Sprintf(format, args...)})
	}
	oldPhases, curPhases := phaseMap(old), phaseMap(cur)
	var oldOrder, curOrder []string
	for _, ph := range old.Spec.Phases {
		oldOrder = append(oldOrder, ph.Name)
	}
	for _, ph := range cur.Spec.Phases {
		curOrder = append(curOrder, ph.Name)
	}
	for i, name := range oldOrder {
		if curPhases[name] == nil && i < len(oldOrder)-1 {
			add(RiskPhaseRemoved, name, "phase %s is removed: the phases after it no longer wait for it to pass", name)
		} else if curPhases[name] == nil {
			add(RiskPhaseRemoved, name, "phase %s is removed: its instances are no longer patched", name)
		}
	}
	for i, a := range oldOrder {
		for _, b := range oldOrder[i+1:] {
			ia, ib := slices.Index(curOrder, a), slices.Index(curOrder, b)
			if ia >= 0 && ib >= 0 && ia > ib {
				add(RiskPhaseReordered, a, "phase %s now runs after %s: %s is no longer gated on %s", a, b, b, a)
			}
		}
	}
	for i, ph := range cur.Spec.Phases {
		o := oldPhases[ph.Name]
		if o == nil {
			continue
		}
		n := ph.Name
		if lower(ph.SuccessThreshold, o.SuccessThreshold) {
			add(RiskThresholdLowered, n, "%s: successThreshold lowered from %s to %s: more failed instances pass the gate", n, o.SuccessThreshold, ph.SuccessThreshold)
		}
		if lower(o.MaxErrors, ph.MaxErrors) {
			add(RiskMaxErrorsRaised, n, "%s: maxErrors raised from %s to %s: SSM keeps patching after more failures", n, o.MaxErrors, ph.MaxErrors)
		}
		if lower(o.MaxConcurrency, ph.MaxConcurrency) {
			add(RiskMaxConcurrencyRaised, n, "%s: maxConcurrency raised from %s to %s: more instances are down for patching at once", n, o.MaxConcurrency, ph.MaxConcurrency)
		}
		if o.Verify.ComplianceEnabled() && !ph.Verify.ComplianceEnabled() {
			add(RiskVerificationWeakened, n, "%s: patch compliance is no longer verified", n)
		}
		oi, ni := o.Verify.Inspector, ph.Verify.Inspector
		switch {
		case oi.Enabled && !ni.Enabled:
			add(RiskVerificationWeakened, n, "%s: the Amazon Inspector rescan gate is disabled", n)
		case oi.Enabled && severityRank[ni.FailOnSeverity] > severityRank[oi.FailOnSeverity]:
			add(RiskVerificationWeakened, n, "%s: Inspector failOnSeverity raised from %s to %s: open %s findings no longer fail the gate", n, oi.FailOnSeverity, ni.FailOnSeverity, oi.FailOnSeverity)
		}
		if ni.Enabled {
			for _, cve := range oi.RequireFixed {
				if !slices.Contains(ni.RequireFixed, cve) {
					add(RiskVerificationWeakened, n, "%s: %s is no longer required to be fixed", n, cve)
				}
			}
		}
		if o.Offline == "fail" && ph.Offline == "skip" {
			add(RiskOfflineSkipped, n, "%s: offline instances are now skipped instead of failing the phase", n)
		}
		if w := widened(o.Targets, ph.Targets); w != "" {
			add(RiskTargetsWidened, n, "%s: targets widened: %s", n, w)
		}
		// A soak only delays the phase after it; the last phase's is moot.
		if i < len(cur.Spec.Phases)-1 && ph.Soak.Duration < o.Soak.Duration {
			if ph.Soak.Duration == 0 {
				add(RiskSoakShortened, n, "%s: the %s soak is removed: the next phase starts as soon as %s passes, before late failures show", n, o.Soak, n)
			} else {
				add(RiskSoakShortened, n, "%s: soak shortened from %s to %s: the next phase starts sooner after %s passes", n, o.Soak, ph.Soak, n)
			}
		}
		// A phase's own scope: accounts or regions it now patches that it
		// did not (its lists default to the spec's).
		oa, or := phaseScope(old, o)
		na, nr := phaseScope(cur, &ph)
		for _, a := range na {
			if (o.Accounts != nil || ph.Accounts != nil) && !slices.Contains(oa, a) {
				add(RiskScopeWidened, n, "%s: now also patches account %s", n, orDefault(a))
			}
		}
		for _, r := range nr {
			if (o.Regions != nil || ph.Regions != nil) && !slices.Contains(or, r) {
				add(RiskScopeWidened, n, "%s: now also patches region %s", n, r)
			}
		}
		if op, np := o.Promotion, ph.Promotion; op != nil {
			switch {
			case np == nil:
				add(RiskPromotionWeakened, n, "%s: no longer waits for %s to have passed in an earlier run", n, op.From)
			default:
				if np.MinAge.Duration < op.MinAge.Duration {
					add(RiskPromotionWeakened, n, "%s: promotion minAge lowered from %s to %s: %s's pass is trusted sooner", n, op.MinAge, np.MinAge, np.From)
				}
				if np.MaxAge.Duration > op.MaxAge.Duration {
					add(RiskPromotionWeakened, n, "%s: promotion maxAge raised from %s to %s: an older pass of %s still counts", n, op.MaxAge, np.MaxAge, np.From)
				}
				if op.ReplayEnabled() && !np.ReplayEnabled() {
					add(RiskPromotionWeakened, n, "%s: replay is turned off: it installs what its baseline approves today, not the set %s proved", n, np.From)
				}
			}
		}
		ow, nw := waveShares(o.Waves), waveShares(ph.Waves)
		if len(ow) > 0 && len(nw) > 0 {
			if len(nw) < len(ow) {
				add(RiskWavesCollapsed, n, "%s: waves %s -> %s: %d checkpoint(s) fewer where a failing wave stops the phase", n, list(o.Waves), list(ph.Waves), len(ow)-len(nw))
			}
			if nw[0] > ow[0] {
				add(RiskWavesCollapsed, n, "%s: first wave raised from %d%% to %d%%: more instances are patched before the first check", n, ow[0], nw[0])
			}
		}
	}
	for _, id := range old.Spec.Baseline.RejectedPatches {
		if !slices.Contains(cur.Spec.Baseline.RejectedPatches, id) {
			add(RiskRejectedPatchRemoved, "", "rejected patch %s is no longer rejected: it may be approved and installed", id)
		}
	}
	if ob, nb := old.Spec.Baseline.RejectedPatchesAction, cur.Spec.Baseline.RejectedPatchesAction; ob == "BLOCK" && nb != ob && len(cur.Spec.Baseline.RejectedPatches) > 0 {
		add(RiskRejectionRelaxed, "", "rejectedPatchesAction %s -> %s: rejected patches may now be installed as dependencies of other patches", ob, nb)
	}
	if independent(cur) && !independent(old) {
		add(RiskBarrierOff, "", "spec.rings.independentTargets is on: a phase in one account-region no longer waits for the earlier phase to pass in the others")
	}
	if old.Spec.Install.RebootOption != cur.Spec.Install.RebootOption {
		add(RiskRebootChanged, "", "rebootOption changed from %s to %s", old.Spec.Install.RebootOption, cur.Spec.Install.RebootOption)
	}
	if old.Spec.Schedule != nil && cur.Spec.Schedule == nil {
		add(RiskWindowRemoved, "", "the schedule is removed: patching may start at any time")
	}
	if old.Spec.Schedule != nil && cur.Spec.Schedule != nil {
		for _, f := range old.Spec.Schedule.Freezes {
			if !slices.ContainsFunc(cur.Spec.Schedule.Freezes, func(g policy.Freeze) bool { return g.From <= f.From && g.To >= f.To }) {
				add(RiskFreezeRemoved, "", "freeze %s (%s) is removed or shortened", freeze(f), f.Reason)
			}
		}
		for _, c := range old.Spec.Schedule.ChangeCalendars {
			if !slices.Contains(cur.Spec.Schedule.ChangeCalendars, c) {
				add(RiskFreezeRemoved, "", "change calendar %s no longer gates patching", c)
			}
		}
	}
	for _, a := range cur.Spec.Accounts {
		if !slices.ContainsFunc(old.Spec.Accounts, func(b policy.Account) bool { return a.ID == b.ID }) {
			add(RiskScopeWidened, "", "account %s is added", a.ID)
		}
	}
	for _, r := range cur.Spec.Regions {
		if !slices.Contains(old.Spec.Regions, r) {
			add(RiskScopeWidened, "", "region %s is added", r)
		}
	}
	// An approval rule that approves sooner puts newer patches on production.
	oldRules := map[string]policy.ApprovalRule{}
	for _, r := range old.Spec.Baseline.ApprovalRules {
		oldRules[ruleLabel(r)] = r
	}
	for _, r := range cur.Spec.Baseline.ApprovalRules {
		o, ok := oldRules[ruleLabel(r)]
		if ok && o.ApproveAfterDays != nil && r.ApproveAfterDays != nil && *r.ApproveAfterDays < *o.ApproveAfterDays {
			add(RiskApprovalFaster, "", "approveAfterDays %d -> %d for %s: patches reach instances sooner after release", *o.ApproveAfterDays, *r.ApproveAfterDays, ruleLabel(r))
		}
	}
	safetyRisks(old, cur, add) // safety.go
	return out
}

// waveShares reads cumulative wave shares ("10%") as numbers; nil when one
// does not parse (the loader has refused such a policy already).
func waveShares(waves []string) []int {
	out := make([]int, 0, len(waves))
	for _, w := range waves {
		p, err := policy.ParsePercent(w)
		if err != nil || !p.IsPercent {
			return nil
		}
		out = append(out, p.Value)
	}
	return out
}

func phaseMap(p *policy.Policy) map[string]*policy.Phase {
	m := map[string]*policy.Phase{}
	for i := range p.Spec.Phases {
		m[p.Spec.Phases[i].Name] = &p.Spec.Phases[i]
	}
	return m
}

// lower reports whether a < b for two "N" / "N%" values. Values in
// different units cannot be ordered without the fleet size; a change of
// unit away from zero counts as a raise, so it is never silently passed.
func lower(a, b string) bool {
	pa, err1 := policy.ParsePercent(a)
	pb, err2 := policy.ParsePercent(b)
	if err1 != nil || err2 != nil {
		return false
	}
	if pa.IsPercent == pb.IsPercent || pa.Value == 0 || pb.Value == 0 {
		return pa.Value < pb.Value
	}
	return true
}

// widened says how cur selects instances that old did not, or "".
func widened(old, cur policy.Targets) string {
	if len(old.InstanceIDs) > 0 && len(cur.InstanceIDs) > 0 {
		var added []string
		for _, id := range cur.InstanceIDs {
			if !slices.Contains(old.InstanceIDs, id) {
				added = append(added, id)
			}
		}
		if len(added) > 0 {
			return fmt.Sprintf("%d instance id(s) added: %s", len(added), strings.Join(added, ", "))
		}
		return ""
	}
	if len(old.InstanceIDs) > 0 || len(cur.InstanceIDs) > 0 {
		return fmt.Sprintf("%s -> %s", targets(old), targets(cur))
	}
	var dropped, changed []string
	for k, v := range old.Tags {
		nv, ok := cur.Tags[k]
		switch {
		case !ok:
			dropped = append(dropped, k)
		case nv != v:
			changed = append(changed, fmt.Sprintf("%s=%s -> %s", k, v, nv))
		}
	}
	sort.Strings(dropped)
	sort.Strings(changed)
	var parts []string
	if len(dropped) > 0 {
		parts = append(parts, "no longer requires tag "+strings.Join(dropped, ", "))
	}
	if len(changed) > 0 {
		parts = append(parts, "selects other instances: "+strings.Join(changed, ", "))
	}
	return strings.Join(parts, "; ")
}

// phaseScope is a phase's account ids and regions, its own or the spec's.
func phaseScope(p *policy.Policy, ph *policy.Phase) ([]string, []string) {
	accts, regions := p.Spec.Accounts, p.Spec.Regions
	if ph.Accounts != nil {
		accts = ph.Accounts
	}
	if ph.Regions != nil {
		regions = ph.Regions
	}
	ids := []string{}
	for _, a := range accts {
		ids = append(ids, a.ID)
	}
	if len(ids) == 0 {
		ids = []string{""}
	}
	return ids, regions
}

func orDefault(account string) string {
	if account == "" {
		return "(the credentials' own)"
	}
	return account
}

func independent(p *policy.Policy) bool {
	return p.Spec.Rings != nil && p.Spec.Rings.IndependentTargets
}
