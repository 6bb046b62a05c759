package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	patchgate "github.com/patchgate/patchgate"
	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/awsconnect"
	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/baseline"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/exitcode"
	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
	"github.com/patchgate/patchgate/internal/rollout"
)

type demoOpts struct {
	policies    string
	failStaging bool
	failHealth  bool
	report      string
	scale       float64
	verbose     bool
}

// demoCommand is `patchgate demo`.
func demoCommand() *Command {
	return &Command{
		Name:    "demo",
		Summary: "Validate and run the example policies against a simulated AWS",
		Usage: "patchgate demo [--fail-staging] [--fail-health] [--policies DIR] [--report FILE]\n\n" +
			"Starts patchgate's AWS simulator in process (a few hundred instances over two accounts and two\n" +
			"regions), validates the policies, shows what a dry run would send, then runs them for real against\n" +
			"the simulator on a clock that turns a 40-minute patch into a fraction of a second. Nothing leaves\n" +
			"this machine. --fail-staging breaks one staging instance so you can watch the gate hold production;\n" +
			"--fail-health sets off the web fleet's CloudWatch alarm an hour in, so you can watch the health gate stop it.",
		Flags: func(fs *flag.FlagSet) any {
			o := &demoOpts{}
			fs.StringVar(&o.policies, "policies", "policies", "directory of policies to run")
			fs.BoolVar(&o.failStaging, "fail-staging", false, "make one staging instance of the web fleet fail to patch")
			fs.BoolVar(&o.failHealth, "fail-health", false, "make the web fleet's alarm web-5xx enter ALARM an hour into the run")
			fs.StringVar(&o.report, "report", "", "write the run's JSON result to this file")
			fs.Float64Var(&o.scale, "scale", 20000, "how many simulated seconds pass per real second")
			fs.BoolVar(&o.verbose, "v", false, "log every step")
			return o
		},
		Run: runDemo,
	}
}

// loopback is where the demo serves its simulator: a loopback port of the
// system's choosing, reached by the SDK's own HTTP client.
func loopback() (net.Listener, aws.HTTPClient, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listening on loopback: %w", err)
	}
	return ln, nil, nil
}

// demoPolicies are the policies in dir, or, when the default policies/ is
// absent (the demo run from outside the repository), the example policies
// built into the binary.
func demoPolicies(env Env, dir string) ([]*policy.Policy, string, int) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && dir == "policies" {
		set, err := policy.Load(patchgate.ExamplePolicies, "policies")
		if err != nil {
			fmt.Fprintf(env.Stderr, "patchgate demo: the built-in example policies: %v\n", err)
			return nil, "", ExitUsage
		}
		ps, _, code := choosePolicies(env, "demo", "the built-in examples", set, "")
		return ps, "the built-in example policies (no policies/ here)", code
	}
	ps, _, code := selectPolicies(env, "demo", dir, "")
	return ps, dir, code
}

