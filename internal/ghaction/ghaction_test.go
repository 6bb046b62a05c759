package ghaction

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-githubactions"
	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/internal/clock"
)

func TestRoute(t *testing.T) {
	cases := []struct {
		mode  string
		ev    Event
		want  string
		error string
	}{
		{ModeAuto, Event{Name: "pull_request"}, ModePlan, ""},
		{ModeAuto, Event{Name: "pull_request_target"}, ModePlan, ""},
		{ModeAuto, Event{Name: "push", Ref: "refs/heads/main", DefaultBranch: "main"}, ModeSync, ""},
		{ModeAuto, Event{Name: "push", Ref: "refs/heads/feature", DefaultBranch: "main"}, ModeValidate, ""},
		{ModeAuto, Event{Name: "schedule"}, ModeRun, ""},
		{ModeAuto, Event{Name: "workflow_dispatch"}, ModeRun, ""},
		{ModeAuto, Event{Name: "issues"}, "", "does not know"},
		{ModeRun, Event{Name: "pull_request"}, "", "refused on pull_request"},
		{ModeSync, Event{Name: "pull_request_target"}, "", "refused on pull_request_target"},
		{ModeRun, Event{Name: "schedule"}, ModeRun, ""},
		{ModePlan, Event{Name: "push"}, ModePlan, ""},
		{"deploy", Event{Name: "push"}, "", "use auto, validate"},
	}
	for _, tc := range cases {
		got, err := Route(tc.mode, tc.ev)
		if tc.error != "" {
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Errorf("%s on %s: %v, want error %q", tc.mode, tc.ev.Name, err, tc.error)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s on %+v: %q %v, want %q", tc.mode, tc.ev, got, err, tc.want)
		}
	}
}

