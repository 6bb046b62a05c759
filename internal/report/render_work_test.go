package report_test

import (
	"encoding/json"
	"testing"

	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
	"github.com/patchgate/patchgate/internal/result/resulttest"
)

// TestRenderWorkIsBounded: a report shows a few hundred rows whatever the
// fleet's size, so rendering one must do no work per instance or per finding
// beyond counting (issue #19: the summary of a realistic 50,000-instance run
// took as long as json.Marshal of it, formatting and escaping a row for each
// of its 1.5 million findings to show 100 of them). Work is counted in
// allocations, not timed. A report allocates at most a third of what
// json.Marshal of the same run does; and from 2,000 to 6,000 instances, where
// json.Marshal allocates about 6 more times an instance, a report grows by
// at most a quarter of that (its lists filling up to their caps), where a
// row formatted per finding would be hundreds more an instance.
func TestRenderWorkIsBounded(t *testing.T) {
	for _, l := range listings {
		small := resulttest.Realistic(resulttest.Fleet{Seed: 3, Instances: 2000, Targets: 8, Listing: l.l})
		large := resulttest.Realistic(resulttest.Fleet{Seed: 3, Instances: 6000, Targets: 8, Listing: l.l})
		allocs := func(render func(*result.Run) string) (float64, float64) {
			return testing.AllocsPerRun(1, func() { render(small) }), testing.AllocsPerRun(1, func() { render(large) })
		}
		js, jl := allocs(func(r *result.Run) string {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			return string(b[:0])
		})
		if jl-js < 2000 {
			t.Fatalf("%s: json.Marshal allocated %.0f at 2,000 instances and %.0f at 6,000: the comparison needs a marshal that grows with the fleet", l.name, js, jl)
		}
		for _, k := range []struct {
			name   string
			render func(*result.Run) string
		}{
			{"summary", func(r *result.Run) string { return report.Run(r, report.Summary) }},
			{"comment", func(r *result.Run) string { return report.Run(r, report.Comment) }},
			{"policy comment", func(r *result.Run) string { return report.RunComment(r, "fleet") }},
		} {
			rs, rl := allocs(k.render)
			t.Logf("%s %s: %.0f allocations at 2,000 instances, %.0f at 6,000; json.Marshal %.0f and %.0f", l.name, k.name, rs, rl, js, jl)
			if rs > js/3 || rl > jl/3 {
				t.Errorf("%s %s: %.0f and %.0f allocations, more than a third of json.Marshal's", l.name, k.name, rs, rl)
			}
			if rl-rs > (jl-js)/4 {
				t.Errorf("%s %s: %.0f more allocations for 4,000 more instances, json.Marshal %.0f more: the report does work per instance or finding", l.name, k.name, rl-rs, jl-js)
			}
		}
	}
}
