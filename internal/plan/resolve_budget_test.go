package plan_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/policy"
)

// spread is the example web-fleet policy called name, in accounts x regions
// (region names of the right shape; none is read).
func spread(t *testing.T, name string, accounts, regions int) *policy.Policy {
	t.Helper()
	src, err := os.ReadFile("../../policies/web-fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var accts strings.Builder
	for i := range accounts {
		fmt.Fprintf(&accts, "    - id: \"%012d\"\n", i+1)
	}
	regs := make([]string, regions)
	for i := range regs {
		regs[i] = fmt.Sprintf("xx-%c%c-1", 'a'+i/26, 'a'+i%26)
	}
	text := strings.Replace(string(src), "name: web-fleet", "name: "+name, 1)
	from, to := strings.Index(text, "  accounts:\n"), strings.Index(text, "  phases:\n")
	text = text[:from] + "  accounts:\n" + accts.String() + "  regions: [" + strings.Join(regs, ", ") + "]\n" + text[to:]
	p, probs := policy.Parse(name+".yaml", []byte(text))
	if len(probs) > 0 {
		t.Fatalf("%.1000s", probs.Error())
	}
	return p
}

// TestResolveReadsAtMostMaxResolved: a policy's accounts and regions are
// lists of any length, so what plan --aws reads grows with their product (a
// 29 KB policy asked for 100,000 connections). A plan reads at most
// MaxResolved account-regions, policy by policy in name order; a policy
// that does not fit is not read at all, says so in its targets, and the
// plan notes what was left out.
func TestResolveReadsAtMostMaxResolved(t *testing.T) {
	if plan.MaxResolved != 10000 {
		t.Fatalf("the sizes below are for MaxResolved 10,000, not %d", plan.MaxResolved)
	}
	head := &policy.Set{Policies: []*policy.Policy{
		spread(t, "a-half", 100, 60), // 6,000: read
		spread(t, "b-half", 100, 60), // 6,000: over the 4,000 left
		spread(t, "c-small", 2, 2),   // 4: read
	}}
	p := plan.New("main", "", nil, head)
	var mu sync.Mutex
	calls := map[string]int{}
	p.Resolve(context.Background(), head, func(_ context.Context, account, _, _ string) (*plan.Clients, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[account]++
		return nil, errors.New("no credentials here")
	}, true, 8)
	total := 0
	for _, n := range calls {
		total += n
	}
	if total != 6004 {
		t.Errorf("%d account-regions connected to, want 6,004 (a-half and c-small)", total)
	}
	for _, pp := range p.Policies {
		switch pp.Name {
		case "a-half":
			if len(pp.Targets) != 6000 {
				t.Errorf("a-half: %d targets, want one per account-region", len(pp.Targets))
			}
		case "b-half":
			if len(pp.Targets) != 1 || !strings.Contains(pp.Targets[0].Error, "not read: 100 accounts x 60 regions, over the 10000 account-regions one plan reads (4000 left)") {
				t.Errorf("b-half: targets %+v", pp.Targets)
			}
		case "c-small":
			if len(pp.Targets) != 4 {
				t.Errorf("c-small: %d targets, want 4", len(pp.Targets))
			}
		}
	}
	if want := "1 policy was not read from AWS: a plan reads at most 10000 account-regions; the first: b-half"; !strings.Contains(strings.Join(p.Unchecked, "\n"), want) {
		t.Errorf("unchecked %q, want %q", p.Unchecked, want)
	}
}
