package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/sethvargo/go-githubactions"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/awsconnect"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/escape"
	"github.com/patchgate/patchgate/internal/exitcode"
	"github.com/patchgate/patchgate/internal/gate"
	"github.com/patchgate/patchgate/internal/history"
	"github.com/patchgate/patchgate/internal/metrics"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/progress"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
	"github.com/patchgate/patchgate/internal/rollout"
	suggestpkg "github.com/patchgate/patchgate/internal/suggest"
)

type runOpts struct {
	aws         awsFlags
	policies    string
	policy      string
	runID       string
	runURL      string
	parallel    int
	dryRun      bool
	forceWindow bool
	report      string
	format      string
	quiet       bool
	history     string
}

// runCommand is `patchgate run`.
func runCommand() *Command {
	return &Command{
		Name:    "run",
		Summary: "Patch: staging ring, gates, then production waves",
		Usage: "patchgate run [--policy NAME,...] [--dry-run] [--report FILE] [flags]\n\n" +
			"Runs the policies that are due (or those named with --policy) in every account and region they list,\n" +
			"phase by phase, halting a policy at the first gate that does not pass.\n\n" +
			"Exit codes: 0 passed (or dry run), 1 invalid policies, a gate failed or a phase halted, 2 usage/configuration/AWS error,\n" +
			"3 inconclusive (evidence missing), 4 cancelled, 5 refused (window, freeze, change calendar or lock).",
		Flags: func(fs *flag.FlagSet) any {
			o := &runOpts{}
			o.aws.register(fs)
			fs.StringVar(&o.policies, "policies", "policies", "directory (or file) of policies")
			fs.StringVar(&o.policy, "policy", "", "comma-separated policy names to run (default: every policy that is due)")
			fs.StringVar(&o.runID, "run-id", "", "run id; a re-run with the same id resumes without sending anything twice (default GITHUB_RUN_ID)")
			fs.StringVar(&o.runURL, "run-url", "", "link recorded in locks and reports (default: the GitHub Actions run)")
			fs.IntVar(&o.parallel, "parallel", 16, "account x region targets patched at once (each has its own SSM rate limits)")
			fs.BoolVar(&o.dryRun, "dry-run", false, "do everything up to sending, and report what would be sent")
			fs.BoolVar(&o.forceWindow, "force-window", false, "patch outside the schedule, in a freeze or with a closed change calendar (recorded in the report)")
			fs.StringVar(&o.report, "report", "", "write the JSON result to this file")
			fs.StringVar(&o.format, "format", "text", "what to print: text or json")
			fs.StringVar(&o.history, "history-store", "", "keep the JSON result in S3 (s3://BUCKET/PREFIX) for report --history and the tracking issue's trend")
			fs.BoolVar(&o.quiet, "quiet", false, "no progress lines or info logs on standard error (the result is still printed)")
			return o
		},
		Run: runRun,
	}
}

func runRun(ctx context.Context, env Env, opts any, args []string) int {
	o := opts.(*runOpts)
	if len(args) > 0 {
		fmt.Fprintf(env.Stderr, "patchgate run: unexpected arguments %v; name policies with --policy\n", args)
		return ExitUsage
	}
	if o.history != "" {
		if _, _, err := history.ParseURL(o.history); err != nil {
			fmt.Fprintf(env.Stderr, "patchgate run: --history-store: %v\n", err)
			return ExitUsage
		}
	}
	selected, explicit, code := selectPolicies(env, "run", o.policies, o.policy)
	if code != ExitOK {
		return code
	}
	runID, runURL := runIdentity(env, o.runID, o.runURL)
	level := slog.LevelInfo
	if o.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	masker := maskerFor(env)
	session := o.aws.session("patchgate-" + runID)
	base, caller, err := o.aws.connect(ctx, env, session, masker)
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate run: %v\n", err)
		return exitcode.Usage
	}
	factory := &awsapi.Factory{Base: base, SessionName: session, Masker: o.aws.masker(masker)}
	// Progress goes to standard error, so stdout stays the result alone
	// (--format json pipes cleanly); --quiet drops it.
	rep, stopProgress := startProgress(ctx, env, o.quiet, nil, progress.DefaultInterval)
	eng := rollout.New(rollout.Options{
		RunID: runID, RunURL: runURL, DryRun: o.dryRun, ForceWindow: o.forceWindow, Explicit: explicit, Parallel: o.parallel,
		Connect: awsconnect.Rollout(factory, awsconnect.Evidence(nil)), Logger: log,
		Store: awsconnect.Store(factory), Notifier: awsconnect.Notify(factory), Commit: os.Getenv("GITHUB_SHA"),
		OnProgress: func(r *result.Run) { writeReport(o.report, r, log) },
		Progress:   rep,
	})
	r := eng.Run(ctx, selected)
	stopProgress()
	nameCallerAccount(r, caller.Account)
	if !o.dryRun {
		publishMetrics(factory, r, selected, log)
		if o.history != "" {
			recordHistory(context.WithoutCancel(ctx), env, base, o.history, o.aws.endpoint, r, log)
		}
	}
	writeReport(o.report, r, log)
	printRunActions(env, r, o.format)
	return exitcode.ForStatus(r.Status)
}

