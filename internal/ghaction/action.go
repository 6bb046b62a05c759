// Package ghaction is the GitHub Action's entrypoint: it reads the action's
// inputs and the event, routes to validate, plan, sync or run, invokes the
// same CLI code with the same flags a user would type, and then publishes
// what came out: step outputs, the job summary, sticky comments and
// annotations.
package ghaction

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/patchgate/patchgate/internal/escape"
	"github.com/patchgate/patchgate/internal/exitcode"
	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

// Modes of the action.
const (
	ModeAuto     = "auto"
	ModeValidate = "validate"
	ModePlan     = "plan"
	ModeSync     = "sync"
	ModeRun      = "run"
)

// Inputs are the action's inputs (action.yml).
type Inputs struct {
	Mode, Policies, Policy, RoleToAssume, AWSRegion, Audience, AllowedAccountIDs string
	GitHubToken, ReportIssue, RunID, Base                                        string
	Comment, DryRun, FailOnRisk, ForceWindow                                     bool
	// As configure-aws-credentials names them; the CLI checks the values.
	RoleSessionName, RoleDurationSeconds, RetryMaxAttempts string
	MaskAWSAccountID                                       bool
	HistoryStore                                           string
}

// ReadInputs reads the inputs through go-githubactions (INPUT_<NAME>).
func ReadInputs(a *githubactions.Action) (Inputs, error) {
	in := Inputs{
		Mode: strings.ToLower(a.GetInput("mode")), Policies: a.GetInput("policies"), Policy: a.GetInput("policy"),
		RoleToAssume: a.GetInput("role-to-assume"), AWSRegion: a.GetInput("aws-region"), Audience: a.GetInput("audience"),
		AllowedAccountIDs: a.GetInput("allowed-account-ids"), GitHubToken: a.GetInput("github-token"),
		ReportIssue: a.GetInput("report-issue"), RunID: a.GetInput("run-id"), Base: a.GetInput("base"),
		RoleSessionName: a.GetInput("role-session-name"), RoleDurationSeconds: a.GetInput("role-duration-seconds"),
		RetryMaxAttempts: a.GetInput("retry-max-attempts"), HistoryStore: a.GetInput("history-store"),
	}
	if in.Mode == "" {
		in.Mode = ModeAuto
	}
	if in.Policies == "" {
		in.Policies = "policies"
	}
	if in.ReportIssue == "" {
		in.ReportIssue = "patchgate compliance report"
	}
	var err error
	for _, b := range []struct {
		name string
		dst  *bool
		def  bool
	}{{"comment", &in.Comment, true}, {"dry-run", &in.DryRun, false}, {"fail-on-risk", &in.FailOnRisk, false}, {"force-window", &in.ForceWindow, false}, {"mask-aws-account-id", &in.MaskAWSAccountID, false}} {
		v := strings.TrimSpace(a.GetInput(b.name))
		if v == "" {
			*b.dst = b.def
			continue
		}
		pv, perr := strconv.ParseBool(v)
		if perr != nil {
			err = errors.Join(err, fmt.Errorf("input %s: %q is not true or false", b.name, v))
		}
		*b.dst = pv
	}
	return in, err
}

// Event is the part of the workflow event routing needs.
type Event struct {
	Name          string // GITHUB_EVENT_NAME
	Ref           string // GITHUB_REF
	DefaultBranch string // repository.default_branch from the payload
	PRNumber      int    // pull_request.number
}

// ReadEvent reads the event from the runner's environment and payload.
func ReadEvent(getenv func(string) string) Event {
	ev := Event{Name: getenv("GITHUB_EVENT_NAME"), Ref: getenv("GITHUB_REF")}
	if p := getenv("GITHUB_EVENT_PATH"); p != "" {
		if data, err := os.ReadFile(p); err == nil {
			var payload struct {
				Repository struct {
					DefaultBranch string `json:"default_branch"`
				} `json:"repository"`
				PullRequest struct {
					Number int `json:"number"`
				} `json:"pull_request"`
				Number int `json:"number"`
			}
			if json.Unmarshal(data, &payload) == nil {
				ev.DefaultBranch = payload.Repository.DefaultBranch
				ev.PRNumber = payload.PullRequest.Number
			}
		}
	}
	return ev
}

func (e Event) isPullRequest() bool { return strings.HasPrefix(e.Name, "pull_request") }