func runDemo(ctx context.Context, env Env, opts any, args []string) int {
	o := opts.(*demoOpts)
	if len(args) > 0 {
		fmt.Fprintf(env.Stderr, "patchgate demo: unexpected arguments %v\n", args)
		return ExitUsage
	}
	selected, from, code := demoPolicies(env, o.policies)
	if code != ExitOK {
		return code
	}
	fmt.Fprintf(env.Stdout, "== 1. validate %s\n", from)
	fmt.Fprintf(env.Stdout, "%d %s valid\n", len(selected), plural(len(selected), "policy", "policies"))

	clk := clock.NewScaled(time.Now().UTC().Truncate(time.Second), o.scale)
	sim := awssim.New(awssim.DemoScenario(awssim.DemoOptions{FailStaging: o.failStaging, FailHealth: o.failHealth}), clk)
	base, simURL, stopSim, err := serveSim(ctx, env, sim)
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate demo: %v\n", err)
		return ExitUsage
	}
	defer stopSim()
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	factory := &awsapi.Factory{Base: base, SessionName: "patchgate-demo"}
	opt := rollout.Options{RunID: "demo-" + time.Now().UTC().Format("150405"), ForceWindow: true, Parallel: 8,
		Connect: awsconnect.Rollout(factory, awsconnect.Evidence(clk)), Store: awsconnect.Store(factory), Notifier: awsconnect.Notify(factory),
		Clock: clk, Logger: log}

	fmt.Fprintf(env.Stdout, "\n== 2. plan: what the policies target today (as a first pull request would show them)\n")
	set := &policy.Set{Policies: selected}
	p := plan.New("(none)", "", nil, set)
	p.Resolve(ctx, set, awsconnect.Plan(factory), true, 8)
	for _, pp := range p.Policies {
		n, compliant, create := 0, 0, 0
		findings := map[string]int{}
		for _, t := range pp.Targets {
			n += t.Instances
			compliant += t.Compliant
			for sev, k := range t.Findings {
				findings[sev] += k
			}
		}
		for _, d := range pp.Drift {
			if d.BaselineID == "" && d.Error == "" {
				create++
			}
		}
		fmt.Fprintf(env.Stdout, "  %-14s %d %s, %d compliant today, open findings: %d critical, %d high; %d %s to create\n",
			pp.Name, n, plural(n, "instance", "instances"), compliant, findings["CRITICAL"], findings["HIGH"], create, plural(create, "baseline", "baselines"))
	}

	fmt.Fprintf(env.Stdout, "\n== 3. sync: create the patch baselines the policies declare\n")
	synced, errs := syncAll(ctx, factory, selected, baseline.Options{Token: opt.RunID}, 8)
	for _, e := range errs {
		fmt.Fprintf(env.Stderr, "patchgate demo: sync %s\n", e)
		return ExitUsage
	}
	for _, o := range synced {
		fmt.Fprintf(env.Stdout, "  %s/%s %s: %s, patch groups %v\n", o.Account, o.Region, o.Baseline, o.Action, o.Register)
	}

	fmt.Fprintf(env.Stdout, "\n== 4. dry run: what would be sent (simulator at %s)\n", simURL)
	opt.DryRun = true
	dry := rollout.New(opt).Run(ctx, selected)
	for _, p := range dry.Policies {
		cmds, insts := 0, 0
		for _, t := range p.Targets {
			for _, ph := range t.Phases {
				for _, w := range ph.Waves {
					cmds += len(w.Commands)
					insts += w.Counts.Pending
				}
			}
		}
		fmt.Fprintf(env.Stdout, "  %-14s %d %s, %d %s to %d %s\n", p.Name, len(p.Targets), plural(len(p.Targets), "target", "targets"),
			cmds, plural(cmds, "command", "commands"), insts, plural(insts, "instance", "instances"))
	}

	fmt.Fprintf(env.Stdout, "\n== 5. run (schedules are overridden with --force-window for the demo)\n")
	opt.DryRun = false
	// The progress lines a real run prints on standard error, here in
	// line with the rest, on the simulator's clock; every 30 simulated
	// minutes rather than every minute, or six simulated hours would be
	// hundreds of lines.
	shown := env
	shown.Stderr = env.Stdout
	rep, stopProgress := startProgress(ctx, shown, false, clk, 30*time.Minute)
	opt.Progress = rep
	r := rollout.New(opt).Run(ctx, selected)
	stopProgress()
	fmt.Fprintln(env.Stdout)
	publishMetrics(factory, r, selected, log)
	writeReport(o.report, r, log)
	printRun(env.Stdout, r, "text")
	fmt.Fprintf(env.Stdout, "\n%d CloudWatch datums published for policies with reporting.cloudwatchNamespace.", len(sim.Metrics()))
	calls := 0
	for _, n := range sim.Calls() {
		calls += n
	}
	fmt.Fprintf(env.Stdout, "\n%d simulated AWS calls, %d commands sent.\n", calls, len(sim.Sends()))
	demoSafetySummary(env, r, sim)
	if o.failHealth {
		for _, p := range r.Policies {
			if p.Name != "web-fleet" {
				continue
			}
			for _, t := range p.Targets {
				for _, ph := range t.Phases {
					for _, rs := range ph.Reasons {
						if rs.Code == "health-alarm" {
							fmt.Fprintf(env.Stdout, "web-fleet %s in %s/%s: %s\n", ph.Name, t.AccountID, t.Region, rs.Message)
						}
					}
				}
			}
		}
		prod := 0
		for _, s := range sim.Sends() {
			if strings.Contains(s.Comment, " web-fleet/production/") {
				prod++
			}
		}
		fmt.Fprintf(env.Stdout, "web-fleet production SendCommand calls after the alarm, in any account-region: %d.\n", prod)
		if r.Status != result.StatusPassed && prod == 0 {
			fmt.Fprintln(env.Stdout, "As intended: the alarm web-5xx entering ALARM while staging ran kept production unpatched everywhere.")
		}
	}
	if o.failStaging {
		// Staging failed in one account-region: production must be sent
		// nowhere, in any account-region of the policy.
		prod := map[string]int{}
		for _, s := range sim.Sends() {
			if strings.Contains(s.Comment, " web-fleet/production/") {
				prod[s.Account+"/"+s.Region]++
			}
		}
		total := 0
		for _, n := range prod {
			total += n
		}
		fmt.Fprintf(env.Stdout, "web-fleet production SendCommand calls, in any account-region: %d.\n", total)
		if r.Status != result.StatusPassed && total == 0 {
			fmt.Fprintln(env.Stdout, "As intended: the failing staging instance in one account-region kept production unpatched in all four.")
		}
	}
	if code := demoRings(ctx, env, o, clk, log); code != ExitOK {
		return code
	}
	return exitcode.ForStatus(r.Status)
}

