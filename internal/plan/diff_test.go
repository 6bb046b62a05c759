package plan_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/policy"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// repo makes a git repository whose first commit holds the example
// policies and whose second holds them after edit.
func repo(t *testing.T, edit func(t *testing.T, dir string)) string {
	t.Helper()
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	ents, _ := filepath.Glob("../../policies/*.yaml")
	for _, src := range ents {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "policies", filepath.Base(src)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "base")
	edit(t, dir)
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "--allow-empty", "-m", "head")
	return dir
}

func replace(file, old, new string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		p := filepath.Join(dir, "policies", file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), old) {
			t.Fatalf("%s has no %q", file, old)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func both(edits ...func(t *testing.T, dir string)) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		for _, e := range edits {
			e(t, dir)
		}
	}
}

func buildPlan(t *testing.T, dir string) *plan.Plan {
	t.Helper()
	return buildPlanOf(t, dir, false)
}

// buildPlanOf plans HEAD against HEAD~1; a head that does not validate
// fails the test unless invalidOK.
func buildPlanOf(t *testing.T, dir string, invalidOK bool) *plan.Plan {
	t.Helper()
	ctx := context.Background()
	g := plan.Git{Dir: dir}
	sha, err := g.Resolve(ctx, "HEAD~1")
	if err != nil {
		t.Fatal(err)
	}
	base, err := g.LoadAt(ctx, sha, "policies")
	if err != nil {
		t.Fatal(err)
	}
	head, err := policy.Load(os.DirFS(dir), "policies")
	if err != nil {
		t.Fatal(err)
	}
	if len(head.Problems) > 0 && !invalidOK {
		t.Fatalf("head does not validate: %v", head.Problems)
	}
	return plan.New("HEAD~1", sha, base, head)
}

