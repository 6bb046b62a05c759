package awssim

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// What the bench reads of the fleet: the rescan after a patch stays put
// while lastScannedAt moves on with later passes, and the finding specs
// are the scenario's and the model's.
func TestBenchView(t *testing.T) {
	for _, real := range []bool{true, false} {
		var r *Realism
		if real {
			r = Realistic(5)
		}
		s, ep, clk := realSim(t, r, 2)
		in := s.Instances("111122223333", "us-east-1")[0]
		if _, ok := in.RescanAfterPatch(); ok {
			t.Fatalf("realism %v: a rescan before any patch", real)
		}
		ctx := context.Background()
		out, err := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1")).SendCommand(ctx, sendTo([]string{in.ID}, "patch"))
		if err != nil {
			t.Fatal(err)
		}
		_, ended, ok := s.CommandSpan(aws.ToString(out.Command.CommandId))
		if !ok {
			t.Fatal("command never ends")
		}
		want := ended.Add(in.ScanDelay)
		if real {
			want = s.real.firstPass(s.origin, in.num, ended)
		}
		insp := inspector2.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
		clk.Advance(want.Sub(clk.Now()))
		for _, at := range []time.Duration{0, 2 * time.Hour} {
			clk.Advance(at)
			got, ok := in.RescanAfterPatch()
			cov, err := insp.ListCoverage(ctx, &inspector2.ListCoverageInput{})
			if err != nil {
				t.Fatal(err)
			}
			var scanned time.Time
			for _, c := range cov.CoveredResources {
				if aws.ToString(c.ResourceId) == in.ID {
					scanned = aws.ToTime(c.LastScannedAt)
				}
			}
			// At the rescan lastScannedAt is it; two hours on (realism) it
			// has moved on, the rescan has not.
			if !ok || !got.Equal(want) || at == 0 && !scanned.Equal(want) || real && at > 0 && !scanned.After(want) {
				t.Errorf("realism %v, %s after the rescan: rescan %s (%v), lastScannedAt %s; want %s", real, at, got, ok, scanned, want)
			}
		}
		if _, ok := s.Instances("111122223333", "us-east-1")[1].RescanAfterPatch(); ok {
			t.Errorf("realism %v: a rescan on an instance never patched", real)
		}
		in.Findings = []FindingSpec{{CVE: "CVE-1", Severity: "HIGH"}}
		n := 0
		in.EachFindingSpec(func(FindingSpec) { n++ })
		want2 := 1
		if real {
			want2 += s.real.findingCount(in.num)
		}
		if n != want2 || real && n < 2 {
			t.Errorf("realism %v: %d finding specs, want %d", real, n, want2)
		}
	}
}
