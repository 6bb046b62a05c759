package cli

import (
	"bytes"
	"context"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/patchgate/patchgate/internal/memnet"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func runIn(t *testing.T, dir string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	return runEnv(t, dir, Env{Getenv: func(k string) string { return env[k] }}, args...)
}

// runEnv runs patchgate in dir with e, its output captured.
func runEnv(t *testing.T, dir string, e Env, args ...string) (int, string, string) {
	t.Helper()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var out, errb bytes.Buffer
	e.Stdout, e.Stderr = &out, &errb
	code := Main(context.Background(), args, e)
	return code, out.String(), errb.String()
}

const badPolicy = `apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata:
  name: broken
spec:
  operatingSystem: UBUNTU
  baseline:
    approvalRules:
      - classifications: [Security]
        approveAfterDays: 7
  regions: [us-east-1]
  phases:
    - name: staging
      targets: {tags: {Environment: staging}}
      maxErrors: "-1"
      waves: ["50%", "10%"]
`

func writePolicies(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "policies"), 0o755)
	good, err := os.ReadFile("../../policies/web-fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "policies", "web.yaml"), good, 0o644)
	os.WriteFile(filepath.Join(dir, "policies", "broken.yaml"), []byte(badPolicy), 0o644)
	return dir
}

func TestValidateGolden(t *testing.T) {
	dir := writePolicies(t)
	code, out, _ := runIn(t, dir, nil, "validate")
	if code != ExitFailed {
		t.Fatalf("exit %d", code)
	}
	golden(t, "validate.txt", out)
	code, out, _ = runIn(t, dir, nil, "validate", "policies/", "--format", "json")
	if code != ExitFailed {
		t.Fatalf("json exit %d", code)
	}
	golden(t, "validate.json", out)
	code, out, _ = runIn(t, dir, map[string]string{"GITHUB_ACTIONS": "true"}, "validate")
	if code != ExitFailed || !strings.Contains(out, "::error col=26,file=policies/broken.yaml,line=9,title=patchgate policy::") {
		t.Fatalf("annotations: %s", out)
	}
}

func TestValidateExitCodes(t *testing.T) {
	code, out, _ := runIn(t, "../..", nil, "validate", "policies")
	if code != ExitOK || !strings.Contains(out, "3 policies valid") {
		t.Fatalf("examples: %d %s", code, out)
	}
	if code, _, errs := runIn(t, t.TempDir(), nil, "validate", "nope"); code != ExitUsage || !strings.Contains(errs, "nope") {
		t.Fatalf("missing path: %d %s", code, errs)
	}
	if code, _, _ := runIn(t, "../..", nil, "validate", "--format", "xml"); code != ExitUsage {
		t.Fatalf("bad format: %d", code)
	}
	abs, _ := filepath.Abs("../../policies")
	if code, _, _ := runIn(t, t.TempDir(), nil, "validate", abs); code != ExitOK {
		t.Fatalf("absolute path: %d", code)
	}
}

func TestSchemaCommandPrintsCommittedSchema(t *testing.T) {
	code, out, _ := runIn(t, "../..", nil, "schema")
	committed, _ := os.ReadFile("../../policies/schema.json")
	if code != ExitOK || out != string(committed) {
		t.Fatal("patchgate schema must print policies/schema.json")
	}
}

// Outside tests the demo serves its simulator on a loopback port, reached
// by the SDK's own HTTP client: nothing listens beyond this machine.
func TestDemoServesOnLoopback(t *testing.T) {
	ln, client, err := loopback()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !addr.IP.IsLoopback() || client != nil {
		t.Fatalf("demo listens on %v (client %v), want a loopback TCP port and the SDK's client", ln.Addr(), client)
	}
}

func TestDemo(t *testing.T) { synctest.Test(t, testDemo) }

// testDemo runs the demo on synctest's fake clock, its simulator served on
// an in-memory network, so that no poll or deadline depends on how busy the
// machine is.
func testDemo(t *testing.T) {
	inMemory := Env{simNet: func() (net.Listener, aws.HTTPClient, error) {
		n := memnet.Listen()
		return n, n.HTTPClient(0), nil
	}}
	code, out, _ := runEnv(t, "../..", inMemory, "demo")
	if code != 0 || !strings.Contains(out, "policy web-fleet: passed") || !strings.Contains(out, "run 1: waiting.") ||
		!strings.Contains(out, "5 patches replayed with InstallOverrideList, exact: true") || !strings.Contains(out, "production waited for staging's record to age") || !strings.Contains(out, "0 remaining with a fix") {
		t.Fatalf("demo exit %d:\n%s", code, out)
	}
	// The plan and sync steps: targets resolved, six baselines created (web
	// in 2 accounts x 2 regions, ubuntu and windows in their own).
	if !strings.Contains(out, "web-fleet      280 instances") || strings.Count(out, ": create, patch groups") != 6 {
		t.Fatalf("demo plan/sync steps:\n%s", out)
	}
	if !strings.Contains(out, "ubuntu-fleet   1 target, ") || !strings.Contains(out, "progress: web-fleet/staging ") {
		t.Errorf("plurals (\"1 target\") and progress lines:\n%s", out)
	}
	// The web fleet is backed up before each wave and installs with hooks.
	if !strings.Contains(out, "Backups: 272 instances snapshotted before their wave (544 EBS snapshots), 0 held back") ||
		!strings.Contains(out, "commands ran AWS-RunPatchBaselineWithHooks") {
		t.Errorf("backups and hooks:\n%s", out)
	}
	// The health gate: an alarm while staging runs stops the web fleet.
	code, out, _ = runEnv(t, "../..", inMemory, "demo", "--fail-health")
	if code != 1 || !strings.Contains(out, "web-fleet production SendCommand calls after the alarm, in any account-region: 0.") ||
		!strings.Contains(out, `alarm "web-5xx" is in ALARM`) {
		t.Fatalf("demo --fail-health exit %d:\n%s", code, out)
	}
	code, out, _ = runEnv(t, "../..", inMemory, "demo", "--fail-staging")
	if code != 1 || !strings.Contains(out, "kept production unpatched") || !strings.Contains(out, "production SendCommand calls, in any account-region: 0.") {
		t.Fatalf("demo --fail-staging exit %d:\n%s", code, out)
	}
	// The production ring never started: it says so, not "targeted 0".
	if !strings.Contains(out, "production   halted       not started, nothing sent") || strings.Contains(out, "halted       targeted 0") ||
		!strings.Contains(out, "progress: web-fleet/production 111122223333/us-east-1: halted, nothing sent") {
		t.Errorf("halted production:\n%s", out)
	}
}