func TestPlanDiffAndRisks(t *testing.T) {
	stagingBlock := "    - name: staging\n      targets:\n        tags: {Environment: staging, App: web}\n      maxConcurrency: \"50%\"\n      maxErrors: \"0\"\n      successThreshold: \"100%\"\n      soak: 30m\n      verify:\n        compliance: true\n        inspector:\n          enabled: true\n          failOnSeverity: HIGH\n          rescanTimeout: 45m\n          requireFixed: [CVE-2024-6387]\n        health: {alarms: [web-5xx]}   # CloudWatch: before, after each wave, through the soak\n"
	cases := []struct {
		name    string
		edit    func(t *testing.T, dir string)
		status  map[string]plan.Status
		changes []string // substrings of "policy| change"
		risks   []string // check ids
	}{
		{name: "unchanged", edit: func(*testing.T, string) {}, status: map[string]plan.Status{"web-fleet": plan.Unchanged, "ubuntu-fleet": plan.Unchanged}},
		{name: "max errors raised", edit: replace("web-fleet.yaml", `maxErrors: "2%"`, `maxErrors: "5%"`),
			status: map[string]plan.Status{"web-fleet": plan.Changed, "windows-fleet": plan.Unchanged}, changes: []string{"web-fleet| production: maxErrors: 2% -> 5%"}, risks: []string{plan.RiskMaxErrorsRaised}},
		{name: "max errors lowered is no risk", edit: replace("web-fleet.yaml", `maxErrors: "2%"`, `maxErrors: "1%"`),
			changes: []string{"web-fleet| production: maxErrors: 2% -> 1%"}},
		{name: "approval faster", edit: replace("web-fleet.yaml", "approveAfterDays: 7", "approveAfterDays: 3"),
			changes: []string{"web-fleet| rule Security,Bugfix/Critical,Important: approveAfterDays: 7 -> 3"}, risks: []string{plan.RiskApprovalFaster}},
		{name: "staging removed", edit: replace("web-fleet.yaml", stagingBlock, ""),
			changes: []string{"web-fleet| phases: staging -> production -> production", "web-fleet| staging: maxErrors: removed (was 0)"}, risks: []string{plan.RiskPhaseRemoved}},
		{name: "staging moved after production", edit: both(replace("web-fleet.yaml", "name: staging", "name: tmp"), replace("web-fleet.yaml", "name: production", "name: staging"), replace("web-fleet.yaml", "name: tmp", "name: production")),
			risks: []string{plan.RiskPhaseReordered, plan.RiskMaxErrorsRaised, plan.RiskThresholdLowered}},
		{name: "threshold lowered", edit: replace("web-fleet.yaml", `successThreshold: "100%"`, `successThreshold: "90%"`),
			changes: []string{"web-fleet| staging: successThreshold: 100% -> 90%"}, risks: []string{plan.RiskThresholdLowered}},
		{name: "concurrency raised", edit: replace("web-fleet.yaml", `maxConcurrency: "20%"`, `maxConcurrency: "50%"`), risks: []string{plan.RiskMaxConcurrencyRaised}},
		{name: "compliance off", edit: replace("web-fleet.yaml", "compliance: true", "compliance: false"),
			changes: []string{"web-fleet| staging: verify compliance: true -> false"}, risks: []string{plan.RiskVerificationWeakened}},
		{name: "severity relaxed", edit: replace("web-fleet.yaml", "failOnSeverity: HIGH", "failOnSeverity: CRITICAL"), risks: []string{plan.RiskVerificationWeakened}},
		{name: "inspector off", edit: replace("web-fleet.yaml", "        inspector:\n          enabled: true\n          failOnSeverity: CRITICAL\n", ""),
			changes: []string{"web-fleet| production: verify inspector: true -> false"}, risks: []string{plan.RiskVerificationWeakened}},
		{name: "reboot changed", edit: replace("web-fleet.yaml", "rebootOption: RebootIfNeeded", "rebootOption: NoReboot"), risks: []string{plan.RiskRebootChanged}},
		{name: "freeze removed", edit: replace("web-fleet.yaml", "    freezes:\n      - {from: \"2026-12-20\", to: \"2027-01-04\", reason: holiday freeze}\n", ""),
			changes: []string{"web-fleet| freezes: removed (was [2026-12-20..2027-01-04])"}, risks: []string{plan.RiskFreezeRemoved}},
		{name: "targets widened", edit: replace("web-fleet.yaml", "{tags: {Environment: production, App: web}}", "{tags: {Environment: production}}"),
			changes: []string{"web-fleet| production: targets: tags {App=web, Environment=production} -> tags {Environment=production}"}, risks: []string{plan.RiskTargetsWidened}},
		{name: "offline skipped", edit: replace("web-fleet.yaml", "      soak: 30m\n", "      soak: 30m\n      offline: skip\n"), risks: []string{plan.RiskOfflineSkipped}},
		{name: "region added", edit: replace("web-fleet.yaml", "regions: [us-east-1, eu-west-1]", "regions: [us-east-1, eu-west-1, ap-south-1]"), risks: []string{plan.RiskScopeWidened}},
		{name: "rejected patch removed", edit: replace("web-fleet.yaml", `rejectedPatches: ["kernel-6.1.0-1*"]`, `rejectedPatches: []`),
			changes: []string{"web-fleet| rejectedPatches: removed (was [kernel-6.1.0-1*])"}, risks: []string{plan.RiskRejectedPatchRemoved}},
		{name: "rejected patch added is no risk", edit: replace("web-fleet.yaml", `rejectedPatches: ["kernel-6.1.0-1*"]`, `rejectedPatches: ["kernel-6.1.0-1*", "openssl-3.0.7"]`)},
		{name: "rejection relaxed", edit: replace("web-fleet.yaml", "rejectedPatchesAction: BLOCK", "rejectedPatchesAction: ALLOW_AS_DEPENDENCY"),
			risks: []string{plan.RiskRejectionRelaxed}},
		{name: "soak removed", edit: replace("web-fleet.yaml", "      soak: 30m\n", ""),
			changes: []string{"web-fleet| staging: soak: removed (was 30m)"}, risks: []string{plan.RiskSoakShortened}},
		{name: "soak shortened", edit: replace("web-fleet.yaml", "soak: 30m", "soak: 5m"), risks: []string{plan.RiskSoakShortened}},
		{name: "soak lengthened is no risk", edit: replace("web-fleet.yaml", "soak: 30m", "soak: 1h")},
		{name: "waves collapsed", edit: replace("web-fleet.yaml", `waves: ["10%", "50%", "100%"]`, `waves: ["100%"]`),
			changes: []string{"web-fleet| production: waves: [10%, 50%, 100%] -> [100%]"}, risks: []string{plan.RiskWavesCollapsed}},
		{name: "first wave larger", edit: replace("web-fleet.yaml", `waves: ["10%", "50%", "100%"]`, `waves: ["25%", "50%", "100%"]`), risks: []string{plan.RiskWavesCollapsed}},
		{name: "waves split finer is no risk", edit: replace("web-fleet.yaml", `waves: ["10%", "50%", "100%"]`, `waves: ["5%", "10%", "50%", "100%"]`)},
		{name: "renamed in place", edit: replace("windows-fleet.yaml", "name: windows-fleet", "name: windows-servers"),
			status: map[string]plan.Status{"windows-servers": plan.Renamed}, changes: []string{}},
		{name: "moved and renamed", edit: func(t *testing.T, dir string) {
			replace("ubuntu-fleet.yaml", "name: ubuntu-fleet", "name: ubuntu-servers")(t, dir)
			git(t, dir, "mv", "policies/ubuntu-fleet.yaml", "policies/ubuntu.yaml")
		}, status: map[string]plan.Status{"ubuntu-servers": plan.Renamed}, changes: []string{"ubuntu-servers| file: policies/ubuntu-fleet.yaml -> policies/ubuntu.yaml"}},
		{name: "added and removed", edit: func(t *testing.T, dir string) {
			data, _ := os.ReadFile(filepath.Join(dir, "policies", "web-fleet.yaml"))
			data = []byte(strings.Replace(strings.Replace(string(data), "name: web-fleet", "name: api-fleet", 1), "App: web", "App: api", 2))
			data = []byte(strings.ReplaceAll(string(data), "approveAfterDays: 14", "approveAfterDays: 10"))
			if err := os.WriteFile(filepath.Join(dir, "policies", "api-fleet.yaml"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			git(t, dir, "rm", "-q", "policies/ubuntu-fleet.yaml")
		}, status: map[string]plan.Status{"api-fleet": plan.Added, "ubuntu-fleet": plan.Removed, "web-fleet": plan.Unchanged}, risks: []string{plan.RiskPolicyRemoved}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := buildPlan(t, repo(t, tc.edit))
			var changes []string
			got := map[string]plan.Status{}
			for _, pp := range p.Policies {
				got[pp.Name] = pp.Status
				for _, c := range pp.Changes {
					changes = append(changes, pp.Name+"| "+c.String())
				}
			}
			for name, want := range tc.status {
				if got[name] != want {
					t.Errorf("%s: status %q, want %q (all: %v)", name, got[name], want, got)
				}
			}
			all := strings.Join(changes, "\n")
			for _, want := range tc.changes {
				if !strings.Contains(all, want) {
					t.Errorf("changes lack %q:\n%s", want, all)
				}
			}
			var ids []string
			for _, r := range p.Risks() {
				ids = append(ids, r.Check)
			}
			for _, want := range tc.risks {
				if !strings.Contains(strings.Join(ids, " "), want) {
					t.Errorf("risks lack %s: %v", want, p.Risks())
				}
			}
			if len(tc.risks) == 0 && len(ids) > 0 {
				t.Errorf("no risk expected, got %v", p.Risks())
			}
			if tc.name == "unchanged" && (p.HasChanges() || len(changes) > 0) {
				t.Errorf("unchanged repo has changes: %v", changes)
			}
			if tc.name != "unchanged" && !p.HasChanges() {
				t.Errorf("HasChanges false")
			}
		})
	}
}

// A head policy that does not validate is "invalid", with its problems and
// a policy-invalid risk, never "removed"; a new file that does not validate
// is listed too, and a policy really deleted is still "removed".
func TestPlanInvalidHeadIsNotRemoved(t *testing.T) {
	dir := repo(t, both(
		replace("web-fleet.yaml", `maxErrors: "2%"`, `maxErrors: "-1"`),
		func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "policies", "new.yaml"), []byte("apiVersion: patchgate.dev/v1\nkind: PatchPolicy\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			git(t, dir, "rm", "-q", "policies/windows-fleet.yaml")
		}))
	p := buildPlanOf(t, dir, true)
	got := map[string]plan.PolicyPlan{}
	for _, pp := range p.Policies {
		got[pp.Name] = pp
	}
	web := got["web-fleet"]
	if web.Status != plan.Invalid || len(web.Risks) != 1 || web.Risks[0].Check != plan.RiskPolicyInvalid ||
		len(web.Problems) == 0 || !strings.HasPrefix(web.Problems[0], "policies/web-fleet.yaml:") || !strings.Contains(web.Risks[0].Message, "maxErrors") {
		t.Errorf("web-fleet: %+v", web)
	}
	if n := got["policies/new.yaml"]; n.Status != plan.Invalid || n.File != "policies/new.yaml" || len(n.Problems) == 0 {
		t.Errorf("new.yaml: %+v", n)
	}
	if w := got["windows-fleet"]; w.Status != plan.Removed || w.Risks[0].Check != plan.RiskPolicyRemoved {
		t.Errorf("windows-fleet: %+v", w)
	}
	if u := got["ubuntu-fleet"]; u.Status != plan.Unchanged {
		t.Errorf("ubuntu-fleet: %+v", u)
	}
	for _, r := range p.Risks() {
		if r.Check == plan.RiskPolicyRemoved && !strings.HasPrefix(r.Message, "windows-fleet:") {
			t.Errorf("an invalid policy is reported removed: %v", r)
		}
	}
	if len(p.Problems) == 0 || !strings.Contains(p.Summary(), "2 invalid") {
		t.Errorf("summary %q, problems %v", p.Summary(), p.Problems)
	}
}

