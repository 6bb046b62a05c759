package report_test

import (
	"testing"

	"github.com/patchgate/patchgate/internal/escape/escapetest"
	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

// hostileRun is a run with every string in it from strs: names, reasons,
// errors, tag-derived names, finding titles, command ids, URLs, statuses,
// map keys; every list has two entries (32 instances), so that a fuzzing
// run tries many inputs a second.
func hostileRun(strs ...string) *result.Run {
	r := &result.Run{}
	escapetest.Fill(r, escapetest.Cycle(strs...))
	return r
}

func hostilePlan(strs ...string) *plan.Plan {
	p := &plan.Plan{}
	escapetest.Fill(p, escapetest.Cycle(strs...))
	return p
}

// FuzzReports renders a run and a plan whose every string field is
// hostile, as a job summary and as a comment, and checks what GitHub would
// make of them (escapetest.CheckMarkdown): no raw HTML or link from input,
// no live mention, exactly one marker in a comment (first line) and none
// in a summary, tables intact, within GitHub's limits.
func FuzzReports(f *testing.F) {
	for i, s := range escapetest.Seeds {
		f.Add(s, escapetest.Seeds[(i+1)%len(escapetest.Seeds)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		strs := []string{a, b, "https://github.com/o/r/actions/runs/1", "<!-- patchgate:plan -->"}
		r := hostileRun(strs...)
		check := func(what, md string, kind report.Kind, markers int) {
			t.Helper()
			if err := escapetest.CheckMarkdown(md, kind.Limit(), markers); err != nil {
				t.Fatalf("%s: %v\n%s", what, err, md)
			}
		}
		check("run summary", report.Run(r, report.Summary), report.Summary, 0)
		check("run comment", report.Run(r, report.Comment), report.Comment, 1)
		check("policy run comment", report.RunComment(r, r.Policies[0].Name), report.Comment, 1)
		p := hostilePlan(strs...)
		check("plan summary", report.Plan(p, report.Summary, a), report.Summary, 0)
		check("plan comment", report.Plan(p, report.Comment, b), report.Comment, 1)
	})
}

// TestHostileReportsAtTheLimit: the marker of a long policy name is in the
// body before it is fitted, so a comment cut to the limit stays within it.
func TestHostileReportsAtTheLimit(t *testing.T) {
	r := bigRun(50000)
	for i := range r.Policies {
		r.Policies[i].Name = escapetest.Seeds[i%len(escapetest.Seeds)] + string(make([]byte, 200))
	}
	md := report.RunComment(r, r.Policies[0].Name)
	if err := escapetest.CheckMarkdown(md, report.Comment.Limit(), 1); err != nil {
		t.Fatal(err)
	}
	if first, _, _ := cutLine(md); first != report.RunMarker(r.Policies[0].Name) {
		t.Fatalf("first line %q", first)
	}
}

func cutLine(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
