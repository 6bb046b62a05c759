package awssim

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/patchgate/patchgate/internal/clock"
)

var realStart = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// realSim serves a realistic fleet of n instances (one account-region) on
// a step clock over loopback.
func realSim(t *testing.T, r *Realism, n int) (*Sim, string, *clock.Step) {
	t.Helper()
	clk := clock.NewStep(realStart)
	sc := &Scenario{Accounts: []string{"111122223333"}, Realism: r,
		Groups: []Group{{Region: "us-east-1", Count: n, Name: "web", Tags: map[string]string{"App": "web"}, Missing: 5}}}
	s := New(sc, clk)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL, clk
}

// Same seed, same draws, whatever the order they are asked in; another
// seed, other draws.
func TestRealismSameSeedSameDraws(t *testing.T) {
	type draw struct {
		c     course
		count int
		pass  time.Time
		first FindingSpec
	}
	drawAll := func(r *Realism, order []int) map[int]draw {
		cat := r.catalogue()
		out := map[int]draw{}
		for _, n := range order {
			out[n] = draw{r.course(n, 0, 5, true), r.findingCount(n), r.lastPass(realStart, n, realStart.Add(5*time.Hour)), r.finding(cat, n, 0)}
		}
		return out
	}
	fwd := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	rev := slices.Clone(fwd)
	slices.Reverse(rev)
	a, b := drawAll(Realistic(7), fwd), drawAll(Realistic(7), rev)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different draws in another order")
	}
	if reflect.DeepEqual(a, drawAll(Realistic(8), fwd)) {
		t.Fatal("seeds 7 and 8 gave the same draws")
	}
	if reflect.DeepEqual(Realistic(7).course(1, 0, 5, true), Realistic(7).course(1, 1, 5, true)) {
		t.Fatal("a second install of the same instance drew the same course")
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

// The patch-time distribution: median 25-30 min, clipped to 5-90 min but
// for a slow share of about 1.5% up to 3 h; agent delays of seconds to
// minutes; reboots of 2-8 min for about half the instances with patches.
func TestRealismPatchDistribution(t *testing.T) {
	r := Realistic(1)
	const n = 20000
	var runs, delays []time.Duration
	slow, reboots, failed := 0, 0, 0
	for i := 1; i <= n; i++ {
		c := r.course(i, 0, 5, true)
		if c.outcome == "Failed" {
			failed++
			continue
		}
		run := c.run - c.reboot
		runs = append(runs, run)
		delays = append(delays, c.delay)
		if c.reboot > 0 {
			reboots++
			if c.reboot < 2*time.Minute || c.reboot > 8*time.Minute {
				t.Fatalf("reboot of %s outside 2-8 min", c.reboot)
			}
		}
		switch {
		case run > 3*time.Hour || run < 5*time.Minute:
			t.Fatalf("install of %s outside 5 min - 3 h", run)
		case run > 90*time.Minute:
			slow++
		}
	}
	med := quantile(runs, 0.5)
	if med < 25*time.Minute || med > 30*time.Minute {
		t.Errorf("median install %s, want 25-30 min", med)
	}
	if q := quantile(runs, 0.9); q < 40*time.Minute {
		t.Errorf("90th percentile %s: no long tail", q)
	}
	if share := float64(slow) / n; share < 0.01 || share > 0.02 {
		t.Errorf("slow share %.4f, want about 0.015", share)
	}
	if share := float64(reboots) / n; share < 0.45 || share > 0.55 {
		t.Errorf("reboot share %.3f, want about 0.5", share)
	}
	if share := float64(failed) / n; share < 0.0015 || share > 0.0045 {
		t.Errorf("failure share %.4f, want about 0.003", share)
	}
	if d := quantile(delays, 0.5); d < 10*time.Second || d > 20*time.Second {
		t.Errorf("median agent delay %s, want about 15 s", d)
	}
	if d := quantile(delays, 1); d != 3*time.Minute {
		t.Errorf("longest agent delay %s, want the 3 min cap reached", d)
	}
	// Without RebootIfNeeded, or with nothing to install, no reboot.
	for i := 1; i <= 1000; i++ {
		if r.course(i, 0, 5, false).reboot != 0 || r.course(i, 0, 0, true).reboot != 0 {
			t.Fatal("a reboot without RebootIfNeeded or without missing patches")
		}
	}
	// Shares are configurable, -1 meaning none.
	none := &Realism{Seed: 1, FailureShare: -1, TimeoutShare: -1, UndeliverableShare: -1}
	none.fill()
	for i := 1; i <= n; i++ {
		if o := none.course(i, 0, 5, true).outcome; o != "" {
			t.Fatalf("instance %d: %s with every share off", i, o)
		}
	}
}

// Findings per instance: mean about 30, a tail to (not past) 300, mostly
// LOW and MEDIUM, some without a fix, no CVE twice on one instance.
func TestRealismFindingDistribution(t *testing.T) {
	r := Realistic(1)
	cat := r.catalogue()
	const n = 20000
	total, most := 0, 0
	sev := map[string]int{}
	fix := map[string]int{}
	for i := 1; i <= n; i++ {
		c := r.findingCount(i)
		total += c
		most = max(most, c)
		if i <= 2000 {
			seen := map[string]bool{}
			for j := 0; j < c; j++ {
				f := r.finding(cat, i, j)
				if seen[f.CVE] {
					t.Fatalf("instance %d has %s twice", i, f.CVE)
				}
				seen[f.CVE] = true
				sev[f.Severity]++
				fix[f.Fix]++
			}
		}
	}
	if mean := float64(total) / n; mean < 27 || mean > 33 {
		t.Errorf("mean findings %.1f, want about 30", mean)
	}
	if most < 200 || most > 300 {
		t.Errorf("largest instance has %d findings, want a tail to 300", most)
	}
	all := 0
	for _, v := range sev {
		all += v
	}
	if low := float64(sev["LOW"]+sev["MEDIUM"]) / float64(all); low < 0.7 {
		t.Errorf("LOW+MEDIUM share %.2f, want most", low)
	}
	if sev["CRITICAL"] == 0 || sev["HIGH"] == 0 || fix["NO"] == 0 || fix["PARTIAL"] == 0 {
		t.Errorf("severities %v, fixes %v: want some CRITICAL, HIGH, NO and PARTIAL", sev, fix)
	}
}

// An instance's rescan is its first inventory pass after the patch ends,
// not a fixed delay: lastScannedAt moves every pass, and the findings the
// patch fixed close at that pass and not before.
func TestRealismRescanAtFirstInventoryPassAfterPatch(t *testing.T) {
	r := Realistic(3)
	r.FindingsMean = -1 // only the scenario's finding below
	s, ep, clk := realSim(t, r, 1)
	s.sc.Groups[0].Findings = nil
	in := s.Instances("111122223333", "us-east-1")[0]
	in.Findings = []FindingSpec{{CVE: "CVE-2024-6387", Severity: "CRITICAL", Package: "openssh-server"}}
	ctx := context.Background()
	c := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	out, err := c.SendCommand(ctx, sendTo([]string{in.ID}, "patch"))
	if err != nil {
		t.Fatal(err)
	}
	_, ended, ok := s.CommandSpan(aws.ToString(out.Command.CommandId))
	if !ok {
		t.Fatal("command never ends")
	}
	rescan := s.real.firstPass(s.origin, in.num, ended)
	if !rescan.After(ended) || rescan.Sub(ended) > 30*time.Minute+3*time.Minute {
		t.Fatalf("first pass %s after the end %s: want within one interval plus jitter", rescan, ended)
	}
	prev := s.real.lastPass(s.origin, in.num, ended)
	insp := inspector2.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	look := func() (time.Time, insptypes.FindingStatus) {
		t.Helper()
		cov, err := insp.ListCoverage(ctx, &inspector2.ListCoverageInput{})
		if err != nil || len(cov.CoveredResources) != 1 {
			t.Fatalf("coverage: %v", err)
		}
		fs, err := insp.ListFindings(ctx, &inspector2.ListFindingsInput{})
		if err != nil || len(fs.Findings) != 1 {
			t.Fatalf("findings: %v", err)
		}
		return aws.ToTime(cov.CoveredResources[0].LastScannedAt), fs.Findings[0].Status
	}
	for _, tc := range []struct {
		at       time.Time
		scanned  time.Time
		status   insptypes.FindingStatus
		describe string
	}{
		{ended.Add(-time.Second), prev, insptypes.FindingStatusActive, "just before the patch ends"},
		{rescan.Add(-time.Second), prev, insptypes.FindingStatusActive, "after the patch, before the next pass"},
		{rescan, rescan, insptypes.FindingStatusClosed, "at the first pass after the patch"},
	} {
		clk.Advance(tc.at.Sub(clk.Now()))
		scanned, status := look()
		if !scanned.Equal(tc.scanned) || status != tc.status {
			t.Errorf("%s: lastScannedAt %s, %s; want %s, %s", tc.describe, scanned, status, tc.scanned, tc.status)
		}
	}
	// Passes keep coming about every 30 minutes.
	later := s.real.lastPass(s.origin, in.num, rescan.Add(2*time.Hour))
	if d := later.Sub(rescan); d < 90*time.Minute-6*time.Minute || d > 2*time.Hour {
		t.Errorf("two hours on, the last pass is %s after the rescan", d)
	}
}

// ListFindings over generated findings, filtered and paginated, returns
// exactly what a brute-force filter over every finding returns.
func TestRealismListFindingsFiltersLikeBruteForce(t *testing.T) {
	// Unlimited: the step clock does not move while the SDK backs off.
	s, ep, clk := realSim(t, &Realism{Seed: 5, RateLimits: map[string]float64{"inspector2:ListFindings": -1}}, 60)
	ctx := context.Background()
	c := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	all := ids(s)
	if _, err := c.SendCommand(ctx, sendTo(all[:30], "half"), once); err != nil {
		t.Fatal(err)
	}
	clk.Advance(6 * time.Hour) // the first half patched and rescanned
	insp := inspector2.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	str := func(v ...string) []insptypes.StringFilter {
		var out []insptypes.StringFilter
		for _, x := range v {
			out = append(out, insptypes.StringFilter{Comparison: insptypes.StringComparisonEquals, Value: aws.String(x)})
		}
		return out
	}
	// A CVE that occurs: the first finding of the first instance.
	cve := s.real.finding(s.catalogue, s.byID[all[0]].num, 0).CVE
	for _, tc := range []struct {
		name string
		fc   *insptypes.FilterCriteria
	}{
		{"none", nil},
		{"severity at or above HIGH, active, fix available", &insptypes.FilterCriteria{Severity: str("CRITICAL", "HIGH"),
			FindingStatus: str("ACTIVE"), FixAvailable: str("YES", "PARTIAL")}},
		{"closed", &insptypes.FilterCriteria{FindingStatus: str("CLOSED")}},
		{"no fix", &insptypes.FilterCriteria{FixAvailable: str("NO")}},
		{"one CVE", &insptypes.FilterCriteria{VulnerabilityId: str(cve)}},
		{"some instances", &insptypes.FilterCriteria{ResourceId: str(all[3], all[40], all[59])}},
		{"not LOW", &insptypes.FilterCriteria{Severity: []insptypes.StringFilter{{Comparison: insptypes.StringComparisonNotEquals, Value: aws.String("LOW")}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Brute force: every finding of every instance, through the JSON
			// the handler reads, matched one by one.
			var want []string
			crit := criteriaOf(tc.fc)
			for _, in := range s.Instances("111122223333", "us-east-1") {
				if !crit.instance(in) {
					continue
				}
				in.eachFinding(clk.Now(), 0, func(j int, f findingView) bool {
					if crit.finding(f) {
						want = append(want, in.ID+" "+f.spec.CVE+" "+f.status)
					}
					return true
				})
			}
			var got []string
			p := inspector2.NewListFindingsPaginator(insp, &inspector2.ListFindingsInput{FilterCriteria: tc.fc, MaxResults: aws.Int32(37)})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range page.Findings {
					got = append(got, aws.ToString(f.Resources[0].Id)+" "+aws.ToString(f.PackageVulnerabilityDetails.VulnerabilityId)+" "+string(f.Status))
				}
			}
			if len(want) == 0 {
				t.Fatal("the filter matches nothing: the case tests nothing")
			}
			sort.Strings(want)
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Fatalf("listed %d findings, brute force %d", len(got), len(want))
			}
		})
	}
}

