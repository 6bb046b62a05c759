package plan

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/sync/errgroup"

	"github.com/patchgate/patchgate/internal/baseline"
	"github.com/patchgate/patchgate/internal/discover"
	"github.com/patchgate/patchgate/internal/hooks"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/promote"
	"github.com/patchgate/patchgate/internal/verify"
)

// Plan is everything a reviewer sees for a policy change.
type Plan struct {
	Base     string       `json:"base"`               // the ref compared with
	BaseSHA  string       `json:"baseSha,omitempty"`  // its commit
	Policies []PolicyPlan `json:"policies"`           // every policy of base and head
	Problems []string     `json:"problems,omitempty"` // head policies that do not validate (FILE:LINE:COL: msg)
	// BaseProblems are problems in the base set; the diff is against what loaded.
	BaseProblems []string `json:"baseProblems,omitempty"`
	// AWSChecked says whether targets, compliance and drift were resolved;
	// Unchecked says what was not, and why.
	AWSChecked bool     `json:"awsChecked"`
	Unchecked  []string `json:"unchecked,omitempty"`
}

// PolicyPlan is one policy's diff and, with AWS, its live state.
type PolicyPlan struct {
	PolicyDiff
	// Rollout is the head policy compiled as `run` reads it (the same
	// object `run --dry-run --format json` shows); nil when removed.
	Rollout *policy.Rollout `json:"rollout,omitempty"`
	Targets []Target        `json:"targets,omitempty"`
	// Rings are the head policy's phases with their scope and, for a
	// promoted phase, its promotion state (read from the store with --aws).
	Rings []RingPhase `json:"rings,omitempty"`
	Drift []Drift     `json:"drift,omitempty"`
}

