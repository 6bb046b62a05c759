package ghaction

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/patchgate/patchgate/internal/clock"
)

// ErrNoAccess is returned when the token may not comment (fork pull
// requests get a read-only token): the caller falls back to the job summary.
var ErrNoAccess = errors.New("the GitHub token may not comment here")

// Comments keeps patchgate's sticky comments: one per marker per issue or
// pull request, edited in place on every run.
type Comments struct {
	GH          *github.Client
	Owner, Repo string
	Clock       clock.Clock
	// MaxWait bounds one wait for a rate limit's reset.
	MaxWait time.Duration
}

// NewComments builds a client for the repository "owner/name" on the API at
// apiURL (GITHUB_API_URL; "" = api.github.com).
func NewComments(token, apiURL, repository string) (*Comments, error) {
	owner, repo, ok := strings.Cut(repository, "/")
	if !ok || owner == "" || repo == "" {
		return nil, fmt.Errorf("GITHUB_REPOSITORY %q is not owner/name", repository)
	}
	gh := github.NewClient(nil).WithAuthToken(token)
	if apiURL != "" && apiURL != "https://api.github.com" {
		u, err := url.Parse(strings.TrimSuffix(apiURL, "/") + "/")
		if err != nil {
			return nil, fmt.Errorf("GITHUB_API_URL %q: %w", apiURL, err)
		}
		gh.BaseURL = u
	}
	return &Comments{GH: gh, Owner: owner, Repo: repo, Clock: clock.Real{}, MaxWait: 10 * time.Minute}, nil
}

// retry runs call, waiting out rate limits (primary: until the reset;
// secondary: Retry-After, else a minute) a few times.
func (c *Comments) retry(ctx context.Context, what string, call func() (*github.Response, error)) error {
	for attempt := 0; ; attempt++ {
		resp, err := call()
		if err == nil {
			return nil
		}
		var wait time.Duration
		var rl *github.RateLimitError
		var abuse *github.AbuseRateLimitError
		switch {
		case errors.As(err, &rl):
			wait = time.Until(rl.Rate.Reset.Time) + time.Second
		case errors.As(err, &abuse):
			wait = abuse.GetRetryAfter()
			if wait <= 0 {
				wait = time.Minute
			}
		default:
			if resp != nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound) {
				return fmt.Errorf("%s: %w (HTTP %d: %v)", what, ErrNoAccess, resp.StatusCode, err)
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		if attempt >= 3 || wait > c.MaxWait {
			return fmt.Errorf("%s: rate limited, and the reset is too far off (%s): %w", what, wait.Round(time.Second), err)
		}
		if wait < 0 {
			wait = time.Second
		}
		if err := c.Clock.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// Upsert finds the comment carrying marker on issue (or PR) number and
// edits it to body, or creates it. It returns the comment's URL.
func (c *Comments) Upsert(ctx context.Context, number int, marker, body string) (string, error) {
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	var found *github.IssueComment
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for found == nil {
		var page []*github.IssueComment
		var resp *github.Response
		err := c.retry(ctx, fmt.Sprintf("listing the comments of #%d", number), func() (*github.Response, error) {
			var err error
			page, resp, err = c.GH.Issues.ListComments(ctx, c.Owner, c.Repo, number, opt)
			return resp, err
		})
		if err != nil {
			return "", err
		}
		for _, cm := range page {
			if strings.Contains(cm.GetBody(), marker) {
				found = cm
				break
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	var out *github.IssueComment
	if found != nil {
		if found.GetBody() == body {
			return found.GetHTMLURL(), nil
		}
		err := c.retry(ctx, fmt.Sprintf("editing comment %d", found.GetID()), func() (*github.Response, error) {
			var resp *github.Response
			var err error
			out, resp, err = c.GH.Issues.EditComment(ctx, c.Owner, c.Repo, found.GetID(), &github.IssueComment{Body: github.String(body)})
			return resp, err
		})
		if err != nil {
			return "", err
		}
		return out.GetHTMLURL(), nil
	}
	err := c.retry(ctx, fmt.Sprintf("commenting on #%d", number), func() (*github.Response, error) {
		var resp *github.Response
		var err error
		out, resp, err = c.GH.Issues.CreateComment(ctx, c.Owner, c.Repo, number, &github.IssueComment{Body: github.String(body)})
		return resp, err
	})
	if err != nil {
		return "", err
	}
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
		err := c.retry(ctx, "listing issues", func() (*github.Response, error) {
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
	err := c.retry(ctx, "creating the tracking issue", func() (*github.Response, error) {
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
