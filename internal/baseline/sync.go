package baseline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// API is the part of SSM that sync and drift detection use.
type API interface {
	DescribePatchBaselines(ctx context.Context, in *ssm.DescribePatchBaselinesInput, optFns ...func(*ssm.Options)) (*ssm.DescribePatchBaselinesOutput, error)
	GetPatchBaseline(ctx context.Context, in *ssm.GetPatchBaselineInput, optFns ...func(*ssm.Options)) (*ssm.GetPatchBaselineOutput, error)
	ListTagsForResource(ctx context.Context, in *ssm.ListTagsForResourceInput, optFns ...func(*ssm.Options)) (*ssm.ListTagsForResourceOutput, error)
	GetPatchBaselineForPatchGroup(ctx context.Context, in *ssm.GetPatchBaselineForPatchGroupInput, optFns ...func(*ssm.Options)) (*ssm.GetPatchBaselineForPatchGroupOutput, error)
	CreatePatchBaseline(ctx context.Context, in *ssm.CreatePatchBaselineInput, optFns ...func(*ssm.Options)) (*ssm.CreatePatchBaselineOutput, error)
	UpdatePatchBaseline(ctx context.Context, in *ssm.UpdatePatchBaselineInput, optFns ...func(*ssm.Options)) (*ssm.UpdatePatchBaselineOutput, error)
	RegisterPatchBaselineForPatchGroup(ctx context.Context, in *ssm.RegisterPatchBaselineForPatchGroupInput, optFns ...func(*ssm.Options)) (*ssm.RegisterPatchBaselineForPatchGroupOutput, error)
	DeregisterPatchBaselineForPatchGroup(ctx context.Context, in *ssm.DeregisterPatchBaselineForPatchGroupInput, optFns ...func(*ssm.Options)) (*ssm.DeregisterPatchBaselineForPatchGroupOutput, error)
	DeletePatchBaseline(ctx context.Context, in *ssm.DeletePatchBaselineInput, optFns ...func(*ssm.Options)) (*ssm.DeletePatchBaselineOutput, error)
}

// Managed is a patchgate-managed baseline found in an account and region.
type Managed struct {
	ID, Name, Policy string
}

// Live is what exists in one account and region: the baselines named like
// patchgate's (managed or not, by name) and which of them patchgate manages.
type Live struct {
	byName  map[string]string // name -> id, every Self-owned baseline with the prefix
	managed map[string]Managed
}

// Inventory lists the Self-owned baselines named patchgate-* and reads the
// tags of each, so sync never touches a baseline it does not manage.
func Inventory(ctx context.Context, api API) (*Live, error) {
	l := &Live{byName: map[string]string{}, managed: map[string]Managed{}}
	p := ssm.NewDescribePatchBaselinesPaginator(api, &ssm.DescribePatchBaselinesInput{MaxResults: aws.Int32(100),
		Filters: []ssmtypes.PatchOrchestratorFilter{{Key: aws.String("OWNER"), Values: []string{"Self"}}, {Key: aws.String("NAME_PREFIX"), Values: []string{NamePrefix}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing patch baselines with ssm:DescribePatchBaselines: %w", err)
		}
		for _, b := range page.BaselineIdentities {
			l.byName[aws.ToString(b.BaselineName)] = aws.ToString(b.BaselineId)
		}
	}
	for name, id := range l.byName {
		tags, err := api.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingPatchBaseline, ResourceId: aws.String(id)})
		if err != nil {
			return nil, fmt.Errorf("reading the tags of patch baseline %s (%s): %w", name, id, err)
		}
		m := Managed{ID: id, Name: name}
		isManaged := false
		for _, t := range tags.TagList {
			switch aws.ToString(t.Key) {
			case ManagedByTag:
				isManaged = aws.ToString(t.Value) == ManagedByValue
			case PolicyTag:
				m.Policy = aws.ToString(t.Value)
			}
		}
		if isManaged {
			l.managed[name] = m
		}
	}
	return l, nil
}

// Action is what sync did, or would do, to one baseline.
type Action string

const (
	Create   Action = "create"
	Update   Action = "update"
	NoChange Action = "no-change"
	Orphan   Action = "orphan" // managed, no policy declares it; kept
	Prune    Action = "prune"  // managed, no policy declares it; deleted
)

