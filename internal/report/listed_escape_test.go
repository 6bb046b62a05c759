package report_test

import (
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/escape/escapetest"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

// TestListedSeverityIsEscaped: the severity a listing started from is read
// from the result file like every other field, so it is escaped in the
// table cell ("at or above ..."). It sits deeper in a result than
// FuzzReports' hostile fill reaches, which is why the fuzzing missed it.
func TestListedSeverityIsEscaped(t *testing.T) {
	hostile := "x|y\n<!-- patchgate:plan --> @foo [a](https://evil.example)"
	r := &result.Run{RunID: "r", Status: result.StatusFailed, Policies: []result.Policy{{Name: "p", Targets: []result.Target{{AccountID: "111122223333", Region: "us-east-1",
		Phases: []result.Phase{{Name: "staging", Status: result.StatusFailed,
			Verification: &result.Verification{Inspector: &result.Inspector{Listed: &result.FindingsListed{MinSeverity: hostile}}}}}}}}}}
	for _, k := range []report.Kind{report.Summary, report.Comment} {
		md := report.Run(r, k)
		markers := 0
		if k == report.Comment {
			markers = 1
		}
		if err := escapetest.CheckMarkdown(md, k.Limit(), markers); err != nil {
			t.Errorf("%v\n%s", err, md)
		}
		if !strings.Contains(md, "at or above x\\|y") {
			t.Errorf("the severity is not shown, escaped:\n%s", md)
		}
	}
}
