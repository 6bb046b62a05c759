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
	ep := awssim.Start(t, awssim.New(awssim.DemoScenario(awssim.DemoOptions{}), nil))
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
	if strings.Count(out, "::group::policy ") != 3 || strings.Count(out, "::endgroup::") != 3 || !strings.Contains(out, "::group::policy web-fleet: dry-run\npolicy web-fleet: dry-run") {
		t.Errorf("groups per policy:\n%s", out)
	}
}

// TestHaltedPhaseSaysWhatWasHeldBack: a production ring after a failed
// staging ring was never started; it says so instead of "targeted 0".
func TestHaltedPhaseSaysWhatWasHeldBack(t *testing.T) {
	code, out, _ := runIn(t, "../..", nil, "demo", "--fail-staging")
	if code != ExitFailed || !strings.Contains(out, "production   halted       not started, nothing sent") || strings.Contains(out, "halted       targeted 0") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "progress: web-fleet/staging ") {
		t.Errorf("the demo shows its progress lines:\n%s", out)
	}
}