// criteriaOf is the simulator's reading of SDK filter criteria, built by
// hand so that the brute force does not share the handler's decoding.
func criteriaOf(fc *insptypes.FilterCriteria) *findingCriteria {
	out := &findingCriteria{}
	if fc == nil {
		return out
	}
	conv := func(fs []insptypes.StringFilter) []strFilter {
		var o []strFilter
		for _, f := range fs {
			o = append(o, strFilter{Comparison: string(f.Comparison), Value: aws.ToString(f.Value)})
		}
		return o
	}
	out.ResourceId, out.FindingStatus, out.Severity = conv(fc.ResourceId), conv(fc.FindingStatus), conv(fc.Severity)
	out.FixAvailable, out.VulnerabilityId = conv(fc.FixAvailable), conv(fc.VulnerabilityId)
	return out
}

// Above an operation's rate in one account-region the call is answered
// ThrottlingException, counted by Throttled; another account-region has
// its own budget; without realism nothing is limited.
func TestRealismRateLimitsPerAccountRegion(t *testing.T) {
	r := &Realism{Seed: 1, RateLimits: map[string]float64{"ssm:DescribeInstanceInformation": 3}}
	clk := clock.NewStep(realStart)
	sc := &Scenario{Accounts: []string{"111122223333"}, Realism: r, Groups: []Group{
		{Region: "us-east-1", Count: 2, Name: "a"}, {Region: "eu-west-1", Count: 2, Name: "b"}}}
	s := New(sc, clk)
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := context.Background()
	call := func(region string) error {
		c := ssm.NewFromConfig(Config(srv.URL, "111122223333", region))
		_, err := c.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{}, once)
		return err
	}
	throttled := func(err error) bool {
		var ae smithy.APIError
		return errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException"
	}
	for i := 0; i < 3; i++ {
		if err := call("us-east-1"); err != nil {
			t.Fatalf("call %d within the rate: %v", i+1, err)
		}
	}
	if err := call("us-east-1"); !throttled(err) {
		t.Fatalf("a fourth call in the same second: %v, want ThrottlingException", err)
	}
	if err := call("eu-west-1"); err != nil {
		t.Fatalf("another region has its own budget: %v", err)
	}
	if got := s.Throttled()["ssm:DescribeInstanceInformation"]; got != 1 {
		t.Fatalf("Throttled counts %d, want 1", got)
	}
	clk.Advance(time.Second)
	if err := call("us-east-1"); err != nil {
		t.Fatalf("a second later: %v", err)
	}
	// The defaults limit the operations patchgate uses.
	for _, op := range []string{"ssm:SendCommand", "ssm:ListCommands", "ssm:GetCommandInvocation", "ssm:DescribeInstanceInformation",
		"ssm:DescribeInstancePatchStates", "inspector2:ListFindings", "inspector2:ListCoverage"} {
		if s.real.RateLimits[op] <= 0 {
			t.Errorf("no default rate limit for %s", op)
		}
	}
}

