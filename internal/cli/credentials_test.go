package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/result"
)

// stsRecorder sits in front of the simulator and keeps what each STS call
// carried on the wire: the form (session name, duration) and the signing
// scope (region).
type stsRecorder struct {
	next  http.Handler
	mu    sync.Mutex
	calls []stsCall
}

type stsCall struct {
	form url.Values
	auth string
}

func (s *stsRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Version") == "2011-06-15" {
		s.mu.Lock()
		s.calls = append(s.calls, stsCall{form, r.Header.Get("Authorization")})
		s.mu.Unlock()
	}
	s.next.ServeHTTP(w, r)
}

func (s *stsRecorder) find(action string) []stsCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []stsCall
	for _, c := range s.calls {
		if c.form.Get("Action") == action {
			out = append(out, c)
		}
	}
	return out
}

// credentialEnv is a GitHub Actions job with an OIDC token endpoint, a
// GITHUB_OUTPUT file and the simulator behind a recorder.
func credentialEnv(t *testing.T) (*awssim.Sim, *stsRecorder, string, map[string]string) {
	t.Helper()
	sim := awssim.New(awssim.DemoScenario(awssim.DemoOptions{}), nil)
	rec := &stsRecorder{next: sim}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	tok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"value": "oidc-token"}`)
	}))
	t.Cleanup(tok.Close)
	out := filepath.Join(t.TempDir(), "output")
	if err := os.WriteFile(out, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	env := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": out, "GITHUB_RUN_ID": "77",
		"ACTIONS_ID_TOKEN_REQUEST_URL": tok.URL + "/token", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
	}
	return sim, rec, srv.URL, env
}

const simRole = "arn:aws:iam::111122223333:role/patchgate"

// TestCredentialOptions: the options users know from
// configure-aws-credentials reach STS as they would there.
func TestCredentialOptions(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		_, rec, ep, env := credentialEnv(t)
		env["AWS_DEFAULT_REGION"] = "eu-central-1"
		code, out, errs := runIn(t, "../..", env, "sync", "--dry-run", "--endpoint-url", ep, "--role-to-assume", simRole)
		if code != ExitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		web := rec.find("AssumeRoleWithWebIdentity")
		if len(web) != 1 {
			t.Fatalf("%d AssumeRoleWithWebIdentity calls, want 1", len(web))
		}
		if got := web[0].form.Get("RoleSessionName"); got != "patchgate-sync-77" {
			t.Errorf("RoleSessionName %q, want patchgate-sync-77", got)
		}
		if got := web[0].form.Get("DurationSeconds"); got != "3600" {
			t.Errorf("DurationSeconds %q, want 3600 (configure-aws-credentials' default)", got)
		}
		// No --region: AWS_DEFAULT_REGION signs the calls.
		ids := rec.find("GetCallerIdentity")
		if len(ids) == 0 || !strings.Contains(ids[0].auth, "/eu-central-1/sts/aws4_request") {
			t.Errorf("GetCallerIdentity not signed for eu-central-1: %v", ids)
		}
		data, _ := os.ReadFile(env["GITHUB_OUTPUT"])
		if !strings.Contains(string(data), "aws-account-id<<") || !strings.Contains(string(data), "\n111122223333\n") {
			t.Errorf("GITHUB_OUTPUT lacks aws-account-id 111122223333:\n%s", data)
		}
		if strings.Contains(out, "::add-mask::111122223333") {
			t.Errorf("account id masked without --mask-aws-account-id:\n%s", out)
		}
		if !strings.Contains(out, "::add-mask::oidc-token") {
			t.Errorf("the OIDC token must always be masked:\n%s", out)
		}
	})
	t.Run("set", func(t *testing.T) {
		_, rec, ep, env := credentialEnv(t)
		env["AWS_REGION"] = "ap-south-1"
		env["AWS_DEFAULT_REGION"] = "eu-central-1"
		code, out, errs := runIn(t, "../..", env, "sync", "--dry-run", "--endpoint-url", ep, "--role-to-assume", simRole,
			"--role-session-name", "nightly-patch", "--role-duration-seconds", "7200", "--mask-aws-account-id")
		if code != ExitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		web := rec.find("AssumeRoleWithWebIdentity")
		if len(web) != 1 || web[0].form.Get("RoleSessionName") != "nightly-patch" || web[0].form.Get("DurationSeconds") != "7200" {
			t.Errorf("AssumeRoleWithWebIdentity: %v", web)
		}
		// The policies' own roles are assumed under the same session name.
		for _, c := range rec.find("AssumeRole") {
			if c.form.Get("RoleSessionName") != "nightly-patch" {
				t.Errorf("AssumeRole %s with session %q", c.form.Get("RoleArn"), c.form.Get("RoleSessionName"))
			}
		}
		ids := rec.find("GetCallerIdentity")
		if len(ids) == 0 || !strings.Contains(ids[0].auth, "/ap-south-1/sts/aws4_request") {
			t.Errorf("AWS_REGION comes before AWS_DEFAULT_REGION: %v", ids)
		}
		if !strings.Contains(out, "::add-mask::111122223333") {
			t.Errorf("--mask-aws-account-id did not mask the account id:\n%s", out)
		}
	})
	t.Run("retry-max-attempts", func(t *testing.T) {
		sim, rec, ep, env := credentialEnv(t)
		sim.Throttle("sts:AssumeRoleWithWebIdentity", 1)
		code, _, errs := runIn(t, "../..", env, "sync", "--dry-run", "--endpoint-url", ep, "--role-to-assume", simRole, "--retry-max-attempts", "1")
		if code != ExitUsage || len(rec.find("AssumeRoleWithWebIdentity")) != 1 || !strings.Contains(errs, "patchgate sync: assuming "+simRole) {
			t.Fatalf("one attempt allowed: exit %d, %d calls\n%s", code, len(rec.find("AssumeRoleWithWebIdentity")), errs)
		}
	})
	t.Run("refused values", func(t *testing.T) {
		for _, args := range [][]string{
			{"--role-duration-seconds", "60"}, {"--role-duration-seconds", "50000"},
			{"--role-session-name", "has space"}, {"--retry-max-attempts", "0"},
		} {
			_, rec, ep, env := credentialEnv(t)
			code, _, errs := runIn(t, "../..", env, append([]string{"sync", "--dry-run", "--endpoint-url", ep, "--role-to-assume", simRole}, args...)...)
			if code != ExitUsage || !strings.Contains(errs, args[0]) || len(rec.calls) != 0 {
				t.Errorf("%v: exit %d, %d STS calls, stderr %q", args, code, len(rec.calls), errs)
			}
		}
	})
}

// TestMissingCredentialsOneLine: no credentials at all is one line with
// the remedy, before anything else, whatever the number of targets.
func TestMissingCredentialsOneLine(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	// IMDS is the chain's last resort: a loopback server that has no role.
	imds := httptest.NewServer(http.NotFoundHandler())
	defer imds.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	ep := serveLoopback(t, awssim.New(awssim.DemoScenario(awssim.DemoOptions{}), nil))
	for _, args := range [][]string{{"run", "--force-window"}, {"sync"}} {
		cmd := args[0]
		code, out, errs := runIn(t, "../..", nil, append(args, "--dry-run", "--endpoint-url", ep)...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != ExitUsage || len(lines) != 1 || !strings.HasPrefix(lines[0], "patchgate "+cmd+": no AWS credentials found") ||
			!strings.Contains(errs, "--role-to-assume") || !strings.Contains(errs, "AWS_PROFILE") || !strings.Contains(errs, "--endpoint-url") || out != "" {
			t.Errorf("%s: exit %d\nstdout %q\nstderr %q", cmd, code, out, errs)
		}
	}
}

// TestPolicyWithoutAccountsNamesTheCallersAccount: windows-fleet lists no
// accounts; its target is the credentials' own account, shown by id (the
// engine names it once connected; a target that never connected is named
// from the identity checked before the run).
func TestPolicyWithoutAccountsNamesTheCallersAccount(t *testing.T) {
	ep := serveLoopback(t, awssim.New(awssim.DemoScenario(awssim.DemoOptions{}), nil))
	simCredentials(t)
	code, out, errs := runIn(t, "../..", nil, "run", "--policy", "windows-fleet", "--dry-run", "--force-window", "--endpoint-url", ep)
	if code != ExitOK || !strings.Contains(out, "  111122223333/us-east-1: ") || strings.Contains(out, "  /us-east-1") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	r := &result.Run{Policies: []result.Policy{{Targets: []result.Target{{Region: "eu-west-1", Status: result.StatusError}, {AccountID: "444455556666", Region: "eu-west-1"}}}}}
	nameCallerAccount(r, "111122223333")
	if got := r.Policies[0].Targets; got[0].AccountID != "111122223333" || got[1].AccountID != "444455556666" {
		t.Errorf("targets after naming: %+v", got)
	}
}