// Target is one phase in one account and region, as it stands today.
type Target struct {
	Phase     string         `json:"phase"`
	Account   string         `json:"account"`
	Region    string         `json:"region"`
	Instances int            `json:"instances"`
	Online    int            `json:"online"`
	Offline   int            `json:"offline"`
	Platforms map[string]int `json:"platforms,omitempty"`
	// Compliant counts instances with nothing missing, failed or pending a
	// reboot; NoState those that never reported a patch operation.
	Compliant int `json:"compliant"`
	NoState   int `json:"noState"`
	// OtherPatchGroup counts instances tagged for another patch group,
	// which the policy's baseline does not apply to.
	OtherPatchGroup int `json:"otherPatchGroup,omitempty"`
	// Findings are ACTIVE Inspector findings by severity (nil: not read).
	Findings map[string]int `json:"findings,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// Drift is the declared baseline against the live one in an account and region.
type Drift struct {
	Account    string            `json:"account"`
	Region     string            `json:"region"`
	BaselineID string            `json:"baselineId,omitempty"` // "" = not created yet
	Changes    []baseline.Change `json:"changes,omitempty"`
	Register   []string          `json:"register,omitempty"`
	Deregister []string          `json:"deregister,omitempty"`
	Error      string            `json:"error,omitempty"`
	// Hooks says what is wrong with the policy's hook documents here (a
	// missing one, named with its hook); "" when they exist or none is set.
	Hooks string `json:"hooks,omitempty"`
}

// HasChanges reports whether merging changes any policy.
func (p *Plan) HasChanges() bool {
	for _, pp := range p.Policies {
		if pp.Status != Unchanged {
			return true
		}
	}
	return false
}

// Risks are every risk found, in policy order.
func (p *Plan) Risks() []Risk {
	var out []Risk
	for _, pp := range p.Policies {
		for _, r := range pp.Risks {
			r.Message = pp.Name + ": " + r.Message
			out = append(out, r)
		}
	}
	return out
}

// Clients are the read-only AWS clients plan uses in one account and region.
type Clients struct {
	AccountID string
	Inventory discover.Inventory
	Evidence  *verify.Verifier
	Baselines baseline.API
	// Documents checks install.hooks' documents exist (nil: not checked).
	Documents hooks.SSM
}

// Connect returns the clients of an account (via roleARN, when set) and region.
type Connect func(ctx context.Context, accountID, roleARN, region string) (*Clients, error)

// New builds the plan of head against base (nil base: everything added).
func New(baseRef, baseSHA string, base, head *policy.Set) *Plan {
	p := &Plan{Base: baseRef, BaseSHA: baseSHA}
	var bp []*policy.Policy
	if base != nil {
		bp = base.Policies
		for _, pr := range base.Problems {
			p.BaseProblems = append(p.BaseProblems, pr.String())
		}
	}
	for _, pr := range head.Problems {
		p.Problems = append(p.Problems, pr.String())
	}
	compiled := map[string]*policy.Rollout{}
	for _, hp := range head.Policies {
		if r, err := policy.Compile(hp); err == nil {
			compiled[hp.Metadata.Name] = r
		}
	}
	for _, d := range markInvalid(Diff(bp, head.Policies), head) {
		p.Policies = append(p.Policies, PolicyPlan{PolicyDiff: d, Rollout: compiled[d.Name], Rings: ringsOf(compiled[d.Name])})
	}
	return p
}

// markInvalid turns the diff of a head file that does not validate into an
// Invalid entry with its problems: the loader drops such a file, so the
// diff alone would call its policy removed and invite a review of the
// wrong change. A new file that does not validate gets an entry too,
// named by its file.
func markInvalid(diffs []PolicyDiff, head *policy.Set) []PolicyDiff {
	loaded := map[string]bool{}
	for _, pol := range head.Policies {
		loaded[pol.Source.File] = true
	}
	problems := map[string][]string{}
	var files []string
	for _, pr := range head.Problems {
		if loaded[pr.File] {
			continue // it loaded; a problem across files (a duplicate name) is in Plan.Problems
		}
		if problems[pr.File] == nil {
			files = append(files, pr.File)
		}
		problems[pr.File] = append(problems[pr.File], pr.String())
	}
	if len(files) == 0 {
		return diffs
	}
	invalid := func(name, file string) PolicyDiff {
		probs := problems[file]
		return PolicyDiff{Name: name, File: file, Status: Invalid, Problems: probs, Risks: []Risk{{Check: RiskPolicyInvalid,
			Message: fmt.Sprintf("%s does not validate (%d problem(s), the first: %s): fix it; until then patchgate cannot plan, sync or run it", file, len(probs), probs[0])}}}
	}
	matched := map[string]bool{}
	for i, d := range diffs {
		if d.Status == Removed && problems[d.File] != nil && !matched[d.File] {
			diffs[i], matched[d.File] = invalid(d.Name, d.File), true
		}
	}
	for _, f := range files {
		if !matched[f] {
			diffs = append(diffs, invalid(f, f))
		}
	}
	sort.SliceStable(diffs, func(i, j int) bool { return diffs[i].Name < diffs[j].Name })
	return diffs
}

// MaxResolved bounds the account-regions one plan reads from AWS. Each
// costs an AssumeRole and a few reads, and a policy's accounts and regions
// are lists of any length, so their product grows with the square of the
// file: a 29 KB policy of 1,000 accounts and 100 regions asked for 100,000
// connections, and a 1 MiB one could ask for about a billion, each held in
// memory before the first was read. A policy that does not fit in what is
// left is not read at all (a part of it would read as its whole).
const MaxResolved = 10000

// Resolve fills targets, compliance, findings and drift for the policies
// that change (all policies with all=true), reading AWS only. parallel
// bounds the account x region targets read at once; at most MaxResolved
// are read in all.
func (p *Plan) Resolve(ctx context.Context, head *policy.Set, connect Connect, all bool, parallel int) {
	p.AWSChecked = true
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	type slot struct {
		pp      *PolicyPlan
		targets []Target
		drift   Drift
	}
	var slots []*slot
	var skipped []string
	budget := MaxResolved
	for i := range p.Policies {
		pp := &p.Policies[i]
		if pp.Status == Removed || pp.Status == Invalid || (!all && pp.Status == Unchanged) {
			continue
		}
		pol := head.Lookup(pp.Name)
		if pol == nil {
			continue
		}
		accounts := pol.Spec.Accounts
		if len(accounts) == 0 {
			accounts = []policy.Account{{}}
		}
		n := len(accounts) * len(pol.Spec.Regions)
		if n > budget {
			pp.Targets = append(pp.Targets, Target{Phase: "*", Error: fmt.Sprintf("not read: %d accounts x %d regions, over the %d account-regions one plan reads (%d left)",
				len(accounts), len(pol.Spec.Regions), MaxResolved, budget)})
			skipped = append(skipped, pp.Name)
			continue
		}
		budget -= n
		for _, acct := range accounts {
			for _, region := range pol.Spec.Regions {
				s := &slot{pp: pp}
				slots = append(slots, s)
				g.Go(func() error {
					s.targets, s.drift = resolveOne(gctx, connect, pol, acct, region)
					return nil
				})
			}
		}
	}
	if len(skipped) > 0 {
		p.Unchecked = append(p.Unchecked, fmt.Sprintf("%d %s not read from AWS: a plan reads at most %d account-regions; the first: %s",
			len(skipped), map[bool]string{true: "policy was", false: "policies were"}[len(skipped) == 1], MaxResolved, skipped[0]))
	}
	_ = g.Wait() // errors are recorded per target, not returned
	for _, s := range slots {
		s.pp.Targets = append(s.pp.Targets, s.targets...)
		s.pp.Drift = append(s.pp.Drift, s.drift)
	}
}

func resolveOne(ctx context.Context, connect Connect, pol *policy.Policy, acct policy.Account, region string) ([]Target, Drift) {
	drift := Drift{Account: acct.ID, Region: region}
	cl, err := connect(ctx, acct.ID, acct.RoleArn, region)
	if err != nil {
		drift.Error = err.Error()
		return []Target{{Phase: "*", Account: acct.ID, Region: region, Error: err.Error()}}, drift
	}
	drift.Account = cl.AccountID
	want := baseline.Desired(pol)
	if live, err := baseline.Inventory(ctx, cl.Baselines); err != nil {
		drift.Error = err.Error()
	} else {
		drift.BaselineID, drift.Changes, drift.Register, drift.Deregister, err = baseline.Drift(ctx, cl.Baselines, live, want)
		if err != nil {
			drift.Error = err.Error()
		}
	}
	if cl.Documents != nil {
		if err := hooks.Check(ctx, cl.Documents, pol.Spec.Install.Hooks); err != nil {
			drift.Hooks = err.Error()
		}
	}
	var out []Target
	for _, ph := range pol.Spec.Phases {
		t := Target{Phase: ph.Name, Account: cl.AccountID, Region: region, Platforms: map[string]int{}}
		insts, err := discover.Instances(ctx, cl.Inventory, ph.Targets.Tags, ph.Targets.InstanceIDs)
		if err != nil {
			t.Error = err.Error()
			out = append(out, t)
			continue
		}
		ids := make([]string, 0, len(insts))
		for _, in := range insts {
			t.Instances++
			if in.Online {
				t.Online++
			} else {
				t.Offline++
			}
			if in.Platform != "" {
				t.Platforms[in.Platform]++
			}
			ids = append(ids, in.ID)
		}
		states, findings, err := cl.Evidence.Today(ctx, ids)
		if err != nil {
			t.Error = err.Error()
		}
		for _, id := range ids {
			st, ok := states[id]
			switch {
			case !ok:
				t.NoState++
			case verify.Compliant(st):
				t.Compliant++
			}
			if ok && aws.ToString(st.PatchGroup) != "" && !contains(want.PatchGroups, aws.ToString(st.PatchGroup)) {
				t.OtherPatchGroup++
			}
		}
		if cl.Evidence.Inspector != nil && err == nil {
			t.Findings = map[string]int{}
			for _, f := range findings {
				t.Findings[f.Severity]++
			}
		}
		out = append(out, t)
	}
	return out, drift
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// NotChecked records why AWS was not read.
func (p *Plan) NotChecked(why string) {
	p.AWSChecked = false
	p.Unchecked = append(p.Unchecked, "targets, compliance, Inspector findings and baseline drift were not checked: "+why)
}

// Summary is a one-line count for logs and the comment's headline.
func (p *Plan) Summary() string {
	counts := map[Status]int{}
	for _, pp := range p.Policies {
		counts[pp.Status]++
	}
	var parts []string
	for _, s := range []Status{Invalid, Added, Changed, Renamed, Removed, Unchanged} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no policies"}
	}
	risks := len(p.Risks())
	s := strings.Join(parts, ", ")
	if risks > 0 {
		s += fmt.Sprintf("; %d risk(s) to review", risks)
	}
	if len(p.Problems) > 0 {
		s += fmt.Sprintf("; %d problem(s) in the policies", len(p.Problems))
	}
	return s
}

// RingPhase is one phase of a policy as a ring: where it runs and, when it
// is promoted from an earlier phase, whether it may run now.
type RingPhase struct {
	Phase    string   `json:"phase"`
	Accounts []string `json:"accounts"`
	Regions  []string `json:"regions"`
	// From, MinAge, MaxAge and Replay: the promotion; empty without one.
	From   string `json:"from,omitempty"`
	MinAge string `json:"minAge,omitempty"`
	MaxAge string `json:"maxAge,omitempty"`
	Replay bool   `json:"replay,omitempty"`
	// Checked: the store was read; then State says what it holds.
	Checked    bool      `json:"checked,omitempty"`
	Eligible   bool      `json:"eligible,omitempty"`
	State      string    `json:"state,omitempty"`
	EligibleAt time.Time `json:"eligibleAt,omitzero"`
	SourceRun  string    `json:"sourceRun,omitempty"`
	SourceURL  string    `json:"sourceUrl,omitempty"`
}

func ringsOf(r *policy.Rollout) []RingPhase {
	if r == nil {
		return nil
	}
	var out []RingPhase
	for _, st := range r.Stages {
		rp := RingPhase{Phase: st.Name, Regions: st.Regions}
		for _, a := range st.Accounts {
			rp.Accounts = append(rp.Accounts, a.ID)
		}
		if pr := st.Promotion; pr != nil {
			rp.From, rp.MinAge, rp.MaxAge, rp.Replay = pr.From, pr.MinAgeTxt, pr.MaxAgeTxt, pr.Replay
		}
		out = append(out, rp)
	}
	return out
}

// StoreConnect reaches a policy's promotion store.
type StoreConnect func(ctx context.Context, rs *policy.RingStore) (*promote.Store, error)

// ResolveRings reads, for every promoted phase of the head policies, whether
// it may run now and why, from the policy's promotion store (read-only).
func (p *Plan) ResolveRings(ctx context.Context, head *policy.Set, stores StoreConnect, now time.Time) {
	byName := map[string]*policy.Policy{}
	for _, hp := range head.Policies {
		byName[hp.Metadata.Name] = hp
	}
	for i := range p.Policies {
		pp := &p.Policies[i]
		hp, r := byName[pp.Name], pp.Rollout
		if hp == nil || r == nil || r.Rings == nil || r.Rings.Store == nil {
			continue
		}
		st, err := stores(ctx, r.Rings.Store)
		for j := range pp.Rings {
			ring := &pp.Rings[j]
			stage := r.Stage(ring.Phase)
			if ring.From == "" || stage == nil {
				continue
			}
			ring.Checked = true
			if err != nil {
				ring.State = "the promotion store could not be reached: " + err.Error()
				continue
			}
			d, derr := st.Decide(ctx, hp, stage, now)
			if derr != nil {
				ring.State = derr.Error()
				continue
			}
			ring.Eligible, ring.State, ring.EligibleAt = d.Eligible, d.Reason, d.EligibleAt
			if d.Source != nil {
				ring.SourceRun, ring.SourceURL = d.Source.RunID, d.Source.RunURL
			}
		}
	}
}
