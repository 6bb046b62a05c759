package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/awsconnect"
	"github.com/patchgate/patchgate/internal/exitcode"
	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/report"
)

// ExitChanges is plan's exit code for "there are changes" with --detailed-exitcode.
const ExitChanges = exitcode.Changes

type planOpts struct {
	aws              awsFlags
	policies         string
	base             string
	format           string
	out, jsonOut     string
	useAWS, all      bool
	failOnRisk       bool
	detailedExitcode bool
	parallel         int
	link             string
}

// planCommand is `patchgate plan`.
func planCommand() *Command {
	return &Command{
		Name:    "plan",
		Summary: "Show what merging a policy change does (diff, risks, targets, compliance, drift)",
		Usage: "patchgate plan [--base REF] [--policies DIR] [--aws] [--format markdown|json] [--out FILE] [flags]\n\n" +
			"Compares the policies in the working tree with those at --base (default: the pull request's base commit,\n" +
			"else origin/<base branch>) and prints the change in plain words with the risk checks reviewers care about.\n" +
			"With --aws (or --role-to-assume) it also reads, read-only, each changed phase's targets, their compliance\n" +
			"today, open Inspector findings, and the drift between the declared and the live patch baseline.\n\n" +
			"Exit codes: 0 planned, 1 the policies do not validate (or risks with --fail-on-risk), 2 usage/git/AWS error,\n" +
			"6 there are changes (only with --detailed-exitcode; 0 then means no changes).",
		Flags: func(fs *flag.FlagSet) any {
			o := &planOpts{}
			o.aws.register(fs)
			fs.StringVar(&o.policies, "policies", "policies", "directory (or file) of policies, relative to the repository checkout")
			fs.StringVar(&o.base, "base", "", "git ref to compare with (default: the PR's base SHA from the event, else origin/<base branch>)")
			fs.StringVar(&o.format, "format", "markdown", "what to print: markdown or json")
			fs.StringVar(&o.out, "out", "", "also write the markdown (PR comment form) to this file")
			fs.StringVar(&o.jsonOut, "json", "", "also write the JSON plan to this file")
			fs.BoolVar(&o.useAWS, "aws", false, "read targets, compliance, findings and baseline drift from AWS (read-only); implied by --role-to-assume")
			fs.BoolVar(&o.all, "all", false, "with AWS, resolve every policy, not only the changed ones")
			fs.BoolVar(&o.failOnRisk, "fail-on-risk", false, "exit 1 when a risk check fires")
			fs.BoolVar(&o.detailedExitcode, "detailed-exitcode", false, "exit 6 when there are changes, 0 when there are none")
			fs.IntVar(&o.parallel, "parallel", 4, "account x region targets read at once")
			fs.StringVar(&o.link, "link", "", "link to the workflow run, for what does not fit in the comment (default: the GitHub Actions run)")
			return o
		},
		Run: runPlan,
	}
}

func runPlan(ctx context.Context, env Env, opts any, args []string) int {
	o := opts.(*planOpts)
	if len(args) > 0 {
		fmt.Fprintf(env.Stderr, "patchgate plan: unexpected arguments %v\n", args)
		return ExitUsage
	}
	if o.format != "markdown" && o.format != "json" {
		fmt.Fprintf(env.Stderr, "patchgate plan: --format %q: use markdown or json\n", o.format)
		return ExitUsage
	}
	p, head, err := buildPlan(ctx, env, o.policies, o.base)
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate plan: %v\n", err)
		return ExitUsage
	}
	if o.useAWS || o.aws.roleToAssume != "" {
		if code := resolvePlan(ctx, env, o, p, head); code != ExitOK {
			return code
		}
	} else {
		p.NotChecked("no AWS credentials were asked for (pass --aws with read-only credentials, or role-to-assume in the action)")
	}
	if o.link == "" {
		_, o.link = runIdentity(env, "", "")
	}
	md := report.Plan(p, report.Comment, o.link)
	if o.out != "" {
		if err := writeFileAtomic(o.out, []byte(md)); err != nil {
			fmt.Fprintf(env.Stderr, "patchgate plan: %v\n", err)
			return ExitUsage
		}
	}
	js, _ := json.MarshalIndent(p, "", "  ")
	if o.jsonOut != "" {
		if err := writeFileAtomic(o.jsonOut, append(js, '\n')); err != nil {
			fmt.Fprintf(env.Stderr, "patchgate plan: %v\n", err)
			return ExitUsage
		}
	}
	if o.format == "json" {
		fmt.Fprintln(env.Stdout, string(js))
	} else {
		end := untrustedBlock(env)
		fmt.Fprint(env.Stdout, md)
		end()
	}
	return planExit(p, o.failOnRisk, o.detailedExitcode)
}

func planExit(p *plan.Plan, failOnRisk, detailed bool) int {
	switch {
	case len(p.Problems) > 0:
		return ExitFailed
	case failOnRisk && len(p.Risks()) > 0:
		return ExitFailed
	case detailed && p.HasChanges():
		return ExitChanges
	}
	return ExitOK
}

// buildPlan loads head from the working tree and base from git.
func buildPlan(ctx context.Context, env Env, dir, base string) (*plan.Plan, *policy.Set, error) {
	head, err := loadPolicies([]string{dir})
	if err != nil {
		return nil, nil, err
	}
	g := plan.Git{}
	name := base
	if base == "" {
		base, name = plan.DefaultBase(ctx, g, env.Getenv)
	}
	sha, err := g.Resolve(ctx, base)
	if err != nil {
		return nil, nil, err
	}
	baseSet, err := g.LoadAt(ctx, sha, dir)
	if err != nil {
		return nil, nil, err
	}
	return plan.New(name, sha, baseSet, head), head, nil
}

func resolvePlan(ctx context.Context, env Env, o *planOpts, p *plan.Plan, head *policy.Set) int {
	masker := maskerFor(env)
	session := o.aws.session("patchgate-plan")
	cfg, _, err := o.aws.connect(ctx, env, session, masker)
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate plan: %v\n", err)
		return ExitUsage
	}
	factory := &awsapi.Factory{Base: cfg, SessionName: session, Masker: o.aws.masker(masker)}
	p.Resolve(ctx, head, awsconnect.Plan(factory), o.all, o.parallel)
	p.ResolveRings(ctx, head, plan.StoreConnect(awsconnect.Store(factory)), time.Now())
	return ExitOK
}

// writeFileAtomic writes through a temporary file so a reader never sees
// half a report.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
