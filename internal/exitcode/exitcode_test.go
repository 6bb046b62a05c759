package exitcode

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/result"
)

// TestREADMEMatchesTheTable: README's exit-code table is this table.
func TestREADMEMatchesTheTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "## Exit codes")
	if i < 0 {
		t.Fatal("README has no Exit codes section")
	}
	row := regexp.MustCompile(`(?m)^\| (\d+) \| (.+) \|$`)
	var got []string
	for _, m := range row.FindAllStringSubmatch(string(b[i:]), -1) {
		got = append(got, m[1]+" "+m[2])
	}
	var want []string
	for _, c := range Table {
		want = append(want, fmt.Sprintf("%d %s", c.Code, c.Meaning))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("README's exit codes:\n%s\nthe table:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestForStatus(t *testing.T) {
	for s, want := range map[result.Status]int{
		result.StatusPassed: OK, result.StatusSkipped: OK, result.StatusDryRun: OK, result.StatusWaiting: OK,
		result.StatusFailed: Failed, result.StatusHalted: Failed,
		result.StatusInconclusive: Inconclusive, result.StatusRunning: Inconclusive,
		result.StatusCancelled: Cancelled, result.StatusRefused: Refused,
		result.StatusError: Usage, result.Status("new"): Usage,
	} {
		if got := ForStatus(s); got != want {
			t.Errorf("ForStatus(%s) = %d, want %d", s, got, want)
		}
	}
}

func TestExitCodesDistinct(t *testing.T) {
	seen := map[int]result.Status{}
	for _, s := range []result.Status{result.StatusPassed, result.StatusFailed, result.StatusInconclusive, result.StatusCancelled, result.StatusRefused, result.StatusError} {
		c := ForStatus(s)
		if prev, ok := seen[c]; ok {
			t.Errorf("%s and %s share exit code %d", prev, s, c)
		}
		seen[c] = s
	}
	if ForStatus(result.StatusHalted) != ForStatus(result.StatusFailed) {
		t.Error("halted must exit like failed")
	}
}
