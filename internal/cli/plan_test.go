package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/result"
)

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// policyRepo is a git repository with the example policies committed.
func policyRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../policies/*.yaml")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if err := os.WriteFile(filepath.Join(dir, "policies", filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, dir, "init", "-q", "-b", "main")
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "commit", "-q", "-m", "policies")
	return dir
}

// simCredentials points the SDK's default chain at the simulator's
// account 111122223333, away from any real profile on the machine.
func simCredentials(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", awssim.AccessKeyFor("111122223333"))
	t.Setenv("AWS_SECRET_ACCESS_KEY", "simsecret")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
}

// serveLoopback serves h on a loopback port for the test: commands given
// --endpoint-url (or AWS_ENDPOINT_URL) reach it with the SDK's own HTTP
// client, over TCP. These tests wait on no clock.
func serveLoopback(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestSyncThenPlanAgainstTheSimulator(t *testing.T) {
	sim := awssim.New(awssim.DemoScenario(awssim.DemoOptions{}), nil)
	ep := serveLoopback(t, sim)
	simCredentials(t)
	dir := policyRepo(t)
	env := map[string]string{}
	writes := func() int {
		n := 0
		for op, c := range sim.Calls() {
			for _, w := range []string{"ssm:Create", "ssm:Update", "ssm:Register", "ssm:Deregister", "ssm:Delete"} {
				if strings.HasPrefix(op, w) && strings.Contains(op, "Baseline") {
					n += c
				}
			}
		}
		return n
	}

	code, out, errOut := runIn(t, dir, env, "sync", "--dry-run", "--endpoint-url", ep)
	if code != 0 || !strings.Contains(out, "would be created") || writes() != 0 {
		t.Fatalf("dry run: %d writes=%d\n%s\n%s", code, writes(), out, errOut)
	}
	code, out, errOut = runIn(t, dir, env, "sync", "--endpoint-url", ep, "--run-id", "1")
	// web-fleet and windows-fleet x 2 accounts x 2 regions + ubuntu-fleet's own.
	// windows-fleet names no account (the credentials' own, 111122223333) and
	// web-fleet names it by id: one sync of that account, no false orphans.
	if code != 0 || !strings.Contains(out, "baseline(s) changed, 0 already in sync") || strings.Contains(out, "no policy declares it") {
		t.Fatalf("sync: %d\n%s\n%s", code, out, errOut)
	}
	first := writes()
	code, out, _ = runIn(t, dir, env, "sync", "--endpoint-url", ep, "--run-id", "2")
	if code != 0 || !strings.Contains(out, "0 baseline(s) changed") || writes() != first {
		t.Fatalf("second sync wrote %d times: %s", writes()-first, out)
	}

	// A PR lowers approveAfterDays: plan shows the change, the risk, the
	// targets with today's compliance, and the drift sync will fix.
	p := filepath.Join(dir, "policies", "web-fleet.yaml")
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), "approveAfterDays: 7", "approveAfterDays: 3", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runIn(t, dir, env, "plan", "--base", "HEAD", "--aws", "--endpoint-url", ep, "--format", "json", "--detailed-exitcode")
	if code != ExitChanges {
		t.Fatalf("plan exit %d\n%s", code, errOut)
	}
	var got plan.Plan
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !got.AWSChecked {
		t.Fatal("AWS not checked")
	}
	var web *plan.PolicyPlan
	for i := range got.Policies {
		if got.Policies[i].Name == "web-fleet" {
			web = &got.Policies[i]
		}
		if got.Policies[i].Name != "web-fleet" && len(got.Policies[i].Targets) > 0 {
			t.Errorf("unchanged %s was resolved", got.Policies[i].Name)
		}
	}
	if web == nil || web.Status != plan.Changed || len(web.Risks) != 1 || web.Risks[0].Check != plan.RiskApprovalFaster {
		t.Fatalf("web-fleet plan: %+v", web)
	}
	// plan and a dry run show the same compiled rollout.
	code, dry, errOut := runIn(t, dir, env, "run", "--dry-run", "--policy", "web-fleet", "--force-window", "--endpoint-url", ep, "--format", "json")
	if code != 0 {
		t.Fatalf("dry run exit %d\n%s", code, errOut)
	}
	var dr result.Run
	if err := json.Unmarshal([]byte(dry), &dr); err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(web.Rollout)
	dj, _ := json.Marshal(dr.Policies[0].Plan)
	if web.Rollout == nil || string(pj) != string(dj) || !strings.Contains(string(pj), `"maxErrors":`) {
		t.Fatalf("plan's rollout %s\ndry run's %s", pj, dj)
	}
	// 2 phases x 2 accounts x 2 regions, each with instances and states.
	if len(web.Targets) != 8 {
		t.Fatalf("targets: %+v", web.Targets)
	}
	total := 0
	for _, tg := range web.Targets {
		if tg.Error != "" || tg.Findings == nil {
			t.Errorf("target %+v", tg)
		}
		total += tg.Instances
	}
	if total == 0 {
		t.Fatal("no instances resolved")
	}
	if len(web.Drift) != 4 {
		t.Fatalf("drift: %+v", web.Drift)
	}
	for _, d := range web.Drift {
		if d.BaselineID == "" || len(d.Changes) != 1 || d.Changes[0].String() != "approvalRules[0].approval: after 7 days -> after 3 days" {
			t.Errorf("drift in %s/%s: %+v", d.Account, d.Region, d)
		}
	}

	// The markdown comment says the same, and without --aws says what it skipped.
	code, out, _ = runIn(t, dir, env, "plan", "--base", "HEAD", "--fail-on-risk")
	if code != ExitFailed || !strings.Contains(out, "approval-faster") || !strings.Contains(out, "were not checked") {
		t.Fatalf("plan markdown (%d):\n%s", code, out)
	}
}

// A pull request that breaks a policy: plan exits 1 ("found a problem"),
// even with --detailed-exitcode, and reports the policy invalid with its
// problems rather than removed.
func TestPlanInvalidHeadExitsOneAndSaysInvalid(t *testing.T) {
	dir := policyRepo(t)
	p := filepath.Join(dir, "policies", "web-fleet.yaml")
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), "cron: \"0 3 * * 0\"", "cron: \"0 3 30 2 *\"", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runIn(t, dir, nil, "plan", "--base", "HEAD", "--format", "json", "--detailed-exitcode")
	if code != ExitFailed {
		t.Fatalf("plan exit %d, want %d\n%s", code, ExitFailed, errOut)
	}
	var got plan.Plan
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	var web *plan.PolicyPlan
	for i := range got.Policies {
		if got.Policies[i].Name == "web-fleet" {
			web = &got.Policies[i]
		}
	}
	if web == nil || web.Status != plan.Invalid || len(web.Risks) != 1 || web.Risks[0].Check != plan.RiskPolicyInvalid ||
		len(web.Problems) != 1 || !strings.Contains(web.Problems[0], "policies/web-fleet.yaml:29:11: cron \"0 3 30 2 *\" never fires") {
		t.Fatalf("web-fleet: %+v", web)
	}
	code, out, _ = runIn(t, dir, nil, "plan", "--base", "HEAD")
	if code != ExitFailed || !strings.Contains(out, "The policies do not validate") || !strings.Contains(out, "❌ invalid") || !strings.Contains(out, "web-fleet: does not validate") || strings.Contains(out, "policy-removed") {
		t.Fatalf("plan markdown (%d):\n%s", code, out)
	}
}