func TestPlanShallowCloneSaysHowToFix(t *testing.T) {
	src := repo(t, replace("web-fleet.yaml", `maxErrors: "2%"`, `maxErrors: "5%"`))
	clone := t.TempDir()
	git(t, clone, "clone", "-q", "--depth", "1", "file://"+src, ".")
	_, err := plan.Git{Dir: clone}.Resolve(context.Background(), "HEAD~1")
	if err == nil || !strings.Contains(err.Error(), "fetch-depth: 0") {
		t.Fatalf("shallow clone: %v", err)
	}
	_, err = plan.Git{Dir: src}.Resolve(context.Background(), "origin/nope")
	if err == nil || !strings.Contains(err.Error(), "not a commit in this repository") {
		t.Fatalf("unknown ref: %v", err)
	}
}

func TestPlanFirstPoliciesAllAdded(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "commit", "-q", "--allow-empty", "-m", "empty")
	ctx := context.Background()
	base, err := plan.Git{Dir: dir}.LoadAt(ctx, "HEAD", "policies")
	if err != nil || len(base.Policies) != 0 {
		t.Fatalf("base without the directory: %v %v", err, base)
	}
	head, _ := policy.Load(os.DirFS("../.."), "policies")
	p := plan.New("HEAD", "", base, head)
	for _, pp := range p.Policies {
		if pp.Status != plan.Added {
			t.Errorf("%s: %s", pp.Name, pp.Status)
		}
	}
}

