package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/result"
)

// TestRunOutputStreams: progress lines go to standard error, so --format
// json leaves standard output one JSON document; --quiet silences them;
// in Actions each policy's result is a group of its own.
func TestRunOutputStreams(t *testing.T) {
	ep := serveLoopback(t, awssim.New(awssim.DemoScenario(awssim.DemoOptions{}), nil))
	simCredentials(t)
	args := []string{"run", "--dry-run", "--force-window", "--endpoint-url", ep}

	code, out, errs := runIn(t, "../..", nil, append(args, "--format", "json")...)
	var r result.Run
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != ExitOK {
		t.Fatalf("exit %d; stdout is not one JSON document (%v):\n%.300s", code, err, out)
	}
	if !strings.Contains(errs, "progress: web-fleet/production 444455556666/eu-west-1: ") {
		t.Errorf("no progress on stderr:\n%s", errs)
	}

	_, out, errs = runIn(t, "../..", nil, append(args, "--quiet")...)
	if strings.Contains(errs, "progress:") || strings.Contains(errs, "level=INFO") || !strings.Contains(out, "patchgate run ") {
		t.Errorf("--quiet: stderr %q, stdout %.200q", errs, out)
	}

	_, out, _ = runIn(t, "../..", map[string]string{"GITHUB_ACTIONS": "true"}, args...)
	if strings.Count(out, "::group::policy ") != 3 || strings.Count(out, "::endgroup::") != 3 || !strings.Contains(out, "::group::policy web-fleet: dry-run\n::stop-commands::") || !strings.Contains(out, "\npolicy web-fleet: dry-run") {
		t.Errorf("groups per policy:\n%s", out)
	}
}

// TestPrintRunHeldBack: a phase stopped after a wave says how many of its
// instances were never sent; a reason cannot start a line of its own.
func TestPrintRunHeldBack(t *testing.T) {
	r := &result.Run{RunID: "1", Status: result.StatusFailed, Policies: []result.Policy{{Name: "web", Status: result.StatusFailed,
		Reason: "staging failed\r::endgroup::", Targets: []result.Target{{AccountID: "111122223333", Region: "eu-west-1", Status: result.StatusFailed,
			Phases: []result.Phase{{Name: "staging", Status: result.StatusFailed, Counts: result.Counts{Targeted: 30, Succeeded: 7, Failed: 3, Cancelled: 20},
				Waves: []result.Wave{{Status: result.StatusFailed, Counts: result.Counts{Targeted: 10, Succeeded: 7, Failed: 3}},
					{Status: result.StatusHalted, Counts: result.Counts{Targeted: 20, Cancelled: 20}}}}}}}}}}
	var b strings.Builder
	printRunActions(Env{Stdout: &b, Getenv: func(k string) string {
		if k == "GITHUB_ACTIONS" {
			return "true"
		}
		return ""
	}}, r, "text")
	out := b.String()
	if !strings.Contains(out, "targeted 30, succeeded 7, failed 3, timed out 0, offline 0, skipped 0, inconclusive 0; 20 held back (not sent)") {
		t.Errorf("held back not said:\n%s", out)
	}
	// Workflow commands count only at the start of a line.
	if strings.Contains(out, "\r") || strings.Count(out, "\n::endgroup::") != 1 || !strings.HasSuffix(out, "\n::endgroup::\n") {
		t.Errorf("the reason broke the group:\n%q", out)
	}
}
