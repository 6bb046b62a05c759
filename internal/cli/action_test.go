package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/report"
)

// githubStub records comment and issue writes.
type githubStub struct {
	mu     sync.Mutex
	posts  map[string][]string // path -> bodies
	issues int
}

func (g *githubStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	data, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(data, &body)
	switch {
	case r.URL.Path == "/user": // an installation token may not read it
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"Resource not accessible by integration"}`)
	case r.URL.Path == "/graphql":
		w.WriteHeader(http.StatusNotFound)
	case r.Method == http.MethodGet:
		fmt.Fprint(w, "[]")
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/issues"):
		g.issues++
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"number": %d, "title": %q}`, 500+g.issues, body["title"])
	case r.Method == http.MethodPost:
		g.posts[r.URL.Path] = append(g.posts[r.URL.Path], fmt.Sprint(body["body"]))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id": 1, "html_url": "https://github.com/o/r/issues/1#c1"}`)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

type actionEnv struct {
	env            map[string]string
	output, summ   string
	github         *githubStub
	dir            string
	outputs        map[string]string
	summaryContent string
}

func newActionEnv(t *testing.T, dir, event string, payload map[string]any, inputs map[string]string) *actionEnv {
	t.Helper()
	tmp := t.TempDir()
	gh := &githubStub{posts: map[string][]string{}}
	srv := httptest.NewServer(gh)
	t.Cleanup(srv.Close)
	ev := filepath.Join(tmp, "event.json")
	data, _ := json.Marshal(payload)
	if err := os.WriteFile(ev, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a := &actionEnv{github: gh, dir: dir, output: filepath.Join(tmp, "output"), summ: filepath.Join(tmp, "summary")}
	a.env = map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": ev, "GITHUB_REPOSITORY": "acme/infra",
		"GITHUB_RUN_ID": "777", "GITHUB_API_URL": srv.URL, "GITHUB_OUTPUT": a.output, "GITHUB_STEP_SUMMARY": a.summ, "RUNNER_TEMP": tmp,
		"INPUT_GITHUB-TOKEN": "ghs_secret"}
	for k, v := range inputs {
		a.env["INPUT_"+strings.ToUpper(k)] = v
	}
	for _, f := range []string{a.output, a.summ} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func (a *actionEnv) run(t *testing.T) (int, string) {
	t.Helper()
	code, out, errOut := runIn(t, a.dir, a.env, "action")
	data, _ := os.ReadFile(a.output)
	a.outputs = map[string]string{}
	// GITHUB_OUTPUT uses name<<DELIMITER\nvalue\nDELIMITER blocks.
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		if name, delim, ok := strings.Cut(lines[i], "<<"); ok && i+2 < len(lines) {
			a.outputs[name] = lines[i+1]
			for i < len(lines) && lines[i] != delim {
				i++
			}
		}
	}
	s, _ := os.ReadFile(a.summ)
	a.summaryContent = string(s)
	return code, out + errOut
}

func TestActionPlansOnPullRequests(t *testing.T) {
	dir := policyRepo(t)
	p := filepath.Join(dir, "policies", "web-fleet.yaml")
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), `maxErrors: "2%"`, `maxErrors: "10%"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	sha, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	baseSHA := strings.TrimSpace(string(sha))
	a := newActionEnv(t, dir, "pull_request", map[string]any{"pull_request": map[string]any{"number": 12, "base": map[string]any{"sha": baseSHA, "ref": "main"}}}, nil)
	code, log := a.run(t)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, log)
	}
	if a.outputs["has-changes"] != "true" || a.outputs["status"] != "changes" {
		t.Errorf("outputs %v", a.outputs)
	}
	if !strings.Contains(a.summaryContent, "max-errors-raised") {
		t.Errorf("summary:\n%s", a.summaryContent)
	}
	posts := a.github.posts["/repos/acme/infra/issues/12/comments"]
	if len(posts) != 1 || !strings.HasPrefix(posts[0], report.PlanMarker()) {
		t.Fatalf("PR comment: %v", a.github.posts)
	}
	// The base reads as its branch and short commit, not 40 hex digits.
	if want := "Compared with `main (" + baseSHA[:7] + ")`"; !strings.Contains(posts[0], want) || strings.Contains(posts[0], baseSHA) {
		t.Errorf("PR comment should name the base as %s:\n%s", want, posts[0])
	}
	if !strings.Contains(log, "::warning::max-errors-raised") || strings.Contains(log, "ghs_secret\n") && !strings.Contains(log, "::add-mask::ghs_secret") {
		t.Errorf("log:\n%s", log)
	}
}

func TestActionRefusesRunOnPullRequests(t *testing.T) {
	a := newActionEnv(t, policyRepo(t), "pull_request", map[string]any{"pull_request": map[string]any{"number": 3}}, map[string]string{"mode": "run"})
	code, log := a.run(t)
	if code != ExitUsage || !strings.Contains(log, "refused on pull_request") {
		t.Fatalf("exit %d\n%s", code, log)
	}
}

func TestActionDryRunsOnSchedule(t *testing.T) {
	sim := awssim.New(awssim.DemoScenario(awssim.DemoOptions{}), nil)
	ep := serveLoopback(t, sim)
	simCredentials(t)
	t.Setenv("AWS_ENDPOINT_URL", ep)
	a := newActionEnv(t, policyRepo(t), "schedule", map[string]any{}, map[string]string{"dry-run": "true", "policy": "web-fleet", "force-window": "true"})
	code, log := a.run(t)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, log)
	}
	if a.outputs["status"] != "dry-run" || a.outputs["report-path"] == "" || a.outputs["aws-account-id"] != "111122223333" {
		t.Errorf("outputs %v", a.outputs)
	}
	if !strings.Contains(a.summaryContent, "Dry run: nothing was sent") {
		t.Errorf("summary:\n%.500s", a.summaryContent)
	}
	if len(sim.Sends()) != 0 {
		t.Errorf("dry run sent %d commands", len(sim.Sends()))
	}
	if !strings.Contains(log, "--force-window") && !strings.Contains(a.summaryContent, "force-window") {
		t.Errorf("forced window not reported")
	}
	// Dry runs are not posted to the tracking issue; the summary has them.
	if a.github.issues != 0 {
		t.Errorf("dry run created a tracking issue")
	}
}
