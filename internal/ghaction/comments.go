package ghaction

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"

	"github.com/patchgate/patchgate/internal/clock"
)

// ErrNoAccess is returned when the token may not comment (fork pull
// requests get a read-only token): the caller falls back to the job summary.
var ErrNoAccess = errors.New("the GitHub token may not comment here")

// ErrRateLimited is returned when GitHub's rate limit did not reset within
// the wait budget.
var ErrRateLimited = errors.New("GitHub's rate limit did not reset in time")

// ActionsBot is the author of comments made with the Actions token.
const ActionsBot = "github-actions[bot]"

// maxCommentChars is GitHub's limit on a comment body, in characters.
const maxCommentChars = 65536

// Error is a failed GitHub call: what patchgate was doing, the HTTP status
// (0 when none came back), the kind (ErrNoAccess, ErrRateLimited or nil),
// and the library's error.
type Error struct {
	What   string
	Status int
	Kind   error
	Err    error
}

func (e *Error) Error() string { return e.Brief() + ": " + e.Err.Error() }
func (e *Error) Unwrap() []error {
	if e.Kind != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Err}
}

// Brief says what failed without the library's text (which carries API
// URLs and response bodies): for a warning a reader acts on.
func (e *Error) Brief() string {
	switch {
	case e.Kind != nil:
		return e.What + ": " + e.Kind.Error()
	case e.Status != 0:
		return fmt.Sprintf("%s: GitHub answered HTTP %d", e.What, e.Status)
	}
	return e.What + ": GitHub could not be reached"
}

// Comments keeps patchgate's sticky comments: one per marker per issue or
// pull request, edited in place on every run. Only comments written by the
// token's own identity are ever edited.
type Comments struct {
	GH          *github.Client
	Owner, Repo string
	Clock       clock.Clock
	// Budget bounds the time spent waiting out rate limits, over every
	// call this Comments makes.
	Budget time.Duration
	// Note is told what patchgate noticed and left alone (foreign comments
	// carrying its marker); nil = not told.
	Note func(msg string)

	mu     sync.Mutex
	waited time.Duration
	login  string // the token's identity, resolved once
	// listed is, per issue, what the last listing of its comments found
	// (see Upsert).
	listed map[int]*listing
}

// listing is what one listing of an issue's comments found, by marker:
// the token's own comment (the first), and how many by others carry it.
type listing struct {
	own     map[string]*github.IssueComment
	foreign map[string]int
}

// maxMarker bounds the first lines a listing keeps: patchgate's markers
// are far shorter, and a comment's first line may be 65,536 characters.
const maxMarker = 512

// NewComments builds a client for the repository "owner/name" on the API at
// apiURL (GITHUB_API_URL; "" = api.github.com). Rate limits (primary and
// secondary, 403 or 429) are waited out below go-github, within Budget.
func NewComments(token, apiURL, repository string) (*Comments, error) {
	owner, repo, ok := strings.Cut(repository, "/")
	if !ok || owner == "" || repo == "" {
		return nil, fmt.Errorf("GITHUB_REPOSITORY %q is not owner/name", repository)
	}
	c := &Comments{Owner: owner, Repo: repo, Clock: clock.Real{}, Budget: 10 * time.Minute}
	gh := github.NewClient(&http.Client{Transport: &rateLimitTransport{base: http.DefaultTransport, c: c}}).WithAuthToken(token)
	if apiURL != "" && apiURL != "https://api.github.com" {
		u, err := url.Parse(strings.TrimSuffix(apiURL, "/") + "/")
		if err != nil {
			return nil, fmt.Errorf("GITHUB_API_URL %q: %w", apiURL, err)
		}
		gh.BaseURL = u
	}
	c.GH = gh
	return c, nil
}

// spend takes d from the wait budget; false when it does not fit.
func (c *Comments) spend(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waited+d > c.Budget {
		return false
	}
	c.waited += d
	return true
}

// rateLimitTransport waits out GitHub's rate limits and repeats the
// request: go-github v60 knows only 403 as a rate limit, while secondary
// limits also answer 429; and waiting here, on the injected clock, keeps
// go-github's own "still limited" bookkeeping (on the wall clock) out of it.
type rateLimitTransport struct {
	base http.RoundTripper
	c    *Comments
}

// maxRateLimitRetries bounds the repeats of one request.
const maxRateLimitRetries = 5