// demoRings is the demo's second act: a staging account gating two
// production accounts across two runs three days apart, production
// installing exactly what staging installed.
func demoRings(ctx context.Context, env Env, o *demoOpts, clk *clock.Scaled, log *slog.Logger) int {
	set, err := policy.Load(patchgate.ExamplePolicies, "policies/rings")
	if err != nil || len(set.Policies) == 0 {
		fmt.Fprintf(env.Stderr, "patchgate demo: the built-in rings example: %v\n", err)
		return ExitUsage
	}
	p := set.Policies[0]
	st := p.Spec.Rings.Store
	sc := &awssim.Scenario{Accounts: []string{"111122223333", "444455556666", "777788889999", st.Account}, PatchDuration: 30 * time.Minute,
		Buckets: []awssim.Bucket{{Name: st.Bucket, Account: st.Account, Region: st.Region}}}
	for _, g := range []struct {
		acct, name string
		n          int
	}{{"111122223333", "stg", 4}, {"444455556666", "prda", 12}, {"777788889999", "prdb", 12}} {
		for _, region := range p.Spec.Regions {
			sc.Groups = append(sc.Groups, awssim.Group{Account: g.acct, Region: region, Count: g.n, Name: g.name, Platform: "Amazon Linux",
				Tags: map[string]string{"App": "payments"}, Missing: 5})
		}
	}
	sim := awssim.New(sc, clk)
	base, _, stopSim, err := serveSim(ctx, env, sim)
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate demo: %v\n", err)
		return ExitUsage
	}
	defer stopSim()
	factory := &awsapi.Factory{Base: base, SessionName: "patchgate-demo"}
	opt := rollout.Options{ForceWindow: true, Parallel: 8, Clock: clk, Logger: log,
		Connect: awsconnect.Rollout(factory, awsconnect.Evidence(clk)), Store: awsconnect.Store(factory)}
	sends := func(accounts ...string) int {
		n := 0
		for _, s := range sim.Sends() {
			if slices.Contains(accounts, s.Account) {
				n++
			}
		}
		return n
	}
	fmt.Fprintf(env.Stdout, "\n== 6. rings across runs: %s (staging in 111122223333 gates production in 444455556666 and 777788889999)\n", p.Metadata.Name)
	opt.RunID = "rings-1"
	r1 := rollout.New(opt).Run(ctx, []*policy.Policy{p})
	n1 := sends("111122223333")
	fmt.Fprintf(env.Stdout, "run 1: %s. Staging sent %d %s; production %d.\n", r1.Status, n1, plural(n1, "command", "commands"), sends("444455556666", "777788889999"))
	for _, t := range r1.Policies[0].Targets {
		for _, ph := range t.Phases {
			if ph.Name == "production" && len(ph.Reasons) > 0 {
				fmt.Fprintf(env.Stdout, "  production %s/%s: %s\n", t.AccountID, t.Region, ph.Reasons[0].Message)
				break
			}
		}
	}
	sim.ReleasePatches(clk.Now().Add(6*time.Hour), "", 3)
	clk.Advance(73 * time.Hour)
	fmt.Fprintln(env.Stdout, "... three days pass; the vendors release 3 more patches meanwhile ...")
	before := sends("444455556666", "777788889999")
	opt.RunID = "rings-2"
	r2 := rollout.New(opt).Run(ctx, []*policy.Policy{p})
	fmt.Fprintf(env.Stdout, "run 2: %s. Production sent %d commands.\n", r2.Status, sends("444455556666", "777788889999")-before)
	for _, t := range r2.Policies[0].Targets {
		for _, ph := range t.Phases {
			if ph.Name == "production" && ph.Promotion != nil {
				pr := ph.Promotion
				fmt.Fprintf(env.Stdout, "  production %s/%s: %s, promoted from %s of run %s (%s); %d patches replayed with %s, exact: %v\n",
					t.AccountID, t.Region, ph.Status, pr.From, pr.SourceRun, pr.SourceTime.UTC().Format(time.RFC3339), pr.Patches, pr.Mechanism, pr.Exact)
			}
		}
	}
	if r1.Status != result.StatusWaiting || r2.Status != result.StatusPassed {
		fmt.Fprintf(env.Stderr, "patchgate demo: the rings act did not go as intended (run 1 %s, run 2 %s)\n", r1.Status, r2.Status)
		return exitcode.Failed
	}
	fmt.Fprintln(env.Stdout, "As intended: production waited for staging's record to age, then installed exactly staging's patch set; the patches released since were not installed.")
	return ExitOK
}