// startProgress starts the live progress lines on standard error: the
// engine reports to the returned Progress (nil when quiet), stop ends the
// ticker that keeps in-flight phases speaking.
func startProgress(ctx context.Context, env Env, quiet bool, clk clock.Clock, every time.Duration) (rollout.Progress, func()) {
	if quiet {
		return nil, func() {}
	}
	rep := progress.New(env.Stderr, clk, every)
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rep.Run(pctx)
	}()
	return rep, func() {
		cancel()
		<-done
	}
}

// nameCallerAccount fills in the account of targets a policy left to the
// credentials' own account (no accounts list), so that a report says
// "111122223333/eu-west-1", not "/eu-west-1".
func nameCallerAccount(r *result.Run, account string) {
	for i := range r.Policies {
		for j := range r.Policies[i].Targets {
			if t := &r.Policies[i].Targets[j]; t.AccountID == "" {
				t.AccountID = account
			}
		}
	}
}

// selectPolicies loads and validates the policies for the command cmd; a
// set with problems is never run (exit 1, as validate exits), and a
// directory with no policies is a usage error (exit 2): a misconfigured
// scheduled job must not go green having patched nothing.
func selectPolicies(env Env, cmd, dir, names string) ([]*policy.Policy, bool, int) {
	set, err := loadPolicies([]string{dir})
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate %s: %v\n", cmd, err)
		return nil, false, ExitUsage
	}
	return choosePolicies(env, cmd, dir, set, names)
}

func choosePolicies(env Env, cmd, dir string, set *policy.Set, names string) ([]*policy.Policy, bool, int) {
	if len(set.Files) == 0 {
		fmt.Fprintf(env.Stderr, "patchgate %s: no *.yaml or *.yml policy files in %s; point --policies at your policies\n", cmd, dir)
		return nil, false, ExitUsage
	}
	if len(set.Problems) > 0 {
		for _, p := range set.Problems {
			fmt.Fprintln(env.Stderr, p.String())
		}
		fmt.Fprintf(env.Stderr, "patchgate %s: %s; fix them before running (patchgate validate %s)\n", cmd, summaryLine(set), dir)
		return nil, false, ExitFailed
	}
	if names == "" {
		return set.Policies, false, ExitOK
	}
	known := make([]string, len(set.Policies))
	for i, p := range set.Policies {
		known[i] = p.Metadata.Name
	}
	var out []*policy.Policy
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		p := set.Lookup(n)
		if p == nil {
			fmt.Fprintf(env.Stderr, "patchgate %s: no policy named %q in %s%s; the policies are: %s\n",
				cmd, n, dir, suggestpkg.DidYouMean(n, known, 2), strings.Join(known, ", "))
			return nil, false, ExitUsage
		}
		out = append(out, p)
	}
	return out, true, ExitOK
}

