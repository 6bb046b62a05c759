package report_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
	"github.com/patchgate/patchgate/internal/result/resulttest"
)

// realistic50k is the bench's large case as its result looks (issue #19):
// 50,000 instances over 8 account-regions, a staging ring and three
// production waves, failures with hostile output, about 30 findings an
// instance with a long tail, pending reboots, lost agents, reasons.
func realistic50k(l resulttest.Listing) *result.Run {
	return resulttest.Realistic(resulttest.Fleet{Seed: 19, Instances: 50000, Targets: 8, Listing: l})
}

var listings = []struct {
	name string
	l    resulttest.Listing
}{{"all-findings", resulttest.AllFindings}, {"gate-findings", resulttest.GateFindings}}

// BenchmarkRunSummary50k renders the job summary and the comment of a
// realistic 50,000-instance run, and json.Marshal of the same run in the
// same loop, so that the ratio (x-json: render time over marshal time, the
// figure issue #19 holds to 3) does not depend on the machine or its load.
// ns/op is the render's alone.
func BenchmarkRunSummary50k(b *testing.B) {
	for _, l := range listings {
		r := realistic50k(l.l)
		for _, k := range []struct {
			name string
			kind report.Kind
		}{{"summary", report.Summary}, {"comment", report.Comment}} {
			b.Run(l.name+"/"+k.name, func(b *testing.B) {
				b.ReportAllocs()
				var render, marshal time.Duration
				for b.Loop() {
					b.StopTimer()
					t0 := time.Now()
					if _, err := json.Marshal(r); err != nil {
						b.Fatal(err)
					}
					marshal += time.Since(t0)
					b.StartTimer()
					t1 := time.Now()
					_ = report.Run(r, k.kind)
					render += time.Since(t1)
				}
				b.ReportMetric(float64(marshal.Nanoseconds())/float64(b.N), "json-ns/op")
				b.ReportMetric(float64(render)/float64(marshal), "x-json")
			})
		}
	}
}