// Diffing 500 policies against a base where every fifth one changed (a
// large monorepo's pull request): plan's pure core, without git or AWS.
func BenchmarkDiff500(b *testing.B) {
	src, err := os.ReadFile("../../policies/web-fleet.yaml")
	if err != nil {
		b.Fatal(err)
	}
	load := func(edit bool) []*policy.Policy {
		var out []*policy.Policy
		for i := 0; i < 500; i++ {
			text := strings.Replace(string(src), "name: web-fleet", "name: web-fleet-"+strconv.Itoa(i), 1)
			if edit && i%5 == 0 {
				text = strings.Replace(text, `maxErrors: "2%"`, `maxErrors: "5%"`, 1)
			}
			p, probs := policy.Parse("p.yaml", []byte(text))
			if len(probs) > 0 {
				b.Fatal(probs.Error())
			}
			out = append(out, p)
		}
		return out
	}
	base, head := load(false), load(true)
	b.ReportAllocs()
	for b.Loop() {
		changed := 0
		for _, d := range plan.Diff(base, head) {
			if len(d.Changes) > 0 {
				changed++
			}
		}
		if changed != 100 {
			b.Fatalf("%d policies changed, want 100", changed)
		}
	}
}

// A soak only delays the next phase: shortening the last phase's soak is
// not a risk, shortening an earlier one's is.
func TestSoakRiskOnlyBeforeAnotherPhase(t *testing.T) {
	src, err := os.ReadFile("../../policies/web-fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(text string) *policy.Policy {
		p, probs := policy.Parse("policies/web-fleet.yaml", []byte(text))
		if len(probs) > 0 {
			t.Fatal(probs.Error())
		}
		return p
	}
	lastSoaks := strings.Replace(string(src), "      offline: skip", "      soak: 2h\n      offline: skip", 1)
	for _, tc := range []struct {
		name      string
		old, head string
		want      int
	}{
		{"last phase soak removed", lastSoaks, string(src), 0},
		{"first phase soak removed", string(src), strings.Replace(string(src), "      soak: 30m\n", "", 1), 1},
	} {
		n := 0
		for _, d := range plan.Diff([]*policy.Policy{parse(tc.old)}, []*policy.Policy{parse(tc.head)}) {
			for _, r := range d.Risks {
				if r.Check == plan.RiskSoakShortened {
					n++
				}
			}
		}
		if n != tc.want {
			t.Errorf("%s: %d soak-shortened risks, want %d", tc.name, n, tc.want)
		}
	}
}

