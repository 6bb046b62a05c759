package report_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/patchgate/patchgate/internal/escape/escapetest"
	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test ./internal/report -update to accept):\n%s", name, firstDiff(string(want), got))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\nwant %s\ngot  %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d lines", len(al), len(bl))
}

func loadRun(t testing.TB, name string) *result.Run {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var r result.Run
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// checkMarkdown checks the invariants every report keeps, as GitHub reads
// it (escapetest.CheckMarkdown): within limit, valid UTF-8, balanced
// <details>, closed code fences, every table row with its header's number
// of cells, no HTML or link but patchgate's own, and one marker, its first
// line, in a comment.
func checkMarkdown(t testing.TB, md string, limit int) {
	t.Helper()
	markers := 0
	if limit == report.Comment.Limit() {
		markers = 1
	}
	if err := escapetest.CheckMarkdown(md, limit, markers); err != nil {
		t.Fatal(err)
	}
}

func TestRunReportsGolden(t *testing.T) {
	for _, name := range []string{"passed", "failed"} {
		r := loadRun(t, name+".json")
		for _, k := range []struct {
			kind report.Kind
			file string
		}{{report.Summary, name + ".summary.md"}, {report.Comment, name + ".comment.md"}} {
			md := report.Run(r, k.kind)
			checkMarkdown(t, md, k.kind.Limit())
			golden(t, k.file, md)
		}
	}
}

func TestRunReportTellsTheTruth(t *testing.T) {
	failed := report.Run(loadRun(t, "failed.json"), report.Summary)
	for _, want := range []string{"❌ Failed", "web-fleet", "⏸️ halted", "Failed instances (1)", "```mermaid", "classDef bad"} {
		if !strings.Contains(failed, want) {
			t.Errorf("failed run report lacks %q", want)
		}
	}
	if strings.Contains(failed, "✅ Patched and verified") {
		t.Error("a failed run says green")
	}
	passed := report.Run(loadRun(t, "passed.json"), report.Comment)
	if !strings.HasPrefix(passed, report.RunMarker("")) || !strings.Contains(passed, "✅ Patched and verified") || !strings.Contains(passed, "CVEs fixed") {
		t.Errorf("passed comment:\n%.600s", passed)
	}
	// Inconclusive and running runs are never green.
	for _, s := range []result.Status{result.StatusInconclusive, result.StatusRunning, result.StatusRefused, result.StatusError} {
		r := loadRun(t, "passed.json")
		r.Status = s
		if md := report.Run(r, report.Comment); strings.Contains(md, "✅ Patched") {
			t.Errorf("%s run rendered green", s)
		}
	}
}

// bigRun is a run over n instances with failures, non-compliance and CVEs
// everywhere: the worst case for size.
func bigRun(n int) *result.Run {
	r := &result.Run{SchemaVersion: result.SchemaVersion, RunID: "12345", RunURL: "https://github.com/acme/infra/actions/runs/12345", Status: result.StatusFailed,
		Summary: "A gate failed", StartedAt: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC), EndedAt: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)}
	perTarget := 2500
	for p := 0; p*perTarget*8 < n; p++ {
		pol := result.Policy{Name: fmt.Sprintf("fleet-%03d", p), Status: result.StatusFailed}
		for tg := 0; tg < 8 && (p*8+tg)*perTarget < n; tg++ {
			t := result.Target{AccountID: fmt.Sprintf("1111222233%02d", tg), Region: "us-east-1", Status: result.StatusFailed}
			ph := result.Phase{Name: "production", Status: result.StatusFailed, Verification: &result.Verification{Verdict: result.StatusFailed,
				Compliance: &result.Compliance{}, Inspector: &result.Inspector{FixedBySeverity: map[string]int{}, RemainingBySeverity: map[string]int{}}}}
			w := result.Wave{Index: 1, Share: "100%"}
			for i := 0; i < perTarget; i++ {
				id := fmt.Sprintf("i-%017x", (p*8+tg)*perTarget+i)
				in := result.Instance{ID: id, Name: "web-ä|<b>-" + id, Outcome: result.OutcomeSucceeded}
				if i%10 == 0 {
					in.Outcome, in.Error = result.OutcomeFailed, "E: Sub-process /usr/bin/dpkg returned an error code (1) | `rm -rf` <script>"
					ph.Verification.Compliance.NonCompliant = append(ph.Verification.Compliance.NonCompliant, result.InstanceCompliance{InstanceID: id, Reason: "missing 3 patches", Missing: 3, CVEs: []string{"CVE-2024-6387"}})
					ph.Verification.Inspector.Remaining = append(ph.Verification.Inspector.Remaining, result.Finding{InstanceID: id, CVE: "CVE-2024-6387", Severity: "HIGH", Package: "openssh"})
				}
				w.Instances = append(w.Instances, in)
				w.Counts.Add(in.Outcome)
				if i%50 == 0 {
					w.Commands = append(w.Commands, result.Command{CommandID: fmt.Sprintf("cmd-%d-%d-%d", p, tg, i), Instances: 50, Sent: true, Status: "Success"})
				}
			}
			ph.Counts = w.Counts
			ph.Waves = []result.Wave{w}
			ph.Verification.Compliance.Instances = perTarget
			ph.Verification.Compliance.Compliant = perTarget - len(ph.Verification.Compliance.NonCompliant)
			ph.Reasons = []result.Reason{{Code: "success-threshold", Message: "90% succeeded, 98% required"}}
			t.Phases = []result.Phase{ph}
			pol.Targets = append(pol.Targets, t)
		}
		r.Policies = append(r.Policies, pol)
	}
	return r
}