func (t *rateLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 {
			r = req.Clone(req.Context())
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		resp, err := t.base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		wait, limited := rateLimitWait(resp, t.c.Clock.Now(), attempt)
		if !limited || attempt >= maxRateLimitRetries || (req.Body != nil && req.GetBody == nil) || !t.c.spend(wait) {
			return resp, nil // go-github reports it
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := t.c.Clock.Sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// rateLimitWait tells whether resp is a rate limit and how long to wait:
// Retry-After (seconds or a date) first, then the primary limit's
// x-ratelimit-reset, then a minute doubling per attempt for a secondary
// limit that names no time (GitHub's advice). A 403 that is none of these
// (a read-only token) is not a rate limit.
func rateLimitWait(resp *http.Response, now time.Time, attempt int) (time.Duration, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && s >= 0 {
			return max(time.Duration(s)*time.Second, time.Second), true
		}
		if at, err := http.ParseTime(ra); err == nil {
			return max(at.Sub(now), time.Second), true
		}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if s, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return max(time.Unix(s, 0).Sub(now), 0) + time.Second, true
		}
	}
	secondary := resp.StatusCode == http.StatusTooManyRequests
	if !secondary && resp.Body != nil {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(data))
		secondary = bytes.Contains(bytes.ToLower(data), []byte("secondary rate limit"))
	}
	if !secondary {
		return 0, false
	}
	return time.Minute << min(attempt, 4), true
}

// call runs one API call and classifies its failure.
func (c *Comments) call(ctx context.Context, what string, do func() (*github.Response, error)) error {
	resp, err := do()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	e := &Error{What: what, Err: err}
	if resp != nil && resp.Response != nil {
		e.Status = resp.StatusCode
	}
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	switch {
	case errors.As(err, &rl), errors.As(err, &abuse), e.Status == http.StatusTooManyRequests:
		e.Kind = ErrRateLimited
	case e.Status == http.StatusForbidden, e.Status == http.StatusNotFound:
		e.Kind = ErrNoAccess
	}
	return e
}

// Identity is the login comments made with the token carry, resolved once:
// GET /user for a personal or user token; for an installation token (the
// Actions token or a GitHub App's), which may not read /user, GraphQL's
// viewer; and when that is not answered either, the Actions token's bot.
func (c *Comments) Identity(ctx context.Context) (string, error) {
	c.mu.Lock()
	login := c.login
	c.mu.Unlock()
	if login != "" {
		return login, nil
	}
	var user *github.User
	err := c.call(ctx, "reading the token's identity", func() (*github.Response, error) {
		var resp *github.Response
		var err error
		user, resp, err = c.GH.Users.Get(ctx, "")
		return resp, err
	})
	var e *Error
	switch {
	case err == nil && user.GetLogin() != "":
		login = user.GetLogin()
	case errors.Is(err, ErrRateLimited): // not an answer about the token: guessing could make a second comment
		return "", err
	case err == nil || errors.As(err, &e) && (e.Status == http.StatusForbidden || e.Status == http.StatusUnauthorized || e.Status == http.StatusNotFound):
		login = c.viewer(ctx)
		if login == "" {
			login = ActionsBot
		}
	default:
		return "", err
	}
	c.mu.Lock()
	c.login = login
	c.mu.Unlock()
	return login, nil
}

// viewer asks GraphQL for the token's login; "" when it cannot tell.
func (c *Comments) viewer(ctx context.Context) string {
	path := "graphql"
	if strings.HasSuffix(c.GH.BaseURL.Path, "/api/v3/") { // GitHub Enterprise Server
		path = "../graphql"
	}
	req, err := c.GH.NewRequest(http.MethodPost, path, map[string]string{"query": "query { viewer { login } }"})
	if err != nil {
		return ""
	}
	var out struct {
		Data struct {
			Viewer struct {
				Login string `json:"login"`
			} `json:"viewer"`
		} `json:"data"`
	}
	if _, err := c.GH.Do(ctx, req, &out); err != nil {
		return ""
	}
	return out.Data.Viewer.Login
}

// firstLine is s up to its first line break.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSuffix(line, "\r")
}

// Upsert finds the comment that is patchgate's for marker on issue (or PR)
// number and edits it to body, or creates it. It returns the comment's URL.
// A comment is patchgate's when its first line is exactly marker and its
// author is the token's identity: a comment anyone else wrote, even with
// the marker pasted in, is never edited (it is noted and left alone).
func (c *Comments) Upsert(ctx context.Context, number int, marker, body string) (string, error) {
	if firstLine(body) != marker {
		body = marker + "\n" + body
	}
	if n := utf8.RuneCountInString(body); n > maxCommentChars {
		return "", fmt.Errorf("the comment for #%d is %d characters, over GitHub's %d (the report renderer should have fitted it): not posted", number, n, maxCommentChars)
	}
	me, err := c.Identity(ctx)
	if err != nil {
		return "", err
	}
	// A comment found by an earlier listing (of this client: one run) is
	// edited without listing again: a run posts a comment per policy, and
	// listing the issue for each made the calls grow with the square of
	// the policies (1,000 policies: 5,500 listing calls a run). Only an
	// edit is taken from it; whether a comment exists before one is
	// created is always asked afresh, so two runs never both create one.
	if cm, foreign := c.listedComment(number, marker); cm != nil {
		url, err := c.edit(ctx, number, marker, cm, body)
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusNotFound {
			c.noteForeign(number, foreign, me)
			return url, err
		}
		// Deleted since it was listed: look again.
	}
	found, foreign, err := c.find(ctx, number, marker, me)
	if err != nil {
		return "", err
	}
	c.noteForeign(number, foreign, me)
	if found != nil {
		return c.edit(ctx, number, marker, found, body)
	}
	var out *github.IssueComment
	err = c.call(ctx, fmt.Sprintf("commenting on #%d", number), func() (*github.Response, error) {
		var resp *github.Response
		var err error
		out, resp, err = c.GH.Issues.CreateComment(ctx, c.Owner, c.Repo, number, &github.IssueComment{Body: github.String(body)})
		return resp, err
	})
	if err != nil {
		return "", err
	}
	c.remember(number, marker, out)
	return out.GetHTMLURL(), nil
}

