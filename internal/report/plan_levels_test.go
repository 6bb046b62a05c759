package report

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/baseline"
	"github.com/patchgate/patchgate/internal/plan"
)

// edgePlan has one of everything a plan comment words differently.
func edgePlan() *plan.Plan {
	return &plan.Plan{Base: "origin/main", BaseSHA: "0123456789abcdef", AWSChecked: true,
		Problems:     []string{"policies/bad.yaml:3:1: unknown field \"spce\""},
		BaseProblems: []string{"policies/old.yaml:1:1: x"},
		Unchecked:    []string{"rings of gamma were not read: AccessDenied"},
		Policies: []plan.PolicyPlan{
			{PolicyDiff: plan.PolicyDiff{Name: "alpha", File: "policies/alpha.yaml", Status: plan.Changed,
				Changes: []plan.FieldChange{{Field: "production: maxErrors", From: "2%", To: "5%"}, {Field: "staging: soak", To: "30m"}, {Field: "production: waves", From: "[10% 100%]"}},
				Risks:   []plan.Risk{{Check: plan.RiskMaxErrorsRaised, Message: "production: maxErrors 2% -> 5%"}}},
				Targets: []plan.Target{
					{Phase: "staging", Account: "111", Region: "us-east-1", Instances: 4, Online: 3, Offline: 1, Compliant: 3, NoState: 1, OtherPatchGroup: 1,
						Findings: map[string]int{"HIGH": 2, "LOW": 5}, Platforms: map[string]int{"Ubuntu": 1, "Amazon Linux": 3}},
					{Phase: "production", Account: "111", Region: "us-east-1", Instances: 6, Online: 6, Compliant: 2},
					{Phase: "production", Account: "222", Region: "eu-west-1", Error: "AccessDenied: <b>no</b>"},
				},
				Rings: []plan.RingPhase{{Phase: "staging", Accounts: []string{"111"}, Regions: []string{"us-east-1"}},
					{Phase: "production", Accounts: []string{"111", "222"}, Regions: []string{"us-east-1"}}},
				Drift: []plan.Drift{
					{Account: "111", Region: "us-east-1", BaselineID: "pb-1", Hooks: "preInstall: App-Drain does not exist"},
					{Account: "222", Region: "eu-west-1", Error: "AccessDenied"},
					{Account: "333", Region: "eu-west-1", Register: []string{"alpha-staging", "alpha-production"}},
					{Account: "444", Region: "eu-west-1", BaselineID: "pb-4", Changes: []baseline.Change{{Field: "approvalRules[0].approveAfterDays", Live: "3", Want: "7"}},
						Register: []string{"alpha-production"}, Deregister: []string{"old"}},
					{Account: "555", Region: "eu-west-1", BaselineID: "pb-5", Deregister: []string{"old"}},
					{Account: "666", Region: "eu-west-1", BaselineID: "pb-6", Changes: []baseline.Change{{Field: "operatingSystem", Live: "UBUNTU", Want: "AMAZON_LINUX_2023"}}},
				}},
			{PolicyDiff: plan.PolicyDiff{Name: "beta", OldName: "beta-old", Status: plan.Renamed},
				Rings: []plan.RingPhase{{Phase: "a", Accounts: []string{"1"}, Regions: []string{"r1"}}, {Phase: "b", Accounts: []string{"1"}, Regions: []string{"r2"}}}},
			{PolicyDiff: plan.PolicyDiff{Name: "gamma", File: "policies/gamma.yaml", Status: plan.Added},
				Targets: []plan.Target{{Phase: "canary", Account: "777", Region: "us-west-2"}},
				Rings: []plan.RingPhase{{Phase: "canary", Regions: []string{"us-west-2"}},
					{Phase: "p1", From: "canary", MinAge: "24h", MaxAge: "72h", Replay: true},
					{Phase: "p2", From: "p1", MinAge: "24h", MaxAge: "72h", Checked: true, Eligible: true, State: "record of run 5 <ok>"},
					{Phase: "p3", From: "p2", MinAge: "1h", MaxAge: "2h", Checked: true, State: "no record", EligibleAt: time.Date(2026, 12, 1, 9, 30, 0, 0, time.FixedZone("x", 3600))},
					{Phase: "p4", From: "p3", MinAge: "1h", MaxAge: "2h", Checked: true, State: "too old"}}},
			{PolicyDiff: plan.PolicyDiff{Name: "delta", Status: plan.Removed}, Targets: []plan.Target{{Instances: 9}}},
			{PolicyDiff: plan.PolicyDiff{Name: "epsilon", File: "policies/epsilon.yaml", Status: plan.Invalid, Problems: []string{"policies/epsilon.yaml:2:1: bad"}}},
			{PolicyDiff: plan.PolicyDiff{Name: "zeta", Status: plan.Unchanged}, Drift: []plan.Drift{{Account: "111", Region: "us-east-1", BaselineID: "pb-z"}}},
			{PolicyDiff: plan.PolicyDiff{Name: "eta", Status: plan.Unchanged}},
		}}
}