// Route decides what the action does. run and sync change AWS and are
// never done for a pull_request event, fork or not: the PR's code is not
// reviewed yet, and a fork's workflow must not reach production.
func Route(mode string, ev Event) (string, error) {
	switch mode {
	case ModeValidate, ModePlan:
		return mode, nil
	case ModeRun, ModeSync:
		if ev.isPullRequest() {
			return "", fmt.Errorf("mode %s is refused on %s events: it changes AWS from unreviewed code; use mode plan on pull requests, and run/sync on push, schedule or workflow_dispatch", mode, ev.Name)
		}
		return mode, nil
	case ModeAuto:
		switch {
		case ev.isPullRequest():
			return ModePlan, nil
		case ev.Name == "push":
			if ev.DefaultBranch != "" && ev.Ref == "refs/heads/"+ev.DefaultBranch {
				return ModeSync, nil
			}
			return ModeValidate, nil // other branches: check, change nothing
		case ev.Name == "schedule" || ev.Name == "workflow_dispatch":
			return ModeRun, nil
		}
		return "", fmt.Errorf("mode auto does not know what to do on %q events: set mode to validate, plan, sync or run", ev.Name)
	}
	return "", fmt.Errorf("input mode %q: use auto, validate, plan, sync or run", mode)
}

// Invoke runs a patchgate subcommand with args (the CLI's Main) and
// returns its exit code.
type Invoke func(ctx context.Context, args []string) int

// Deps are the action's connections to the outside.
type Deps struct {
	Action *githubactions.Action
	Getenv func(string) string
	Invoke Invoke
	// Comments is nil when commenting is off or impossible.
	Comments func(token string) (*Comments, error)
	TempDir  string
}