// TestRingRisks: weakening a ring is a risk a reviewer must see.
func TestRingRisks(t *testing.T) {
	data, err := os.ReadFile("../../policies/rings/payments-rings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(src string) *policy.Policy {
		t.Helper()
		p, probs := policy.Parse("payments-rings.yaml", []byte(src))
		if len(probs) > 0 {
			t.Fatal(probs.Error())
		}
		return p
	}
	base := parse(string(data))
	for _, tc := range []struct {
		name, old, new, risk string
	}{
		{"minAge lowered", "minAge: 72h", "minAge: 24h", plan.RiskPromotionWeakened},
		{"maxAge raised", "maxAge: 336h", "maxAge: 720h", plan.RiskPromotionWeakened},
		{"replay off", "replay: true", "replay: false", plan.RiskPromotionWeakened},
		{"promotion removed", "      promotion:\n        from: staging\n        minAge: 72h\n        maxAge: 336h\n        replay: true\n", "", plan.RiskPromotionWeakened},
		{"barrier off", "      prefix: patchgate\n", "      prefix: patchgate\n    independentTargets: true\n", plan.RiskBarrierOff},
		{"a phase's scope widened", "      regions: [us-east-1]\n      targets:", "      regions: [us-east-1, eu-west-1]\n      targets:", plan.RiskScopeWidened},
		{"a phase gains an account", "          roleArn: arn:aws:iam::777788889999:role/patchgate-target\n", "          roleArn: arn:aws:iam::777788889999:role/patchgate-target\n        - id: \"123412341234\"\n", plan.RiskScopeWidened},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := string(data)
			if !strings.Contains(src, tc.old) {
				t.Fatalf("%q not in the example", tc.old)
			}
			cur := parse(strings.Replace(src, tc.old, tc.new, 1))
			d := plan.Diff([]*policy.Policy{base}, []*policy.Policy{cur})
			var got []string
			for _, r := range d[0].Risks {
				got = append(got, r.Check)
			}
			if !slices.Contains(got, tc.risk) {
				t.Fatalf("risks %v, want %s", got, tc.risk)
			}
		})
	}
	// Tightening is no risk.
	cur := parse(strings.Replace(string(data), "minAge: 72h", "minAge: 96h", 1))
	if d := plan.Diff([]*policy.Policy{base}, []*policy.Policy{cur}); len(d[0].Risks) != 0 {
		t.Fatalf("raising minAge is no risk: %+v", d[0].Risks)
	}
}

// TestRingsInThePlan: the plan lists each phase's scope and promotion.
func TestRingsInThePlan(t *testing.T) {
	data, err := os.ReadFile("../../policies/rings/payments-rings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, probs := policy.Parse("payments-rings.yaml", data)
	if len(probs) > 0 {
		t.Fatal(probs.Error())
	}
	pl := plan.New("main", "", nil, &policy.Set{Policies: []*policy.Policy{p}})
	rs := pl.Policies[0].Rings
	if len(rs) != 2 || rs[0].Phase != "staging" || strings.Join(rs[0].Accounts, ",") != "111122223333" || rs[0].From != "" ||
		strings.Join(rs[1].Accounts, ",") != "444455556666,777788889999" || rs[1].From != "staging" || rs[1].MinAge != "72h" || !rs[1].Replay || rs[1].Checked {
		t.Fatalf("rings %+v", rs)
	}
}