// TestPlanLevelsGolden renders edgePlan at each detail level.
func TestPlanLevelsGolden(t *testing.T) {
	p := edgePlan()
	for _, d := range []struct {
		d    detail
		name string
	}{{full, "full"}, {collapsed, "collapsed"}, {counts, "counts"}} {
		goldenFile(t, "plan-edges."+d.name+".md", renderPlan(p, Summary, d.d, "https://github.com/acme/infra/actions/runs/3"))
	}
	if md := renderPlan(p, Summary, counts, ""); !strings.Contains(md, "Field-level changes are left out to fit; run `patchgate plan` locally for them.") {
		t.Errorf("counts level without a link:\n%s", md)
	}
	if Plan(p, Summary, "") != renderPlan(p, Summary, full, "") || !strings.HasPrefix(Plan(p, Comment, ""), PlanMarker()+"\n") {
		t.Error("Plan does not render the full level, with the marker in a comment")
	}
}

// TestPlanHeadline: the headline is the most serious of problems, risks,
// changes, nothing; the base names its commit when that differs.
func TestPlanHeadline(t *testing.T) {
	changed := plan.PolicyPlan{PolicyDiff: plan.PolicyDiff{Name: "a", Status: plan.Changed}}
	risky := plan.PolicyPlan{PolicyDiff: plan.PolicyDiff{Name: "b", Status: plan.Changed, Risks: []plan.Risk{{Check: "x", Message: "y"}}}}
	for _, tc := range []struct {
		p    plan.Plan
		want string
	}{
		{plan.Plan{Base: "main"}, "## patchgate plan: ✅ No policy changes\n\nCompared with `main`:"},
		{plan.Plan{Base: "main", BaseSHA: "main"}, "Compared with `main`:"},
		{plan.Plan{Base: "main", BaseSHA: "1234567"}, "Compared with `main (1234567)`:"},
		{plan.Plan{Base: "main", BaseSHA: "12345678"}, "Compared with `main (1234567)`:"},
		{plan.Plan{Base: "main", BaseSHA: "123456"}, "Compared with `main (123456)`:"},
		{plan.Plan{Policies: []plan.PolicyPlan{changed}}, "## patchgate plan: 📝 Policy changes\n"},
		{plan.Plan{Policies: []plan.PolicyPlan{changed, risky}}, "## patchgate plan: ⚠️ Changes with risks to review\n"},
		{plan.Plan{Policies: []plan.PolicyPlan{risky}, Problems: []string{"x"}}, "## patchgate plan: ❌ The policies do not validate\n"},
	} {
		if md := renderPlan(&tc.p, Summary, full, ""); !strings.Contains(md, tc.want) {
			t.Errorf("no %q in\n%s", tc.want, md)
		}
	}
	// A plan with nothing to say has no empty sections, at any level.
	for _, d := range []detail{full, collapsed, counts} {
		md := renderPlan(&plan.Plan{Base: "main", Policies: []plan.PolicyPlan{{PolicyDiff: plan.PolicyDiff{Name: "a", Status: plan.Unchanged}}}}, Summary, d, "")
		for _, no := range []string{"### Problems", "### Risks", "| policy |", "<details>", "Field-level changes", "> [!NOTE]", "_The base has"} {
			if strings.Contains(md, no) {
				t.Errorf("level %d: %q in a plan with no changes:\n%s", d, no, md)
			}
		}
	}
}

