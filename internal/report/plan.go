package report

import (
	"fmt"
	"sort"
	"strings"

	"github.com/patchgate/patchgate/internal/escape"
	"github.com/patchgate/patchgate/internal/plan"
)

var statusIcon = map[plan.Status]string{plan.Added: "🆕", plan.Removed: "🗑️", plan.Renamed: "✏️", plan.Changed: "📝", plan.Unchanged: "·", plan.Invalid: "❌"}

// Plan renders a plan for kind. link points at the workflow run, for what
// does not fit.
func Plan(p *plan.Plan, kind Kind, link string) string {
	return fit(kind, func(d detail) string { return renderPlan(p, kind, d, link) }, link)
}

func renderPlan(p *plan.Plan, kind Kind, d detail, link string) string {
	var b strings.Builder
	if kind == Comment {
		b.WriteString(PlanMarker() + "\n")
	}
	head := "✅ No policy changes"
	switch {
	case len(p.Problems) > 0:
		head = "❌ The policies do not validate"
	case len(p.Risks()) > 0:
		head = "⚠️ Changes with risks to review"
	case p.HasChanges():
		head = "📝 Policy changes"
	}
	base := p.Base
	if p.BaseSHA != "" && p.BaseSHA != p.Base {
		base += " (" + shortSHA(p.BaseSHA) + ")"
	}
	fmt.Fprintf(&b, "## patchgate plan: %s\n\nCompared with %s: %s.\n\n", head, escape.Code(base, 80), cell(p.Summary(), 300))

	if len(p.Problems) > 0 {
		b.WriteString("### Problems\n\n")
		limit := map[detail]int{full: 100, collapsed: 20, counts: 5}[d]
		for i, pr := range p.Problems {
			if i == limit {
				fmt.Fprintf(&b, "- … and %d more (run `patchgate validate`)\n", len(p.Problems)-limit)
				break
			}
			b.WriteString("- " + code(pr) + "\n")
		}
		b.WriteString("\n")
	}
	if risks := p.Risks(); len(risks) > 0 {
		b.WriteString("### Risks to review\n\n")
		limit := map[detail]int{full: 200, collapsed: 40, counts: 10}[d]
		for i, r := range risks {
			if i == limit {
				fmt.Fprintf(&b, "- … and %d more\n", len(risks)-limit)
				break
			}
			fmt.Fprintf(&b, "- ⚠️ **%s** %s\n", cell(r.Check, 60), cell(r.Message, 300))
		}
		b.WriteString("\n")
	}

	var changed []plan.PolicyPlan
	for _, pp := range p.Policies {
		if pp.Status != plan.Unchanged || len(pp.Drift) > 0 {
			changed = append(changed, pp)
		}
	}
	if len(changed) > 0 {
		tb := newTable(&b, "policy", "change", "fields", "risks", "instances today", "compliant", "open CVEs", "baseline")
		for _, pp := range changed {
			name := cell(pp.Name, 60)
			if pp.OldName != "" {
				name += " (was " + cell(pp.OldName, 60) + ")"
			}
			inst, comp, cves, drift := targetsSummary(pp, p.AWSChecked)
			tb.row(name, statusIcon[pp.Status]+" "+cell(string(pp.Status), 20), fmt.Sprint(len(pp.Changes)), fmt.Sprint(len(pp.Risks)), inst, comp, cves, drift)
		}
		b.WriteString("\n")
	}

	if d < counts {
		for i, pp := range changed {
			if d == collapsed && i >= 20 {
				fmt.Fprintf(&b, "_%d more changed policies are summarised in the table above._\n\n", len(changed)-20)
				break
			}
			summary := fmt.Sprintf("%s %s: %s", statusIcon[pp.Status], escape.HTML(pp.Name, 60), plural(len(pp.Changes), "change", "changes"))
			if pp.Status == plan.Invalid {
				summary = fmt.Sprintf("%s %s: does not validate", statusIcon[pp.Status], escape.HTML(pp.Name, 60))
			}
			body := func() {
				if pp.File != "" {
					b.WriteString("File: " + code(pp.File) + "\n\n")
				}
				for _, pr := range pp.Problems {
					b.WriteString("- " + code(pr) + "\n")
				}
				limit := map[detail]int{full: 100, collapsed: 15}[d]
				for j, c := range pp.Changes {
					if j == limit {
						fmt.Fprintf(&b, "- … and %d more\n", len(pp.Changes)-limit)
						break
					}
					b.WriteString("- " + cell(c.String(), 300) + "\n")
				}
				if hasRings(pp.Rings) {
					b.WriteString("\nRings:\n")
					for _, r := range pp.Rings {
						b.WriteString("- " + ringLine(r) + "\n")
					}
				}
				if len(pp.Targets) > 0 {
					b.WriteString("\n")
					tb := newTable(&b, "phase", "account/region", "instances", "online", "offline", "compliant", "no patch state", "other patch group", "open findings", "platforms")
					for j, t := range pp.Targets {
						if d == collapsed && j >= 20 {
							tb.row(fmt.Sprintf("… %d more", len(pp.Targets)-20))
							break
						}
						if t.Error != "" {
							tb.row(cell(t.Phase, 40), cell(t.Account+"/"+t.Region, 40), "💥 "+cell(t.Error, 200))
							continue
						}
						find := "not read"
						if t.Findings != nil {
							find = bySeverity(t.Findings)
						}
						tb.row(cell(t.Phase, 40), cell(t.Account+"/"+t.Region, 40), fmt.Sprint(t.Instances), fmt.Sprint(t.Online), fmt.Sprint(t.Offline),
							fmt.Sprint(t.Compliant), fmt.Sprint(t.NoState), fmt.Sprint(t.OtherPatchGroup), find, cell(platforms(t.Platforms), 80))
					}
				}
				for _, dr := range pp.Drift {
					where := cell(dr.Account+"/"+dr.Region, 40)
					if dr.Hooks != "" {
						fmt.Fprintf(&b, "\n- Hook documents in %s: 💥 %s\n", where, cell(dr.Hooks, 300))
					}
					switch {
					case dr.Error != "":
						fmt.Fprintf(&b, "\n- Baseline in %s: 💥 %s\n", where, cell(dr.Error, 300))
					case dr.BaselineID == "":
						fmt.Fprintf(&b, "\n- Baseline in %s: not created yet; `sync` creates it and registers %s\n", where, cell(strings.Join(dr.Register, ", "), 200))
					case len(dr.Changes) == 0 && len(dr.Register) == 0 && len(dr.Deregister) == 0:
						fmt.Fprintf(&b, "\n- Baseline in %s: %s matches\n", where, escape.Code(dr.BaselineID, 60))
					default:
						fmt.Fprintf(&b, "\n- Baseline in %s: %s differs from the repository (changed outside patchgate, or by this PR):\n", where, escape.Code(dr.BaselineID, 60))
						for _, c := range dr.Changes {
							b.WriteString("  - " + cell(c.String(), 300) + "\n")
						}
						if len(dr.Register) > 0 {
							b.WriteString("  - patch groups to register: " + cell(strings.Join(dr.Register, ", "), 200) + "\n")
						}
						if len(dr.Deregister) > 0 {
							b.WriteString("  - patch groups to deregister: " + cell(strings.Join(dr.Deregister, ", "), 200) + "\n")
						}
					}
				}
			}
			details(&b, summary, body)
		}
	} else if len(changed) > 0 {
		if link != "" {
			fmt.Fprintf(&b, "Field-level changes are left out to fit; see %s or run `patchgate plan` locally.\n\n", escape.Link("the run", link, 0))
		} else {
			b.WriteString("Field-level changes are left out to fit; run `patchgate plan` locally for them.\n\n")
		}
	}
	for _, u := range p.Unchecked {
		b.WriteString("> [!NOTE]\n> " + cell(u, 400) + "\n\n")
	}
	if len(p.BaseProblems) > 0 {
		fmt.Fprintf(&b, "_The base has %s; the diff is against the policies that loaded._\n", plural(len(p.BaseProblems), "invalid policy problem", "invalid policy problems"))
	}
	return b.String()
}

