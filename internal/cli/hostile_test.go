package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/escape"
	"github.com/patchgate/patchgate/internal/escape/escapetest"
	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

// hostilePolicy is a policy file a fork's pull request could carry: every
// field that reaches the plan, the log or a comment tries to break out.
const hostilePolicy = `apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata:
  name: "evil\r::set-output name=y::pwned"
  description: "desc\r::stop-commands::Y <script>alert(1)</script> @acme/platform https://evil.example"
  owners: ["@acme/security-team"]
spec:
  operatingSystem: "AMAZON_LINUX_2023\r\r<img src=x onerror=alert(1)>"
  regions: ["us-east-1\r::error::x"]
  phases:
    - name: "staging\n::warning::fake"
      targets: {tags: {"Environment\r::x::": "<!-- patchgate:plan -->"}}
`

// TestActionHostilePolicyFilesInAPullRequest: a pull request adds a policy
// whose file name and contents are hostile. Nothing in the log becomes a
// workflow command, and the summary and comment are safe markdown.
func TestActionHostilePolicyFilesInAPullRequest(t *testing.T) {
	dir := policyRepo(t)
	for name, data := range map[string]string{"bad\r::stop-commands::X.yaml": hostilePolicy, "x\n::set-output name=z::1.yaml": hostilePolicy} {
		if err := os.WriteFile(filepath.Join(dir, "policies", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := newActionEnv(t, dir, "pull_request", map[string]any{"pull_request": map[string]any{"number": 12, "base": map[string]any{"sha": "HEAD"}}}, nil)
	a.env["GITHUB_SERVER_URL"] = "https://github.com"
	code, log := a.run(t)
	if code != ExitFailed {
		t.Fatalf("exit %d: invalid policies fail the plan\n%s", code, log)
	}
	// patchgate's own annotations: one warning per invalid file (the
	// policy-invalid risk), its data escaped as go-githubactions does.
	ours := []string{"::add-mask::ghs_secret", "::group::patchgate plan", "::endgroup::"}
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "::warning::policy-invalid: ") && !strings.ContainsAny(line, "\r") {
			ours = append(ours, line)
		}
	}
	if len(ours) != 5 {
		t.Errorf("want one policy-invalid warning per hostile file, have %d:\n%s", len(ours)-3, log)
	}
	if err := escapetest.CheckLog(log, ours...); err != nil {
		t.Errorf("log: %v\n%s", err, log)
	}
	if !strings.Contains(log, "::stop-commands::") {
		t.Errorf("the plan was not printed between stop-commands lines:\n%s", log)
	}
	if err := escapetest.CheckMarkdown(a.summaryContent, report.Summary.Limit(), 0); err != nil {
		t.Errorf("summary: %v\n%s", err, a.summaryContent)
	}
	if !strings.Contains(a.summaryContent, "The policies do not validate") || !strings.Contains(a.summaryContent, "bad ::stop-commands::X.yaml") {
		t.Errorf("the summary does not show the problem:\n%s", a.summaryContent)
	}
	posts := a.github.posts["/repos/acme/infra/issues/12/comments"]
	if len(posts) != 1 {
		t.Fatalf("PR comments: %v", a.github.posts)
	}
	if err := escapetest.CheckMarkdown(posts[0], report.Comment.Limit(), 1); err != nil {
		t.Errorf("comment: %v\n%s", err, posts[0])
	}
}

// FuzzTextOutput prints a run and a plan whose every string field is
// hostile, as patchgate prints them under GitHub Actions (run's text, the
// report command's markdown and JSON of both), and checks the log: no line from
// input is a workflow command, no hidden character, and JSON output still
// reads back as the same result.
func FuzzTextOutput(f *testing.F) {
	for i, s := range escapetest.Seeds {
		f.Add(s, escapetest.Seeds[(i+1)%len(escapetest.Seeds)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		r := &result.Run{}
		escapetest.Fill(r, escapetest.Cycle(a, b, "::error::x", "\r##[warning]y"))
		r.SchemaVersion = result.SchemaVersion
		env := Env{Getenv: func(k string) string { return map[string]string{"GITHUB_ACTIONS": "true"}[k] }}

		var text strings.Builder
		env.Stdout = escape.NewLogWriter(&text)
		end := untrustedBlock(env)
		printRun(env.Stdout, r, "text")
		end()
		env.Stdout.(*escape.LogWriter).Flush()
		if err := escapetest.CheckLog(text.String()); err != nil {
			t.Fatalf("run text: %v\n%s", err, text.String())
		}

		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		in := filepath.Join(t.TempDir(), "result.json")
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		p := &plan.Plan{}
		escapetest.Fill(p, escapetest.Cycle(b, a, "  ::warning::z"))
		planData, _ := json.Marshal(p)
		planIn := filepath.Join(t.TempDir(), "plan.json")
		if err := os.WriteFile(planIn, planData, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{"summary", "comment"} {
			var out, errOut strings.Builder
			Main(t.Context(), []string{"report", "--input", planIn, "--format", format}, Env{Stdout: &out, Stderr: &errOut, Getenv: env.Getenv})
			if err := escapetest.CheckLog(out.String() + errOut.String()); err != nil {
				t.Fatalf("plan report --format %s: %v\n%s", format, err, out.String())
			}
		}
		for _, format := range []string{"summary", "comment", "json"} {
			var out, errOut strings.Builder
			Main(t.Context(), []string{"report", "--input", in, "--format", format}, Env{Stdout: &out, Stderr: &errOut, Getenv: env.Getenv})
			if err := escapetest.CheckLog(out.String() + errOut.String()); err != nil {
				t.Fatalf("report --format %s: %v\n%s", format, err, out.String())
			}
			if format == "json" {
				var back result.Run
				if err := json.Unmarshal([]byte(out.String()), &back); err != nil {
					t.Fatalf("JSON output no longer parses: %v\n%s", err, out.String())
				}
				var want result.Run
				_ = json.Unmarshal(data, &want)
				if !reflect.DeepEqual(back, want) {
					t.Fatalf("JSON output changed meaning")
				}
			}
		}
	})
}

// TestReportJSONWithCRLF: a plan file saved with CRLF line ends still
// prints as JSON (the log neutralises \r, so it must not pass through).
func TestReportJSONWithCRLF(t *testing.T) {
	in := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(in, []byte("{\r\n  \"base\": \"main\",\r\n  \"policies\": []\r\n}\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "report", "--input", in, "--format", "json")
	var p plan.Plan
	if code != ExitOK || json.Unmarshal([]byte(out), &p) != nil || p.Base != "main" {
		t.Fatalf("exit %d, output %q %s", code, out, errOut)
	}
}