// Invocations as they look on the wire: Pending while the agent has not
// started, InProgress, then their drawn outcome; ExecutionTimedOut counts
// as an error, DeliveryTimedOut apart; other tools' commands are listed.
func TestRealismInvocationsOnTheWire(t *testing.T) {
	r := Realistic(11)
	r.FailureShare, r.TimeoutShare, r.UndeliverableShare = 0.2, 0.2, 0.2
	s, ep, clk := realSim(t, r, 50)
	ctx := context.Background()
	c := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	out, err := c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPatchBaseline"), InstanceIds: ids(s),
		Parameters: map[string][]string{"Operation": {"Install"}}, MaxErrors: aws.String("100%"), TimeoutSeconds: aws.Int32(600)})
	if err != nil {
		t.Fatal(err)
	}
	id := out.Command.CommandId
	status := func() map[string]int {
		got := map[string]int{}
		p := ssm.NewListCommandInvocationsPaginator(c, &ssm.ListCommandInvocationsInput{CommandId: id})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, inv := range page.CommandInvocations {
				got[string(inv.Status)+"/"+aws.ToString(inv.StatusDetails)]++
			}
		}
		return got
	}
	if st := status(); st["Pending/Pending"] != 50 {
		t.Fatalf("at send: %v, want every invocation Pending", st)
	}
	clk.Advance(time.Minute)
	st := status()
	if st["InProgress/InProgress"] == 0 || st["Pending/Pending"] == 0 || st["Delayed/Delayed"] == 0 {
		t.Fatalf("a minute in: %v, want some started, some not yet, some undelivered", st)
	}
	clk.Advance(5 * time.Hour)
	st = status()
	for _, k := range []string{"Success/Success", "Failed/Failed", "TimedOut/ExecutionTimedOut", "TimedOut/DeliveryTimedOut"} {
		if st[k] == 0 {
			t.Errorf("at the end: %v, want some %s", st, k)
		}
	}
	cmds, err := c.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: id})
	if err != nil {
		t.Fatal(err)
	}
	cmd := cmds.Commands[0]
	if int(cmd.ErrorCount) != st["Failed/Failed"]+st["TimedOut/ExecutionTimedOut"] || int(cmd.DeliveryTimedOutCount) != st["TimedOut/DeliveryTimedOut"] {
		t.Errorf("counts %d errors, %d undelivered; invocations %v", cmd.ErrorCount, cmd.DeliveryTimedOutCount, st)
	}
	// Other tools' commands: about 4 an hour from two hours before the start.
	all, err := c.ListCommands(ctx, &ssm.ListCommandsInput{MaxResults: aws.Int32(50)})
	if err != nil {
		t.Fatal(err)
	}
	others := 0
	for _, cm := range all.Commands {
		if aws.ToString(cm.DocumentName) != "AWS-RunPatchBaseline" {
			others++
		}
	}
	if others < 10 || others > 50 {
		t.Errorf("%d other tools' commands over 7 hours, want about 28", others)
	}
	patch, err := c.ListCommands(ctx, &ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{{Key: ssmtypes.CommandFilterKeyDocumentName, Value: aws.String("AWS-RunPatchBaseline")}}})
	if err != nil || len(patch.Commands) != 1 {
		t.Fatalf("filtered by document: %v, %d commands", err, len(patch.Commands))
	}
}