func targetsSummary(pp plan.PolicyPlan, checked bool) (inst, comp, cves, drift string) {
	if !checked || pp.Status == plan.Removed || pp.Status == plan.Invalid {
		return "–", "–", "–", "–"
	}
	n, c, errs := 0, 0, 0
	f := map[string]int{}
	read := false
	for _, t := range pp.Targets {
		if t.Error != "" {
			errs++
			continue
		}
		n += t.Instances
		c += t.Compliant
		if t.Findings != nil {
			read = true
			for s, k := range t.Findings {
				f[s] += k
			}
		}
	}
	inst, comp, cves = fmt.Sprint(n), "–", "not read"
	if n > 0 {
		comp = fmt.Sprintf("%d (%.0f%%)", c, float64(c)*100/float64(n))
	}
	if read {
		cves = bySeverity(f)
	}
	if errs > 0 {
		inst += fmt.Sprintf(" (💥 %d unreadable)", errs)
	}
	states := map[string]int{}
	for _, dr := range pp.Drift {
		switch {
		case dr.Error != "":
			states["error"]++
		case dr.BaselineID == "":
			states["to create"]++
		case len(dr.Changes) > 0 || len(dr.Register) > 0 || len(dr.Deregister) > 0:
			states["drifted"]++
		default:
			states["in sync"]++
		}
	}
	keys := make([]string, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", states[k], k))
	}
	drift = strings.Join(parts, ", ")
	if drift == "" {
		drift = "–"
	}
	return inst, comp, cves, drift
}

func platforms(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

// hasRings: the policy has rings worth showing (a promotion, or a phase
// with its own scope); a v1 policy shows none.
func hasRings(rs []plan.RingPhase) bool {
	for i, r := range rs {
		if r.From != "" || i > 0 && (strings.Join(r.Accounts, ",") != strings.Join(rs[0].Accounts, ",") || strings.Join(r.Regions, ",") != strings.Join(rs[0].Regions, ",")) {
			return true
		}
	}
	return false
}

// ringLine says where a phase runs and whether it may run now.
func ringLine(r plan.RingPhase) string {
	accts := strings.Join(r.Accounts, ", ")
	if accts == "" {
		accts = "the credentials' account"
	}
	line := fmt.Sprintf("%s in %s (%s)", cell(r.Phase, 40), cell(accts, 200), cell(strings.Join(r.Regions, ", "), 200))
	if r.From == "" {
		return line
	}
	replay := "replaying its patch set"
	if !r.Replay {
		replay = "without replay"
	}
	line += fmt.Sprintf(": promoted from %s passed %s to %s ago, %s", cell(r.From, 40), cell(r.MinAge, 20), cell(r.MaxAge, 20), replay)
	switch {
	case !r.Checked:
		return line + "; promotion state not read (plan --aws reads the store)"
	case r.Eligible:
		return line + "; **eligible now**: " + cell(r.State, 300)
	case !r.EligibleAt.IsZero():
		return line + "; waits: " + cell(r.State, 300) + "; eligible from " + r.EligibleAt.UTC().Format("2006-01-02 15:04 UTC")
	}
	return line + "; waits: " + cell(r.State, 300)
}