// runIdentity defaults the run id and URL from GitHub Actions. The id is
// GITHUB_RUN_ID alone (not the attempt), so "Re-run jobs" resumes.
func runIdentity(env Env, id, url string) (string, string) {
	if id == "" {
		id = env.Getenv("GITHUB_RUN_ID")
	}
	if id == "" {
		id = "local-" + time.Now().UTC().Format("20060102T150405Z")
	}
	if url == "" && env.Getenv("GITHUB_RUN_ID") != "" {
		server := env.Getenv("GITHUB_SERVER_URL")
		if server == "" {
			server = "https://github.com"
		}
		url = fmt.Sprintf("%s/%s/actions/runs/%s", server, env.Getenv("GITHUB_REPOSITORY"), env.Getenv("GITHUB_RUN_ID"))
	}
	return id, url
}

func writeReport(path string, r *result.Run, log *slog.Logger) {
	if path == "" {
		return
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = writeFileAtomic(path, append(data, '\n'))
	}
	if err != nil {
		log.Error("could not write the report", "path", path, "err", err)
	}
}

func publishMetrics(f *awsapi.Factory, r *result.Run, ps []*policy.Policy, log *slog.Logger) {
	ns := map[string]string{}
	roles := map[string]string{}
	for _, p := range ps {
		if p.Spec.Reporting.CloudwatchNamespace != "" {
			ns[p.Metadata.Name] = p.Spec.Reporting.CloudwatchNamespace
		}
		for _, a := range p.Spec.Accounts {
			roles[a.ID] = a.RoleArn
		}
	}
	if len(ns) == 0 {
		return
	}
	errs := metrics.Publish(context.Background(), r, ns, func(ctx context.Context, account, region string) (metrics.PutMetricData, error) {
		cfg, _, err := f.Config(ctx, account, roles[account], region)
		if err != nil {
			return nil, err
		}
		return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.RetryMaxAttempts = 3 }), nil
	})
	for _, err := range errs {
		log.Warn("metrics not published", "err", err)
	}
}

// printRun prints the result: a compact text summary, or the JSON document.
func printRun(w io.Writer, r *result.Run, format string) {
	printRunGrouped(w, r, format, func(_ result.Policy, body func()) { body() })
}

// printRunGrouped is printRun with, in GitHub Actions, each policy's
// lines in a collapsible ::group:: of its own.
func printRunGrouped(w io.Writer, r *result.Run, format string, around func(p result.Policy, body func())) {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		return
	}
	fmt.Fprintf(w, "patchgate run %s: %s\n%s\n", r.RunID, strings.ToUpper(string(r.Status)), r.Summary)
	if line := report.ComplianceText(r); line != "" {
		fmt.Fprintln(w, line)
	}
	if r.ForcedWindow {
		fmt.Fprintln(w, "NOTE: --force-window was used: schedule, freezes and change calendars were overridden.")
	}
	for _, p := range r.Policies {
		fmt.Fprintln(w)
		around(p, func() { printPolicy(w, p) })
	}
}

