package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/result"
)

// TestInspectorLineCountsOnlyWhatWasListed: when only the gate's findings
// were listed, findings without a fix were never read, so the text output
// gives no count of them (a "0 without" would be made up), except the
// required CVEs without a fix it did find.
func TestInspectorLineCountsOnlyWhatWasListed(t *testing.T) {
	listed := &result.FindingsListed{MinSeverity: "HIGH", RequiredCVEs: []string{"CVE-2024-0001"}}
	cases := []struct {
		name      string
		in        *result.Inspector
		want, not []string
	}{
		{"nothing without a fix", &result.Inspector{Listed: listed},
			[]string{"at or above HIGH", "0 remaining with a fix, 0 new"}, []string{"without,", "without a fix"}},
		{"a required CVE without a fix", &result.Inspector{Listed: listed, NoFix: []result.Finding{{InstanceID: "i-1", CVE: "CVE-2024-0001"}}},
			[]string{"0 remaining with a fix, 1 required CVEs without a fix, 0 new"}, nil},
		{"everything listed", &result.Inspector{NoFix: []result.Finding{{InstanceID: "i-1", CVE: "CVE-2024-0002"}}},
			[]string{"1 without a fix"}, []string{"listed:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := result.Policy{Name: "web", Targets: []result.Target{{AccountID: "111122223333", Region: "us-east-1",
				Phases: []result.Phase{{Name: "staging", Verification: &result.Verification{Inspector: tc.in}}}}}}
			var b bytes.Buffer
			printPolicy(&b, p)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("no %q in:\n%s", w, b.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("%q in:\n%s", n, b.String())
				}
			}
		})
	}
}