// TestPlanListsShowWhatTheirLevelAllows: problems, risks, changed policies,
// their changes and their targets each shown up to their level's limit, at
// the limit and one over, and the rest counted.
func TestPlanListsShowWhatTheirLevelAllows(t *testing.T) {
	type counts_ struct{ problems, risks, changed, changes, targets int }
	mk := func(c counts_) *plan.Plan {
		p := &plan.Plan{Base: "main", AWSChecked: true}
		for i := range c.problems {
			p.Problems = append(p.Problems, fmt.Sprintf("f.yaml:%d:1: bad", i))
		}
		for i := range max(c.changed, 1) {
			pp := plan.PolicyPlan{PolicyDiff: plan.PolicyDiff{Name: fmt.Sprintf("pol-%d", i), Status: plan.Changed}}
			if i == 0 {
				for j := range c.risks {
					pp.Risks = append(pp.Risks, plan.Risk{Check: "chk", Message: fmt.Sprintf("risk %d", j)})
				}
				for j := range c.changes {
					pp.Changes = append(pp.Changes, plan.FieldChange{Field: fmt.Sprintf("fld-%d", j), To: "x"})
				}
				for j := range c.targets {
					pp.Targets = append(pp.Targets, plan.Target{Phase: "tgt", Account: strconv.Itoa(j), Region: "r"})
				}
			}
			p.Policies = append(p.Policies, pp)
		}
		return p
	}
	more := func(md, re string) int {
		if m := regexp.MustCompile(re).FindStringSubmatch(md); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
		return -1
	}
	for _, tc := range []struct {
		name   string
		set    func(*counts_, int)
		lim    map[detail]int
		shown  func(md string) int
		moreRe string
	}{
		{"problems", func(c *counts_, n int) { c.problems = n }, map[detail]int{full: 100, collapsed: 20, counts: 5},
			func(md string) int { return strings.Count(md, ": bad`\n") }, `- … and (\d+) more \(run`},
		{"risks", func(c *counts_, n int) { c.risks = n }, map[detail]int{full: 200, collapsed: 40, counts: 10},
			func(md string) int { return strings.Count(md, "- ⚠️ **chk** pol-0: risk") }, `- … and (\d+) more\n`},
		{"changed policies", func(c *counts_, n int) { c.changed = n }, map[detail]int{full: 1 << 30, collapsed: 20, counts: 0},
			func(md string) int { return strings.Count(md, "<details><summary>📝 pol-") }, `_(\d+) more changed policies are summarised`},
		{"changes", func(c *counts_, n int) { c.changes = n }, map[detail]int{full: 100, collapsed: 15, counts: 0},
			func(md string) int { return strings.Count(md, ": set to x\n") }, `- … and (\d+) more\n`},
		{"targets", func(c *counts_, n int) { c.targets = n }, map[detail]int{full: 1 << 30, collapsed: 20, counts: 0},
			func(md string) int { return strings.Count(md, "| tgt | ") }, `\| … (\d+) more \|`},
	} {
		for _, n := range []int{tc.lim[counts], tc.lim[counts] + 1, tc.lim[collapsed], tc.lim[collapsed] + 1, min(tc.lim[full], 1000), min(tc.lim[full]+1, 1001)} {
			if n == 0 {
				continue
			}
			var c counts_
			tc.set(&c, n)
			p := mk(c)
			for _, d := range []detail{full, collapsed, counts} {
				md := renderPlan(p, Summary, d, "")
				want := min(n, tc.lim[d])
				wantMore := n - want
				if d == counts && tc.lim[counts] == 0 {
					wantMore = 0 // counts leaves the policies' details out, in a sentence with no number
				}
				wantMore = moreOf(wantMore)
				if got, m := tc.shown(md), more(md, tc.moreRe); got != want || m != wantMore {
					t.Errorf("%d %s at level %d: %d shown, %d more; want %d, %d", n, tc.name, d, got, m, want, wantMore)
				}
			}
		}
	}
}