func TestRunReportFitsAtAnySize(t *testing.T) {
	for _, n := range []int{100, 5000, 50000, 400000} {
		r := bigRun(n)
		for _, kind := range []report.Kind{report.Summary, report.Comment} {
			md := report.Run(r, kind)
			checkMarkdown(t, md, kind.Limit())
			if !strings.Contains(md, "❌ Failed") {
				t.Errorf("n=%d: headline lost", n)
			}
		}
	}
}

func loadPolicies(t testing.TB, mutate func(name string, data string) string) *policy.Set {
	t.Helper()
	fsys := fstest.MapFS{}
	ents, _ := filepath.Glob("../../policies/*.yaml")
	for _, f := range ents {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fsys["policies/"+filepath.Base(f)] = &fstest.MapFile{Data: []byte(mutate(filepath.Base(f), string(data)))}
	}
	set, err := policy.Load(fsys, "policies")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestPlanReportGolden(t *testing.T) {
	base := loadPolicies(t, func(_, d string) string { return d })
	head := loadPolicies(t, func(name, d string) string {
		if name == "web-fleet.yaml" {
			d = strings.Replace(d, `maxErrors: "2%"`, `maxErrors: "5%"`, 1)
			d = strings.Replace(d, "approveAfterDays: 7", "approveAfterDays: 3", 1)
		}
		return d
	})
	p := plan.New("origin/main", "0123456789abcdef0123", base, head)
	p.NotChecked("no AWS credentials were given (pass --aws or role-to-assume)")
	md := report.Plan(p, report.Comment, "")
	checkMarkdown(t, md, report.Comment.Limit())
	golden(t, "plan.comment.md", md)
	for _, want := range []string{report.PlanMarker(), "max-errors-raised", "production: maxErrors: 2% -&gt; 5%", "were not checked"} {
		if !strings.Contains(md, want) {
			t.Errorf("plan comment lacks %q", want)
		}
	}
}

func TestPlanCommentFor200Policies(t *testing.T) {
	web, err := os.ReadFile("../../policies/web-fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(maxErrors string) *policy.Set {
		fsys := fstest.MapFS{}
		for i := 0; i < 200; i++ {
			d := strings.Replace(string(web), "name: web-fleet", fmt.Sprintf("name: fleet-%03d", i), 1)
			d = strings.Replace(d, `maxErrors: "2%"`, `maxErrors: "`+maxErrors+`"`, 1)
			d = strings.Replace(d, "approveAfterDays: 7", "approveAfterDays: "+map[string]string{"2%": "7", "5%": "3"}[maxErrors], 1)
			fsys[fmt.Sprintf("policies/fleet-%03d.yaml", i)] = &fstest.MapFile{Data: []byte(d)}
		}
		set, err := policy.Load(fsys, "policies")
		if err != nil || len(set.Problems) > 0 {
			t.Fatal(err, set.Problems)
		}
		return set
	}
	p := plan.New("origin/main", "", mk("2%"), mk("5%"))
	if len(p.Risks()) != 400 {
		t.Fatalf("%d risks", len(p.Risks()))
	}
	md := report.Plan(p, report.Comment, "https://github.com/acme/infra/actions/runs/1")
	checkMarkdown(t, md, report.Comment.Limit())
	if !strings.Contains(md, "fleet-199") || !strings.Contains(md, "Changes with risks") {
		t.Errorf("200-policy plan lost its content:\n%.400s", md)
	}
	t.Logf("200-policy plan comment: %d bytes", len(md))
}

// FuzzCell: whatever an instance's error output holds, a table row keeps
// its columns and the document its structure.
func FuzzCell(f *testing.F) {
	for _, s := range []string{"a|b", "<details>", "```", "\n|---|", "\\|", "ä\xff", "[x](javascript:1)", "<!-- patchgate:plan -->"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := bigRun(1)
		r.RunID = s
		r.Summary = s
		r.Policies[0].Targets[0].Phases[0].Waves[0].Instances[0].Error = s
		r.Policies[0].Targets[0].Phases[0].Waves[0].Instances[0].Name = s
		r.Policies[0].Targets[0].Phases[0].Reasons[0].Message = s
		md := report.Run(r, report.Summary)
		checkMarkdown(t, md, report.Summary.Limit())
		if strings.Count(md, "<details>") != 4 {
			t.Fatalf("input %q changed the document's sections", s)
		}
	})
}