// Without realism the simulator keeps its regular model: every install
// takes PatchDuration, starts at once, and ListCommands lists only what
// was sent.
func TestNilRealismKeepsTheRegularModel(t *testing.T) {
	s, ep, clk := realSim(t, nil, 20)
	ctx := context.Background()
	c := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	out, err := c.SendCommand(ctx, sendTo(ids(s), "regular"))
	if err != nil {
		t.Fatal(err)
	}
	sent, ended, ok := s.CommandSpan(aws.ToString(out.Command.CommandId))
	if !ok || ended.Sub(sent) != 40*time.Minute {
		t.Fatalf("span %s, want the default 40 min for all", ended.Sub(sent))
	}
	clk.Advance(6 * time.Hour)
	all, err := c.ListCommands(ctx, &ssm.ListCommandsInput{})
	if err != nil || len(all.Commands) != 1 {
		t.Fatalf("%v, %d commands listed, want only the one sent", err, len(all.Commands))
	}
	if len(s.Throttled()) != 0 {
		t.Fatalf("throttled %v without limits", s.Throttled())
	}
}

// A scenario file selects the model; bad values are refused.
func TestRealismInScenarioFile(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := dir + "/sc.yaml"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sc, err := LoadScenario(write("accounts: ['111122223333']\nrealism: {seed: 4, failureShare: -1, rateLimits: {'ssm:SendCommand': 2}}\n"))
	if err != nil || sc.Realism == nil || sc.Realism.Seed != 4 {
		t.Fatalf("%v %+v", err, sc)
	}
	s := New(sc, clock.NewStep(realStart))
	if s.real.RateLimits["ssm:SendCommand"] != 2 || s.real.RateLimits["ssm:ListCommands"] != 10 || s.real.PatchMedian != 27*time.Minute {
		t.Fatalf("defaults not filled around the file's values: %+v", s.real)
	}
	if _, err := LoadScenario(write("accounts: ['111122223333']\nrealism: {inventoryInterval: 30m, inventoryJitter: 20m}\n")); err == nil {
		t.Fatal("a jitter over half the interval was accepted")
	}
}

// BenchmarkRealistic50k builds a 50,000-instance realistic fleet and lists
// every active HIGH or CRITICAL finding: with -benchmem, the memory the
// model holds per instance (findings are generated, not stored).
func BenchmarkRealistic50k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		sc := &Scenario{Accounts: []string{"111122223333"}, Realism: Realistic(1),
			Groups: []Group{{Region: "us-east-1", Count: 50000, Name: "web", Tags: map[string]string{"App": "web"}, Missing: 5}}}
		s := New(sc, clock.NewStep(realStart))
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/50000, "heapB/instance")
		n := 0
		for _, in := range s.Instances("111122223333", "us-east-1") {
			in.eachFinding(realStart, 0, func(j int, f findingView) bool {
				n++
				return true
			})
		}
		b.ReportMetric(float64(n), "findings")
		runtime.KeepAlive(s)
	}
}