// serveSim serves a simulator on the demo's network (a loopback port, or
// the tests' in-memory one) and returns an SDK configuration that reaches
// it as the demo's first account, its URL, and how to stop it.
func serveSim(ctx context.Context, env Env, sim *awssim.Sim) (aws.Config, string, func(), error) {
	listen := env.simNet
	if listen == nil {
		listen = loopback
	}
	ln, httpClient, err := listen()
	if err != nil {
		return aws.Config{}, "", nil, fmt.Errorf("serving the simulator: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	extra := []func(*config.LoadOptions) error{config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(awssim.AccessKeyFor("111122223333"), "demo", ""))}
	if httpClient != nil {
		extra = append(extra, config.WithHTTPClient(httpClient))
	}
	base, err := awsapi.LoadConfig(ctx, awsapi.Options{Region: "us-east-1", Endpoint: url, RetryMaxBackoff: 50 * time.Millisecond, Extra: extra})
	if err != nil {
		_ = srv.Close()
		return aws.Config{}, "", nil, err
	}
	return base, url, func() { _ = srv.Close() }, nil
}

// demoSafetySummary says what the backup, the hooks and the health gate
// did in the demo's run.
func demoSafetySummary(env Env, r *result.Run, sim *awssim.Sim) {
	instances, snaps, held := 0, 0, 0
	for _, p := range r.Policies {
		for _, t := range p.Targets {
			for _, ph := range t.Phases {
				for _, w := range ph.Waves {
					for _, b := range w.Backups {
						instances++
						snaps += len(b.Snapshots)
						if b.Reason != "" {
							held++
						}
					}
				}
			}
		}
	}
	hooked := 0
	for _, s := range sim.Sends() {
		if len(s.Parameters["PreInstallHookDocName"]) > 0 {
			hooked++
		}
	}
	if instances > 0 {
		fmt.Fprintf(env.Stdout, "Backups: %d instances snapshotted before their wave (%d EBS snapshots), %d held back for a failed backup.\n", instances, snaps, held)
	}
	if hooked > 0 {
		fmt.Fprintf(env.Stdout, "Hooks: %d commands ran AWS-RunPatchBaselineWithHooks (App-Drain before, App-HealthCheck after each install).\n", hooked)
	}
}