// TestTargetsSummary: the per-policy figures of the plan's table.
func TestTargetsSummary(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pp      plan.PolicyPlan
		checked bool
		want    [4]string
	}{
		{"not checked", plan.PolicyPlan{Targets: []plan.Target{{Instances: 3}}}, false, [4]string{"–", "–", "–", "–"}},
		{"removed", plan.PolicyPlan{PolicyDiff: plan.PolicyDiff{Status: plan.Removed}, Targets: []plan.Target{{Instances: 3}}}, true, [4]string{"–", "–", "–", "–"}},
		{"invalid", plan.PolicyPlan{PolicyDiff: plan.PolicyDiff{Status: plan.Invalid}}, true, [4]string{"–", "–", "–", "–"}},
		{"nothing found", plan.PolicyPlan{PolicyDiff: plan.PolicyDiff{Status: plan.Changed}}, true, [4]string{"0", "–", "not read", "–"}},
		{"counts over targets, one unreadable", plan.PolicyPlan{PolicyDiff: plan.PolicyDiff{Status: plan.Changed}, Targets: []plan.Target{
			{Instances: 3, Compliant: 1, Findings: map[string]int{"LOW": 1}}, {Instances: 1, Compliant: 1, Findings: map[string]int{"LOW": 2, "HIGH": 1}},
			{Instances: 5, Compliant: 5, Error: "denied"}, {Instances: 2, Compliant: 0}}}, true,
			[4]string{"6 (💥 1 unreadable)", "2 (33%)", "1 high, 3 low", "–"}},
		{"drift states sorted and counted", plan.PolicyPlan{PolicyDiff: plan.PolicyDiff{Status: plan.Changed}, Targets: []plan.Target{{Instances: 1, Compliant: 1}},
			Drift: []plan.Drift{{Error: "x"}, {}, {BaselineID: "a"}, {BaselineID: "b", Changes: []baseline.Change{{}}}, {BaselineID: "c", Register: []string{"g"}},
				{BaselineID: "d", Deregister: []string{"g"}}, {BaselineID: "e"}}}, true,
			[4]string{"1", "1 (100%)", "not read", "3 drifted, 1 error, 2 in sync, 1 to create"}},
	} {
		inst, comp, cves, drift := targetsSummary(tc.pp, tc.checked)
		if got := [4]string{inst, comp, cves, drift}; got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestRings: which rings are worth showing, and each promotion state in words.
func TestRings(t *testing.T) {
	one := plan.RingPhase{Phase: "a", Accounts: []string{"1"}, Regions: []string{"r"}}
	for _, tc := range []struct {
		name string
		rs   []plan.RingPhase
		want bool
	}{
		{"none", nil, false},
		{"one phase", []plan.RingPhase{one}, false},
		{"same scope", []plan.RingPhase{one, {Phase: "b", Accounts: []string{"1"}, Regions: []string{"r"}}}, false},
		{"another account", []plan.RingPhase{one, {Phase: "b", Accounts: []string{"2"}, Regions: []string{"r"}}}, true},
		{"another region", []plan.RingPhase{one, {Phase: "b", Accounts: []string{"1"}, Regions: []string{"q"}}}, true},
		{"a promotion", []plan.RingPhase{{Phase: "a", From: "x"}}, true},
		{"first phase scoped, second the same", []plan.RingPhase{{Phase: "a", Accounts: []string{"1", "2"}}, {Phase: "b", Accounts: []string{"1", "2"}}}, false},
		{"accounts joined differ only by order", []plan.RingPhase{{Phase: "a", Accounts: []string{"1", "2"}}, {Phase: "b", Accounts: []string{"2", "1"}}}, true},
	} {
		if got := hasRings(tc.rs); got != tc.want {
			t.Errorf("%s: hasRings %v", tc.name, got)
		}
	}
	if got := ringLine(plan.RingPhase{Phase: "a", Regions: []string{"r1", "r2"}}); got != "a in the credentials' account (r1, r2)" {
		t.Errorf("%q", got)
	}
}

// TestShortSHA: seven characters, never more.
func TestShortSHA(t *testing.T) {
	for in, want := range map[string]string{"": "", "1234567": "1234567", "12345678": "1234567", "abc": "abc"} {
		if got := shortSHA(in); got != want {
			t.Errorf("shortSHA(%q) = %q", in, got)
		}
	}
}
