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
// realistic 50,000-instance run, with every finding listed (as verify lists
// them today) and with only the findings the gate judges (the smaller JSON,
// so the harder ratio). x-json is the render's time over json.Marshal's of
// the same run in the same process (the fastest of three), the figure issue
// #19 holds to 3; ns/op is the render's alone.
func BenchmarkRunSummary50k(b *testing.B) {
	for _, l := range listings {
		r := realistic50k(l.l)
		marshal := time.Duration(0)
		for range 3 {
			t0 := time.Now()
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
			if d := time.Since(t0); marshal == 0 || d < marshal {
				marshal = d
			}
		}
		for _, k := range []struct {
			name string
			kind report.Kind
		}{{"summary", report.Summary}, {"comment", report.Comment}} {
			b.Run(l.name+"/"+k.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = report.Run(r, k.kind)
				}
				b.ReportMetric(float64(marshal.Nanoseconds()), "json-ns")
				b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(marshal), "x-json")
			})
		}
	}
}