// find lists the comments of issue number until it meets the token's own
// comment for marker (nil when there is none), counting the comments by
// others that carry marker. Every page read is kept for later Upserts.
func (c *Comments) find(ctx context.Context, number int, marker, me string) (found *github.IssueComment, foreign int, err error) {
	l := &listing{own: map[string]*github.IssueComment{}, foreign: map[string]int{}}
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for found == nil {
		var page []*github.IssueComment
		var resp *github.Response
		err := c.call(ctx, fmt.Sprintf("listing the comments of #%d", number), func() (*github.Response, error) {
			var err error
			page, resp, err = c.GH.Issues.ListComments(ctx, c.Owner, c.Repo, number, opt)
			return resp, err
		})
		if err != nil {
			return nil, 0, err
		}
		for _, cm := range page {
			first := firstLine(cm.GetBody())
			if first != marker && (len(first) > maxMarker || !strings.HasPrefix(first, "<!--")) {
				continue
			}
			if !strings.EqualFold(cm.GetUser().GetLogin(), me) {
				l.foreign[first]++
				continue
			}
			if l.own[first] == nil {
				l.own[first] = cm
			}
		}
		found = l.own[marker]
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	c.mu.Lock()
	if c.listed == nil {
		c.listed = map[int]*listing{}
	}
	c.listed[number] = l
	c.mu.Unlock()
	return found, l.foreign[marker], nil
}

// listedComment is the token's comment for marker on issue number as the
// last listing found it, and how many by others carried marker then.
func (c *Comments) listedComment(number int, marker string) (*github.IssueComment, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.listed[number]; l != nil {
		return l.own[marker], l.foreign[marker]
	}
	return nil, 0
}

// remember records cm as the token's comment for marker on issue number.
func (c *Comments) remember(number int, marker string, cm *github.IssueComment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.listed[number]; l != nil && cm != nil {
		l.own[marker] = cm
	}
}

func (c *Comments) noteForeign(number, foreign int, me string) {
	if foreign > 0 && c.Note != nil {
		c.Note(fmt.Sprintf("#%d: %d comment(s) by someone other than %s start with patchgate's marker; they are left untouched", number, foreign, me))
	}
}

// edit sets the token's comment cm to body, unless it holds body already.
func (c *Comments) edit(ctx context.Context, number int, marker string, cm *github.IssueComment, body string) (string, error) {
	if cm.GetBody() == body {
		return cm.GetHTMLURL(), nil
	}
	var out *github.IssueComment
	err := c.call(ctx, fmt.Sprintf("editing comment %d", cm.GetID()), func() (*github.Response, error) {
		var resp *github.Response
		var err error
		out, resp, err = c.GH.Issues.EditComment(ctx, c.Owner, c.Repo, cm.GetID(), &github.IssueComment{Body: github.String(body)})
		return resp, err
	})
	if err != nil {
		return "", err
	}
	c.remember(number, marker, out)
	return out.GetHTMLURL(), nil
}

// TrackingLabel marks the issues patchgate reports scheduled runs on.
const TrackingLabel = "patchgate"

// TrackingIssue returns the number of the issue named by ref: a number, or
// the title of an open issue labelled TrackingLabel, created when absent.
func (c *Comments) TrackingIssue(ctx context.Context, ref string) (int, error) {
	if n, err := strconv.Atoi(strings.TrimPrefix(ref, "#")); err == nil && n > 0 {
		return n, nil
	}
	opt := &github.IssueListByRepoOptions{State: "open", Labels: []string{TrackingLabel}, ListOptions: github.ListOptions{PerPage: 100}}
	for {
		var page []*github.Issue
		var resp *github.Response
		err := c.call(ctx, "listing issues", func() (*github.Response, error) {
			var err error
			page, resp, err = c.GH.Issues.ListByRepo(ctx, c.Owner, c.Repo, opt)
			return resp, err
		})
		if err != nil {
			return 0, err
		}
		for _, is := range page {
			if is.GetTitle() == ref && !is.IsPullRequest() {
				return is.GetNumber(), nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	var is *github.Issue
	err := c.call(ctx, "creating the tracking issue", func() (*github.Response, error) {
		var resp *github.Response
		var err error
		is, resp, err = c.GH.Issues.Create(ctx, c.Owner, c.Repo, &github.IssueRequest{Title: github.String(ref), Labels: &[]string{TrackingLabel},
			Body: github.String("patchgate posts the report of each scheduled patch run here, one comment per policy, updated in place.")})
		return resp, err
	})
	if err != nil {
		return 0, err
	}
	return is.GetNumber(), nil
}