// printPolicy is one policy's part of the text output.
func printPolicy(w io.Writer, p result.Policy) {
	{
		fmt.Fprintf(w, "policy %s: %s", p.Name, p.Status)
		if p.Reason != "" {
			fmt.Fprintf(w, " (%s)", oneLine(p.Reason))
		}
		fmt.Fprintln(w)
		for _, t := range p.Targets {
			fmt.Fprintf(w, "  %s/%s: %s\n", t.AccountID, t.Region, t.Status)
			if t.Status == result.StatusRefused || t.Status == result.StatusError {
				fmt.Fprintf(w, "    %s\n", t.Reason)
			}
			for _, ph := range t.Phases {
				c := ph.Counts
				if ph.Status == result.StatusHalted && c.Targeted == 0 {
					// Never started: its instances were not even selected.
					fmt.Fprintf(w, "    %-12s %-12s not started, nothing sent\n", ph.Name, ph.Status)
				} else {
					fmt.Fprintf(w, "    %-12s %-12s targeted %d, succeeded %d, failed %d, timed out %d, offline %d, skipped %d, inconclusive %d",
						ph.Name, ph.Status, c.Targeted, c.Succeeded, c.Failed, c.TimedOut, c.Offline, c.Skipped, c.Inconclusive)
					if held := progress.HeldBack(ph); held > 0 {
						fmt.Fprintf(w, "; %d held back (not sent)", held)
					}
					fmt.Fprintln(w)
				}
				if v := ph.Verification; v != nil {
					if c := v.Compliance; c != nil {
						if c.BeforeNotRead {
							fmt.Fprintf(w, "      compliance %d/%d (%.1f%%); missing patches %d\n", c.Compliant, c.Instances, c.Percent, c.After.Missing)
						} else {
							fmt.Fprintf(w, "      compliance %d/%d (%.1f%%); missing patches %d -> %d\n", c.Compliant, c.Instances, c.Percent, c.Before.Missing, c.After.Missing)
						}
						if c.PendingReboot.Instances > 0 {
							fmt.Fprintf(w, "      pending reboot: %s\n", gate.PendingRebootText(c.PendingReboot))
						}
					}
					if in := v.Inspector; in != nil && in.Listed != nil {
						// Findings without a fix were not listed (only required
						// CVEs are, at any fix status): no count of them is shown
						// but the required ones found.
						noFix := ""
						if len(in.NoFix) > 0 {
							noFix = fmt.Sprintf(", %d required CVEs without a fix", len(in.NoFix))
						}
						fmt.Fprintf(w, "      inspector (listed: ACTIVE with a fix at or above %s, and requireFixed CVEs): %d remaining with a fix%s, %d new, %d instances without a rescan\n",
							cmp.Or(in.Listed.MinSeverity, "any severity"), len(in.Remaining), noFix, len(in.New), len(in.Uncovered))
					} else if in != nil {
						fmt.Fprintf(w, "      inspector: %d CVE fixed, %d remaining with a fix, %d without a fix, %d new, %d instances without a rescan\n",
							len(in.Fixed), len(in.Remaining), len(in.NoFix), len(in.New), len(in.Uncovered))
					}
					for _, warn := range v.Warnings {
						fmt.Fprintf(w, "      warning: %s\n", warn)
					}
				}
				for _, rs := range ph.Reasons {
					fmt.Fprintf(w, "      - %s: %s\n", rs.Code, rs.Message)
				}
				shown := 0
				for _, wv := range ph.Waves {
					for _, in := range wv.Instances {
						if in.Error != "" && (in.Outcome == result.OutcomeFailed || in.Outcome == result.OutcomeTimedOut || in.Outcome == result.OutcomeInconclusive) && shown < 3 {
							fmt.Fprintf(w, "      %s %s: %s\n", in.ID, in.Outcome, oneLine(in.Error))
							shown++
						}
					}
				}
			}
		}
	}
}

// printRunActions prints a run's text for the runner's log: under Actions
// each policy is a group of its own (a real workflow command, written as
// patchgate's own), its text between stop-commands lines, so nothing in it
// is read as a command.
func printRunActions(env Env, r *result.Run, format string) {
	if env.Getenv("GITHUB_ACTIONS") != "true" || format == "json" {
		printRun(env.Stdout, r, format)
		return
	}
	cmd := escape.CommandWriter(env.Stdout)
	printRunGrouped(env.Stdout, r, format, func(p result.Policy, body func()) {
		// Names are validated policy names; the status is patchgate's own.
		fmt.Fprintf(cmd, "::group::policy %s: %s\n", escape.Line(p.Name, 80), p.Status)
		end := untrustedBlock(env)
		body()
		end()
		fmt.Fprintln(cmd, "::endgroup::")
	})
}

var lineBreaks = strings.NewReplacer("\r\n", " | ", "\n", " | ", "\r", " | ")

func oneLine(s string) string {
	// A runner ends a line at \r too: a workflow command must not hide
	// behind one in an AWS message.
	s = lineBreaks.Replace(strings.TrimSpace(s))
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// maskerFor hides credentials, tokens and account ids in GitHub Actions
// logs (::add-mask::); outside Actions nothing needs hiding.
func maskerFor(env Env) awsapi.Masker {
	if env.Getenv("GITHUB_ACTIONS") != "true" {
		return nil
	}
	return &lockedMasker{a: githubactions.New(githubactions.WithWriter(escape.CommandWriter(env.Stdout)), githubactions.WithGetenv(env.Getenv))}
}

// lockedMasker serialises masks: credentials of parallel targets refresh
// in their own goroutines, and two workflow commands must not interleave.
type lockedMasker struct {
	mu sync.Mutex
	a  *githubactions.Action
}

func (m *lockedMasker) AddMask(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.a.AddMask(s)
}