// fakeGitHub is the part of the REST API sticky comments use.
type fakeGitHub struct {
	mu        sync.Mutex
	comments  map[int][]map[string]any // issue -> comments
	issues    []map[string]any
	nextID    int
	deny      bool // answer 403 to writes, as for a fork's token
	rateLimit int  // answer this many requests with a primary rate limit
	requests  []string
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	if f.rateLimit > 0 {
		f.rateLimit--
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(2*time.Second).Unix(), 10))
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"API rate limit exceeded"}`)
		return
	}
	if f.deny && r.Method != http.MethodGet {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"Resource not accessible by integration"}`)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // repos/o/r/issues/...
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	switch {
	case len(parts) == 6 && parts[5] == "comments" && r.Method == http.MethodGet:
		n, _ := strconv.Atoi(parts[4])
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if page == 0 {
			page = 1
		}
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		all := f.comments[n]
		start, end := min((page-1)*per, len(all)), min(page*per, len(all))
		if end < len(all) {
			w.Header().Set("Link", fmt.Sprintf(`<http://%s%s?page=%d&per_page=%d>; rel="next"`, r.Host, r.URL.Path, page+1, per))
		}
		_ = json.NewEncoder(w).Encode(all[start:end])
	case len(parts) == 6 && parts[5] == "comments" && r.Method == http.MethodPost:
		n, _ := strconv.Atoi(parts[4])
		f.nextID++
		c := map[string]any{"id": f.nextID, "body": body["body"], "html_url": fmt.Sprintf("https://github.com/o/r/issues/%d#c%d", n, f.nextID)}
		f.comments[n] = append(f.comments[n], c)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(c)
	case len(parts) == 6 && parts[4] == "comments" && r.Method == http.MethodPatch:
		id, _ := strconv.Atoi(parts[5])
		for _, cs := range f.comments {
			for _, c := range cs {
				if c["id"] == id {
					c["body"] = body["body"]
					_ = json.NewEncoder(w).Encode(c)
					return
				}
			}
		}
		w.WriteHeader(http.StatusNotFound)
	case len(parts) == 4 && parts[3] == "issues" && r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(f.issues)
	case len(parts) == 4 && parts[3] == "issues" && r.Method == http.MethodPost:
		var labels []map[string]any
		for _, l := range body["labels"].([]any) {
			labels = append(labels, map[string]any{"name": l})
		}
		is := map[string]any{"number": 100 + len(f.issues), "title": body["title"], "labels": labels}
		f.issues = append(f.issues, is)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(is)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func newFake(t *testing.T) (*fakeGitHub, *Comments) {
	f := &fakeGitHub{comments: map[int][]map[string]any{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := NewComments("ghs_token", srv.URL, "o/r")
	if err != nil {
		t.Fatal(err)
	}
	c.Clock = clock.Real{}
	return f, c
}

func TestUpsertFindsItsCommentAcrossPages(t *testing.T) {
	f, c := newFake(t)
	ctx := context.Background()
	for i := 0; i < 150; i++ {
		f.nextID++
		f.comments[7] = append(f.comments[7], map[string]any{"id": f.nextID, "body": fmt.Sprintf("someone else %d", i)})
	}
	if _, err := c.Upsert(ctx, 7, "<!-- patchgate:plan -->", "<!-- patchgate:plan -->\nfirst"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ { // the discussion goes on; ours is now on page 2
		f.nextID++
		f.comments[7] = append(f.comments[7], map[string]any{"id": f.nextID, "body": "reply"})
	}
	if _, err := c.Upsert(ctx, 7, "<!-- patchgate:plan -->", "<!-- patchgate:plan -->\nsecond"); err != nil {
		t.Fatal(err)
	}
	ours := 0
	for _, cm := range f.comments[7] {
		if strings.Contains(cm["body"].(string), "patchgate:plan") {
			ours++
			if !strings.HasSuffix(cm["body"].(string), "second") {
				t.Errorf("not edited: %v", cm["body"])
			}
		}
	}
	if ours != 1 {
		t.Fatalf("%d sticky comments, want 1", ours)
	}
	// Other report kinds get their own comment.
	if _, err := c.Upsert(ctx, 7, "<!-- patchgate:run:web -->", "run report"); err != nil {
		t.Fatal(err)
	}
	if last := f.comments[7][len(f.comments[7])-1]["body"].(string); !strings.HasPrefix(last, "<!-- patchgate:run:web -->\n") {
		t.Errorf("marker not prepended: %q", last)
	}
}

func TestUpsertOnAForkFallsBack(t *testing.T) {
	f, c := newFake(t)
	f.deny = true
	_, err := c.Upsert(context.Background(), 7, "<!-- patchgate:plan -->", "x")
	if !errors.Is(err, ErrNoAccess) {
		t.Fatalf("want ErrNoAccess, got %v", err)
	}
}

func TestRateLimitIsWaitedOut(t *testing.T) {
	f, c := newFake(t)
	f.rateLimit = 1
	start := time.Now()
	if _, err := c.Upsert(context.Background(), 7, "<!-- m -->", "x"); err != nil {
		t.Fatal(err)
	}
	if len(f.comments[7]) != 1 || time.Since(start) < time.Second {
		t.Fatalf("comments %v after %v", f.comments[7], time.Since(start))
	}
	// A reset too far away is an error, not a hang.
	f.rateLimit = 1
	c.MaxWait = time.Millisecond
	if _, err := c.Upsert(context.Background(), 8, "<!-- m -->", "x"); err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("far reset: %v", err)
	}
}

func TestTrackingIssueCreatedOnceWithLabel(t *testing.T) {
	f, c := newFake(t)
	ctx := context.Background()
	n, err := c.TrackingIssue(ctx, "patchgate compliance report")
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.TrackingIssue(ctx, "patchgate compliance report")
	if err != nil || again != n || len(f.issues) != 1 {
		t.Fatalf("second lookup: %d %v, %d issues", again, err, len(f.issues))
	}
	if labels := f.issues[0]["labels"].([]map[string]any); labels[0]["name"] != TrackingLabel {
		t.Errorf("labels %v", labels)
	}
	if n, err := c.TrackingIssue(ctx, "#42"); err != nil || n != 42 {
		t.Errorf("by number: %d %v", n, err)
	}
}

// TestRunPublishesOutputsSummaryAndPerPolicyComments drives the run path
// with a stand-in for the CLI that writes a recorded result.
func TestRunPublishesOutputsSummaryAndPerPolicyComments(t *testing.T) {
	f, _ := newFake(t)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	tmp := t.TempDir()
	out, summ := filepath.Join(tmp, "out"), filepath.Join(tmp, "summary")
	for _, p := range []string{out, summ} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"GITHUB_EVENT_NAME": "schedule", "GITHUB_OUTPUT": out, "GITHUB_STEP_SUMMARY": summ, "RUNNER_TEMP": tmp,
		"INPUT_GITHUB-TOKEN": "t", "INPUT_ROLE-TO-ASSUME": "arn:aws:iam::111122223333:role/patchgate", "INPUT_ALLOWED-ACCOUNT-IDS": "111122223333",
		"INPUT_ROLE-SESSION-NAME": "nightly", "INPUT_ROLE-DURATION-SECONDS": "7200", "INPUT_RETRY-MAX-ATTEMPTS": "3", "INPUT_MASK-AWS-ACCOUNT-ID": "true", "INPUT_HISTORY-STORE": "s3://patch-history/pg"}
	getenv := func(k string) string { return env[k] }
	recorded, err := os.ReadFile("../report/testdata/failed.json")
	if err != nil {
		t.Fatal(err)
	}
	var gotArgs []string
	var stdout strings.Builder
	code := Run(context.Background(), Deps{
		Action: githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(&stdout)), Getenv: getenv, TempDir: tmp,
		Invoke: func(_ context.Context, args []string) int {
			if args[0] == "report" { // the history of one policy
				joined := strings.Join(args, " ")
				for i, a := range args {
					if a == "--out" && strings.Contains(joined, "--history 12 --history-store s3://patch-history/pg --policy ") {
						_ = os.WriteFile(args[i+1], []byte("<!-- patchgate:history -->\nhistory of "+args[i-3]+"\n"), 0o644)
					}
				}
				return 0
			}
			gotArgs = args
			for i, a := range args {
				if a == "--report" {
					_ = os.WriteFile(args[i+1], recorded, 0o644)
				}
			}
			return 1
		},
		Comments: func(token string) (*Comments, error) { return NewComments(token, srv.URL, "o/r") },
	})
	if code != 1 {
		t.Fatalf("exit %d: the run's own code must reach the step", code)
	}
	joined := strings.Join(gotArgs, " ")
	for _, want := range []string{"run --policies policies --report ", "--role-to-assume arn:aws:iam::111122223333:role/patchgate", "--allowed-account-ids 111122223333",
		"--role-session-name nightly", "--role-duration-seconds 7200", "--retry-max-attempts 3", "--mask-aws-account-id", "--history-store s3://patch-history/pg"} {
		if !strings.Contains(joined, want) {
			t.Errorf("args %q lack %q", joined, want)
		}
	}
	outputs, _ := os.ReadFile(out)
	for _, want := range []string{"status<<", "failed", "compliance-percent<<", "report-path<<"} {
		if !strings.Contains(string(outputs), want) {
			t.Errorf("outputs lack %q:\n%s", want, outputs)
		}
	}
	summary, _ := os.ReadFile(summ)
	if !strings.Contains(string(summary), "❌ Failed") {
		t.Errorf("summary:\n%.300s", summary)
	}
	// One tracking issue, one comment per policy, each with its own marker.
	if len(f.issues) != 1 || len(f.comments[100]) != 3 {
		t.Fatalf("issues %v, comments %d", f.issues, len(f.comments[100]))
	}
	for _, c := range f.comments[100] {
		body := c["body"].(string)
		if !strings.HasPrefix(body, "<!-- patchgate:run:") {
			t.Errorf("comment without its policy marker: %.80s", body)
		}
		// Each policy's comment ends with its own history.
		name := strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(body, "\n", 2)[0], "<!-- patchgate:run:"), " -->")
		if !strings.HasSuffix(body, "<!-- patchgate:history -->\nhistory of "+name+"\n") {
			t.Errorf("comment of %q without its history: ...%s", name, body[max(0, len(body)-200):])
		}
	}
}

