package plan_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/policy"
)

// renameSets is a base of 2n policies (old-i, each in its own file) and a
// head where every one moved to a new file under a new name: the first n
// with their spec unchanged (renames), the other n edited too (a removal
// and an addition each).
func renameSets(t testing.TB, n int) (base, head []*policy.Policy) {
	src, err := os.ReadFile("../../policies/web-fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(file, name, maxErrors string) *policy.Policy {
		text := strings.Replace(string(src), "name: web-fleet", "name: "+name, 1)
		text = strings.Replace(text, `maxErrors: "2%"`, `maxErrors: "`+maxErrors+`"`, 1)
		p, probs := policy.Parse(file, []byte(text))
		if len(probs) > 0 {
			t.Fatal(probs.Error())
		}
		return p
	}
	for i := range 2 * n {
		base = append(base, parse(fmt.Sprintf("old/%d.yaml", i), fmt.Sprintf("old-%d", i), fmt.Sprint(i)))
		edited := fmt.Sprint(i)
		if i >= n {
			edited = fmt.Sprint(100000 + i)
		}
		head = append(head, parse(fmt.Sprintf("new/%d.yaml", i), fmt.Sprintf("new-%d", i), edited))
	}
	return base, head
}

// TestDiffRenamesScale: a rename is found by file, then by identical spec,
// for each new policy the first removed one not yet taken; the work is
// linear in the policies. Comparing every new policy with every removed
// one (marshalling both specs each time) made 1,000 renames take 20 s. Work
// is counted in allocations: ten times the policies may cost ten times the
// allocations, with room, not a hundred.
func TestDiffRenamesScale(t *testing.T) {
	base, head := renameSets(t, 20)
	got := map[string]string{}
	for _, d := range plan.Diff(base, head) {
		got[d.Name] = string(d.Status) + " " + d.OldName
	}
	for i := range 40 {
		want := fmt.Sprintf("renamed old-%d", i)
		if i >= 20 {
			want = "added "
			if g := got[fmt.Sprintf("old-%d", i)]; g != "removed " {
				t.Errorf("old-%d: %q, want removed", i, g)
			}
		}
		if g := got[fmt.Sprintf("new-%d", i)]; g != want {
			t.Errorf("new-%d: %q, want %q", i, g, want)
		}
	}

	small := testing.AllocsPerRun(1, func() { plan.Diff(base, head) })
	bigBase, bigHead := renameSets(t, 200)
	large := testing.AllocsPerRun(1, func() { plan.Diff(bigBase, bigHead) })
	t.Logf("%.0f allocations for 40 renamed policies, %.0f for 400", small, large)
	if large > 20*small {
		t.Errorf("%.0f allocations for 40 renamed policies, %.0f for 400: the rename search is not linear", small, large)
	}
}

// BenchmarkDiffRenames: 1,000 policies moved to new files under new names,
// half of them edited too (20 s a Diff when every new policy was compared
// with every removed one).
func BenchmarkDiffRenames(b *testing.B) {
	base, head := renameSets(b, 500)
	b.ReportAllocs()
	for b.Loop() {
		plan.Diff(base, head)
	}
}