// Run is the action: route, invoke, publish. It returns the exit code.
func Run(ctx context.Context, d Deps) int {
	a := d.Action
	in, err := ReadInputs(a)
	if err != nil {
		a.Errorf("%v", err)
		return exitcode.Usage
	}
	ev := ReadEvent(d.Getenv)
	mode, err := Route(in.Mode, ev)
	if err != nil {
		a.Errorf("%v", err)
		return exitcode.Usage
	}
	a.Infof("%s", escape.Log(fmt.Sprintf("patchgate: mode %s (input %s, event %s)", mode, escape.Line(in.Mode, 40), escape.Line(ev.Name, 60))))
	if in.GitHubToken != "" {
		a.AddMask(in.GitHubToken)
	}
	awsArgs := func() []string {
		var args []string
		for _, f := range []struct{ flag, val string }{{"--role-to-assume", in.RoleToAssume}, {"--region", in.AWSRegion}, {"--audience", in.Audience}, {"--allowed-account-ids", in.AllowedAccountIDs},
			{"--role-session-name", in.RoleSessionName}, {"--role-duration-seconds", in.RoleDurationSeconds}, {"--retry-max-attempts", in.RetryMaxAttempts}} {
			if f.val != "" {
				args = append(args, f.flag, f.val)
			}
		}
		if in.MaskAWSAccountID {
			args = append(args, "--mask-aws-account-id")
		}
		return args
	}
	dir := d.TempDir
	if dir == "" {
		dir = d.Getenv("RUNNER_TEMP")
	}
	if dir == "" {
		dir = os.TempDir()
	}

	switch mode {
	case ModeValidate:
		a.Group("patchgate validate")
		code := d.Invoke(ctx, []string{"validate", in.Policies})
		a.EndGroup()
		a.SetOutput("status", map[bool]string{true: "passed", false: "failed"}[code == 0])
		return code

	case ModePlan:
		md, js := filepath.Join(dir, "patchgate-plan.md"), filepath.Join(dir, "patchgate-plan.json")
		args := []string{"plan", "--policies", in.Policies, "--out", md, "--json", js, "--detailed-exitcode"}
		if in.Base != "" {
			args = append(args, "--base", in.Base)
		}
		if in.FailOnRisk {
			args = append(args, "--fail-on-risk")
		}
		args = append(args, awsArgs()...)
		a.Group("patchgate plan")
		code := d.Invoke(ctx, args)
		a.EndGroup()
		var p plan.Plan
		data, err := os.ReadFile(js)
		if err != nil || json.Unmarshal(data, &p) != nil {
			a.Errorf("patchgate plan produced no plan (exit %d); see the log above", code)
			a.SetOutput("status", "error")
			return max(code, 2)
		}
		a.SetOutput("has-changes", strconv.FormatBool(p.HasChanges()))
		a.SetOutput("report-path", js)
		status := "clean"
		if p.HasChanges() {
			status = "changes"
		}
		if code == 1 {
			status = "failed"
		}
		a.SetOutput("status", status)
		for _, r := range p.Risks() {
			a.Warningf("%s: %s", escape.Line(r.Check, 60), escape.Line(r.Message, 500))
		}
		a.AddStepSummary(report.Plan(&p, report.Summary, runURL(d.Getenv)))
		if in.Comment && ev.PRNumber > 0 {
			comment(ctx, d, in, func(c *Comments) error {
				_, err := c.Upsert(ctx, ev.PRNumber, report.PlanMarker(), report.Plan(&p, report.Comment, runURL(d.Getenv)))
				return err
			})
		}
		if code == 6 { // changes: not a failure of the step
			return 0
		}
		return code

	case ModeSync:
		args := []string{"sync", "--policies", in.Policies}
		if in.DryRun {
			args = append(args, "--dry-run")
		}
		if in.RunID != "" {
			args = append(args, "--run-id", in.RunID)
		}
		a.Group("patchgate sync")
		code := d.Invoke(ctx, append(args, awsArgs()...))
		a.EndGroup()
		a.SetOutput("status", map[bool]string{true: "passed", false: "failed"}[code == 0])
		return code
	}

	// run
	js := filepath.Join(dir, "patchgate-result.json")
	args := []string{"run", "--policies", in.Policies, "--report", js}
	if in.Policy != "" {
		args = append(args, "--policy", in.Policy)
	}
	if in.DryRun {
		args = append(args, "--dry-run")
	}
	if in.ForceWindow {
		args = append(args, "--force-window")
	}
	if in.RunID != "" {
		args = append(args, "--run-id", in.RunID)
	}
	if in.HistoryStore != "" {
		args = append(args, "--history-store", in.HistoryStore)
	}
	// No group around the run: its progress lines must show while it
	// works, and it groups each policy's result itself.
	code := d.Invoke(ctx, append(args, awsArgs()...))
	data, err := os.ReadFile(js)
	var r result.Run
	if err != nil || json.Unmarshal(data, &r) != nil {
		a.Errorf("patchgate run wrote no result (exit %d); see the log above", code)
		a.SetOutput("status", "error")
		return max(code, 2)
	}
	a.SetOutput("status", string(r.Status))
	a.SetOutput("report-path", js)
	if pct, ok := report.CompliancePercent(&r); ok {
		a.SetOutput("compliance-percent", strconv.FormatFloat(pct, 'f', 1, 64))
	}
	a.AddStepSummary(report.Run(&r, report.Summary))
	if in.Comment && !r.DryRun {
		comment(ctx, d, in, func(c *Comments) error {
			n, err := c.TrackingIssue(ctx, in.ReportIssue)
			if err != nil {
				return err
			}
			for _, p := range r.Policies {
				one := r
				one.Policies = []result.Policy{p}
				body := report.RunComment(&one, p.Name)
				if h := policyHistory(ctx, d, in, dir, p.Name, awsArgs()); h != "" && len(body)+len(h)+1 <= report.Comment.Limit() {
					body += "\n" + h
				}
				if _, err := c.Upsert(ctx, n, report.RunMarker(p.Name), body); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return code
}

// policyHistory is the policy's last 12 runs rendered from the history
// store ("" without a store or when it cannot be read: the comment goes
// out without its trend, and the log says why).
func policyHistory(ctx context.Context, d Deps, in Inputs, dir, policy string, aws []string) string {
	if in.HistoryStore == "" {
		return ""
	}
	out := filepath.Join(dir, "patchgate-history-"+policy+".md")
	args := append([]string{"report", "--history", "12", "--history-store", in.HistoryStore, "--policy", policy, "--format", "comment", "--out", out}, aws...)
	if code := d.Invoke(ctx, args); code != 0 {
		d.Action.Warningf("the history of %s could not be read (exit %d); the comment has this run only", policy, code)
		return ""
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return ""
	}
	return string(data)
}

// comment posts through the GitHub API; failure to comment never fails
// the step, since the job summary has the same report.
func comment(ctx context.Context, d Deps, in Inputs, post func(*Comments) error) {
	if in.GitHubToken == "" || d.Comments == nil {
		d.Action.Warningf("no github-token: the report is in the job summary only")
		return
	}
	c, err := d.Comments(in.GitHubToken)
	if err == nil {
		c.Note = func(msg string) { d.Action.Infof("%s", escape.Log("patchgate: "+msg)) }
		err = post(c)
	}
	if err == nil {
		return
	}
	// The warning says what and why in a line; the library's text (API URLs,
	// response bodies) goes to the debug log only.
	d.Action.Debugf("%s", escape.Line(err.Error(), 2000))
	var e *Error
	switch {
	case errors.Is(err, ErrNoAccess):
		d.Action.Warningf("could not comment: the GitHub token may not write here (pull requests from forks get a read-only token). The report is in the job summary.")
	case errors.Is(err, ErrRateLimited):
		d.Action.Warningf("could not comment: GitHub's rate limit did not reset within the wait budget. The report is in the job summary.")
	case errors.As(err, &e):
		d.Action.Warningf("could not comment (%s). The report is in the job summary.", escape.Line(e.Brief(), 200))
	default:
		d.Action.Warningf("could not comment (%s). The report is in the job summary.", escape.Line(err.Error(), 200))
	}
}

func runURL(getenv func(string) string) string {
	if getenv("GITHUB_RUN_ID") == "" || getenv("GITHUB_REPOSITORY") == "" {
		return ""
	}
	server := getenv("GITHUB_SERVER_URL")
	if server == "" {
		server = "https://github.com"
	}
	return fmt.Sprintf("%s/%s/actions/runs/%s", server, getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID"))
}