// TestActionYAMLDeclaresEveryInput keeps action.yml and the inputs the
// code reads in step: an input the code reads but action.yml lacks would
// never be set, and one action.yml offers but the code ignores would lie.
func TestActionYAMLDeclaresEveryInput(t *testing.T) {
	data, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Inputs  map[string]any `yaml:"inputs"`
		Outputs map[string]any `yaml:"outputs"`
		Runs    struct {
			Using string   `yaml:"using"`
			Image string   `yaml:"image"`
			Args  []string `yaml:"args"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile("action.go")
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`GetInput\("([a-z-]+)"\)|\{"([a-z-]+)", &in\.`).FindAllStringSubmatch(string(src), -1) {
		read[m[1]+m[2]] = true
	}
	for name := range doc.Inputs {
		if !read[name] {
			t.Errorf("action.yml input %s is never read", name)
		}
	}
	for name := range read {
		if _, ok := doc.Inputs[name]; !ok {
			t.Errorf("the action reads input %s, which action.yml does not declare", name)
		}
	}
	for _, o := range []string{"status", "compliance-percent", "report-path", "has-changes"} {
		if _, ok := doc.Outputs[o]; !ok {
			t.Errorf("output %s missing", o)
		}
		if !strings.Contains(string(src), `SetOutput("`+o+`"`) {
			t.Errorf("output %s is never set", o)
		}
	}
	// The default branch builds the Dockerfile; release.yml replaces this
	// exact line with the image digest on a version tag.
	if doc.Runs.Using != "docker" || doc.Runs.Image != "Dockerfile" || !strings.Contains(string(data), "\n  image: Dockerfile\n") ||
		len(doc.Runs.Args) != 1 || doc.Runs.Args[0] != "action" {
		t.Errorf("runs: %+v", doc.Runs)
	}
}
