package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/sync/errgroup"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/baseline"
	"github.com/patchgate/patchgate/internal/policy"
)

type syncOpts struct {
	aws      awsFlags
	policies string
	dryRun   bool
	prune    bool
	format   string
	parallel int
	runID    string
}

// syncCommand is `patchgate sync`.
func syncCommand() *Command {
	return &Command{
		Name:    "sync",
		Summary: "Make the SSM patch baselines match the policies (idempotent)",
		Usage: "patchgate sync [--dry-run] [--prune] [--policies DIR] [flags]\n\n" +
			"For every policy x account x region, creates or updates the patch baseline patchgate-<name> (tagged\n" +
			"managed-by=patchgate), registers it for the policy's patch groups, and does nothing where AWS already\n" +
			"matches. Baselines patchgate manages that no policy declares anymore are reported, and deleted with --prune.\n\n" +
			"Exit codes: 0 in sync (or synced), 1 invalid policies or a baseline could not be synced, 2 usage/configuration/AWS error.",
		Flags: func(fs *flag.FlagSet) any {
			o := &syncOpts{}
			o.aws.register(fs)
			fs.StringVar(&o.policies, "policies", "policies", "directory (or file) of policies")
			fs.BoolVar(&o.dryRun, "dry-run", false, "read AWS and say what would change; write nothing")
			fs.BoolVar(&o.prune, "prune", false, "delete managed baselines that no policy declares anymore")
			fs.StringVar(&o.format, "format", "text", "what to print: text or json")
			fs.IntVar(&o.parallel, "parallel", 4, "account x region targets synced at once")
			fs.StringVar(&o.runID, "run-id", "", "idempotency token for creates (default GITHUB_RUN_ID)")
			return o
		},
		Run: runSync,
	}
}

type syncTarget struct{ account, role, region string }

func runSync(ctx context.Context, env Env, opts any, args []string) int {
	o := opts.(*syncOpts)
	if len(args) > 0 {
		fmt.Fprintf(env.Stderr, "patchgate sync: unexpected arguments %v\n", args)
		return ExitUsage
	}
	ps, _, code := selectPolicies(env, "sync", o.policies, "")
	if code != ExitOK {
		return code
	}
	runID, _ := runIdentity(env, o.runID, "")
	masker := maskerFor(env)
	session := o.aws.session("patchgate-sync-" + runID)
	cfg, _, err := o.aws.connect(ctx, env, session, masker)
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate sync: %v\n", err)
		return ExitUsage
	}
	masker = o.aws.masker(masker)
	f := &awsapi.Factory{Base: cfg, SessionName: session, Masker: masker}
	all, errs := syncAll(ctx, f, ps, baseline.Options{DryRun: o.dryRun, Prune: o.prune, Token: runID}, o.parallel)
	if o.format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"dryRun": o.dryRun, "outcomes": all, "errors": errs})
	} else {
		printSync(env.Stdout, all, errs, o.dryRun)
	}
	if len(errs) > 0 {
		return ExitFailed
	}
	return ExitOK
}

// syncPlan lists every account x region the policies name, with the
// baselines each must hold.
func syncPlan(ps []*policy.Policy) ([]syncTarget, map[syncTarget]map[string]baseline.Definition) {
	wants := map[syncTarget]map[string]baseline.Definition{}
	var order []syncTarget
	for _, p := range ps {
		accts := p.Spec.Accounts
		if len(accts) == 0 {
			accts = []policy.Account{{}}
		}
		for _, a := range accts {
			for _, r := range p.Spec.Regions {
				t := syncTarget{a.ID, a.RoleArn, r}
				if wants[t] == nil {
					wants[t] = map[string]baseline.Definition{}
					order = append(order, t)
				}
				wants[t][p.Metadata.Name] = baseline.Desired(p)
			}
		}
	}
	return order, wants
}

func orDefault(account string) string {
	if account == "" {
		return "(credentials' account)"
	}
	return account
}

func printSync(w io.Writer, all []baseline.Outcome, errs []string, dryRun bool) {
	verb := map[baseline.Action]string{baseline.Create: "created", baseline.Update: "updated", baseline.NoChange: "in sync",
		baseline.Orphan: "no policy declares it (kept; --prune deletes it)", baseline.Prune: "deleted"}
	if dryRun {
		verb = map[baseline.Action]string{baseline.Create: "would be created", baseline.Update: "would be updated", baseline.NoChange: "in sync",
			baseline.Orphan: "no policy declares it (kept; --prune deletes it)", baseline.Prune: "would be deleted"}
	}
	writes := 0
	for _, o := range all {
		status := verb[o.Action]
		if o.Error != "" {
			status = "ERROR: " + o.Error
		}
		fmt.Fprintf(w, "%s/%s %s: %s\n", o.Account, o.Region, o.Baseline, status)
		for _, c := range o.Changes {
			fmt.Fprintf(w, "    %s\n", c)
		}
		if len(o.Register) > 0 {
			fmt.Fprintf(w, "    patch groups registered: %s\n", strings.Join(o.Register, ", "))
		}
		if len(o.Deregister) > 0 {
			fmt.Fprintf(w, "    patch groups deregistered: %s\n", strings.Join(o.Deregister, ", "))
		}
		if o.Writes() && o.Error == "" {
			writes++
		}
	}
	for _, e := range errs {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if dryRun {
		fmt.Fprintf(w, "dry run: %d baseline(s) would change, %d in sync\n", writes, len(all)-writes)
	} else {
		fmt.Fprintf(w, "%d baseline(s) changed, %d already in sync\n", writes, len(all)-writes)
	}
}

// syncAll syncs every account and region the policies name, each once with
// all the baselines it must hold, and returns the outcomes in order and the
// errors, one line each.
func syncAll(ctx context.Context, f *awsapi.Factory, ps []*policy.Policy, opt baseline.Options, parallel int) ([]baseline.Outcome, []string) {
	targets, wants := syncPlan(ps)
	// Policies may name one account by id and another by "the credentials'
	// own": group by the account the credentials resolve to, so that each
	// account and region is synced once with every baseline it must hold
	// (otherwise each half would see the other's baselines as orphans).
	type region struct {
		account, region string
	}
	groups := map[region]map[string]baseline.Definition{}
	configs := map[region]aws.Config{}
	var order []region
	var errs []string
	for _, t := range targets {
		c, account, err := f.Config(ctx, t.account, t.role, t.region)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s/%s: %v", orDefault(t.account), t.region, err))
			continue
		}
		k := region{account, t.region}
		if groups[k] == nil {
			groups[k], configs[k] = map[string]baseline.Definition{}, c
			order = append(order, k)
		}
		for name, d := range wants[t] {
			groups[k][name] = d
		}
	}
	var mu sync.Mutex
	var all []baseline.Outcome
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for _, k := range order {
		g.Go(func() error {
			out, err := baseline.Sync(gctx, ssm.NewFromConfig(configs[k]), k.account, k.region, groups[k], opt)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, out...)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s/%s: %v", k.account, k.region, err))
			}
			return nil
		})
	}
	_ = g.Wait()
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.Account != b.Account {
			return a.Account < b.Account
		}
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		return a.Baseline < b.Baseline
	})
	sort.Strings(errs)
	return all, errs
}