// Outcome is sync's result for one baseline in one account and region.
type Outcome struct {
	Policy     string   `json:"policy,omitempty"`
	Account    string   `json:"account"`
	Region     string   `json:"region"`
	Baseline   string   `json:"baseline"`
	BaselineID string   `json:"baselineId,omitempty"`
	Action     Action   `json:"action"`
	Changes    []Change `json:"changes,omitempty"`
	// Register and Deregister are patch-group registrations made (or, in a
	// dry run, to make).
	Register   []string `json:"register,omitempty"`
	Deregister []string `json:"deregister,omitempty"`
	DryRun     bool     `json:"dryRun,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// Writes reports whether the outcome changes AWS.
func (o Outcome) Writes() bool {
	return o.Action == Create || o.Action == Update || o.Action == Prune || len(o.Register) > 0 || len(o.Deregister) > 0
}

// Drift compares a declared baseline with the live one in an account and
// region. It returns the live id ("" when absent) and the changes a sync
// would make, patch-group registrations included.
func Drift(ctx context.Context, api API, live *Live, want Definition) (id string, changes []Change, register, deregister []string, err error) {
	id, exists := live.byName[want.Name]
	if !exists {
		return "", nil, want.PatchGroups, nil, nil
	}
	if _, ok := live.managed[want.Name]; !ok {
		return id, nil, nil, nil, fmt.Errorf("patch baseline %s (%s) exists but is not managed by patchgate (no %s=%s tag): rename it, or tag it to let patchgate take it over",
			want.Name, id, ManagedByTag, ManagedByValue)
	}
	got, err := api.GetPatchBaseline(ctx, &ssm.GetPatchBaselineInput{BaselineId: aws.String(id)})
	if err != nil {
		return id, nil, nil, nil, fmt.Errorf("reading patch baseline %s with ssm:GetPatchBaseline: %w", id, err)
	}
	l := FromSSM(got)
	changes = Compare(want, l)
	for _, g := range want.PatchGroups {
		if !slices.Contains(l.PatchGroups, g) {
			register = append(register, g)
		}
	}
	for _, g := range l.PatchGroups {
		if !slices.Contains(want.PatchGroups, g) {
			deregister = append(deregister, g)
		}
	}
	return id, changes, register, deregister, nil
}

// Options control a sync.
type Options struct {
	DryRun bool
	// Prune deletes managed baselines no policy declares anymore.
	Prune bool
	// Token makes creates idempotent across retries of one sync (the run id).
	Token string
}

// Sync makes one account and region match the declared baselines: wants
// are the definitions of the policies that include this account and region,
// keyed by policy name. A second sync with nothing changed makes no write.
func Sync(ctx context.Context, api API, account, region string, wants map[string]Definition, o Options) ([]Outcome, error) {
	live, err := Inventory(ctx, api)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(wants))
	for n := range wants {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Outcome
	var errs []error
	for _, pol := range names {
		want := wants[pol]
		oc := Outcome{Policy: pol, Account: account, Region: region, Baseline: want.Name, DryRun: o.DryRun}
		if err := syncOne(ctx, api, live, want, pol, o, &oc); err != nil {
			oc.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s in %s/%s: %w", want.Name, account, region, err))
		}
		out = append(out, oc)
	}
	declared := map[string]bool{}
	for _, w := range wants {
		declared[w.Name] = true
	}
	var orphans []string
	for name := range live.managed {
		if !declared[name] {
			orphans = append(orphans, name)
		}
	}
	sort.Strings(orphans)
	for _, name := range orphans {
		m := live.managed[name]
		oc := Outcome{Policy: m.Policy, Account: account, Region: region, Baseline: name, BaselineID: m.ID, Action: Orphan, DryRun: o.DryRun}
		if o.Prune {
			oc.Action = Prune
			if err := prune(ctx, api, m.ID, o.DryRun, &oc); err != nil {
				oc.Error = err.Error()
				errs = append(errs, fmt.Errorf("pruning %s in %s/%s: %w", name, account, region, err))
			}
		}
		out = append(out, oc)
	}
	return out, errors.Join(errs...)
}

func syncOne(ctx context.Context, api API, live *Live, want Definition, pol string, o Options, oc *Outcome) error {
	id, changes, register, deregister, err := Drift(ctx, api, live, want)
	oc.BaselineID, oc.Changes, oc.Register, oc.Deregister = id, changes, register, deregister
	if err != nil {
		return err
	}
	switch {
	case id == "":
		oc.Action = Create
	case len(changes) > 0:
		oc.Action = Update
		for _, c := range changes {
			if c.Field == "operatingSystem" {
				return fmt.Errorf("the live baseline is for %s and the policy says %s; SSM cannot change a baseline's operating system: delete %s (or rename the policy) and sync again",
					c.Live, c.Want, id)
			}
		}
	default:
		oc.Action = NoChange
	}
	if o.DryRun {
		return nil
	}
	switch oc.Action {
	case Create:
		out, err := api.CreatePatchBaseline(ctx, &ssm.CreatePatchBaselineInput{
			Name: aws.String(want.Name), OperatingSystem: ssmtypes.OperatingSystem(want.OperatingSystem), Description: aws.String(want.Description),
			ApprovalRules: want.ruleGroup(), ApprovedPatches: want.ApprovedPatches, RejectedPatches: want.RejectedPatches,
			RejectedPatchesAction: ssmtypes.PatchAction(want.RejectedPatchesAction), ClientToken: aws.String(clientToken(o.Token, want.Name)),
			Tags: []ssmtypes.Tag{{Key: aws.String(ManagedByTag), Value: aws.String(ManagedByValue)}, {Key: aws.String(PolicyTag), Value: aws.String(pol)}},
		})
		if err != nil {
			return fmt.Errorf("creating with ssm:CreatePatchBaseline: %w", err)
		}
		oc.BaselineID = aws.ToString(out.BaselineId)
	case Update:
		// Replace: members the policy leaves out are cleared, not kept.
		_, err := api.UpdatePatchBaseline(ctx, &ssm.UpdatePatchBaselineInput{
			BaselineId: aws.String(id), Name: aws.String(want.Name), Description: aws.String(want.Description), ApprovalRules: want.ruleGroup(),
			ApprovedPatches: want.ApprovedPatches, RejectedPatches: want.RejectedPatches, RejectedPatchesAction: ssmtypes.PatchAction(want.RejectedPatchesAction),
			Replace: aws.Bool(true),
		})
		if err != nil {
			return fmt.Errorf("updating %s with ssm:UpdatePatchBaseline: %w", id, err)
		}
	}
	for _, g := range oc.Deregister {
		if _, err := api.DeregisterPatchBaselineForPatchGroup(ctx, &ssm.DeregisterPatchBaselineForPatchGroupInput{BaselineId: aws.String(oc.BaselineID), PatchGroup: aws.String(g)}); err != nil {
			return fmt.Errorf("deregistering patch group %q: %w", g, err)
		}
	}
	for _, g := range oc.Register {
		_, err := api.RegisterPatchBaselineForPatchGroup(ctx, &ssm.RegisterPatchBaselineForPatchGroupInput{BaselineId: aws.String(oc.BaselineID), PatchGroup: aws.String(g)})
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "AlreadyExistsException" {
			holder := "another baseline"
			if cur, gerr := api.GetPatchBaselineForPatchGroup(ctx, &ssm.GetPatchBaselineForPatchGroupInput{PatchGroup: aws.String(g),
				OperatingSystem: ssmtypes.OperatingSystem(want.OperatingSystem)}); gerr == nil {
				holder = aws.ToString(cur.BaselineId)
			}
			return fmt.Errorf("patch group %q is registered to %s for %s: deregister it there (ssm deregister-patch-baseline-for-patch-group) and sync again",
				g, holder, want.OperatingSystem)
		}
		if err != nil {
			return fmt.Errorf("registering patch group %q: %w", g, err)
		}
	}
	return nil
}

func prune(ctx context.Context, api API, id string, dryRun bool, oc *Outcome) error {
	got, err := api.GetPatchBaseline(ctx, &ssm.GetPatchBaselineInput{BaselineId: aws.String(id)})
	if err != nil {
		return fmt.Errorf("reading %s: %w", id, err)
	}
	oc.Deregister = got.PatchGroups
	if dryRun {
		return nil
	}
	for _, g := range got.PatchGroups {
		if _, err := api.DeregisterPatchBaselineForPatchGroup(ctx, &ssm.DeregisterPatchBaselineForPatchGroupInput{BaselineId: aws.String(id), PatchGroup: aws.String(g)}); err != nil {
			return fmt.Errorf("deregistering patch group %q: %w", g, err)
		}
	}
	if _, err := api.DeletePatchBaseline(ctx, &ssm.DeletePatchBaselineInput{BaselineId: aws.String(id)}); err != nil {
		return fmt.Errorf("deleting with ssm:DeletePatchBaseline: %w", err)
	}
	return nil
}

// clientToken is CreatePatchBaseline's idempotency token: the same sync
// retried creates one baseline, a later sync (new token) may create again
// after a manual delete. SSM takes at most 64 characters.
func clientToken(token, name string) string {
	h := sha256.Sum256([]byte(token + "\x00" + name))
	return hex.EncodeToString(h[:])[:32]
}

// Managed lists the managed baselines, by name.
func (l *Live) Managed() []Managed {
	out := make([]Managed, 0, len(l.managed))
	for _, m := range l.managed {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
