package awssim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/memnet"
)

// simStart is when a test's fleet is made: the bubble's fake clock is moved
// on to it.
var simStart = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// newSim serves a simulator of sc over an in-memory network on synctest's
// fake clock; Config(ep, ...) reaches it. A test that uses it runs its body
// in synctest.Test.
func newSim(t *testing.T, sc *Scenario) (*Sim, string, clock.Clock) {
	t.Helper()
	// Outside a bubble Wait panics ("goroutine is not in a bubble"): the
	// test must run its body in synctest.Test.
	synctest.Wait()
	time.Sleep(time.Until(simStart)) // the fake clock moves on to the start
	c := clock.Real{}                // the bubble's fake time
	s := New(sc, c)
	srv := memnet.Serve(s)
	t.Cleanup(srv.Close)
	return s, srv.URL, c
}

func TestDescribeInstanceInformationPaginatesAndFilters(t *testing.T) {
	synctest.Test(t, testDescribeInstanceInformationPaginatesAndFilters)
}

func testDescribeInstanceInformationPaginatesAndFilters(t *testing.T) {
	s, ep, _ := newSim(t, DemoScenario(DemoOptions{}))
	cl := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	p := ssm.NewDescribeInstanceInformationPaginator(cl, &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(5),
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("tag:Environment"), Values: []string{"production"}}, {Key: aws.String("tag:App"), Values: []string{"web"}}}})
	n, pages := 0, 0
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		n += len(page.InstanceInformationList)
	}
	if n != 62 || pages != 13 {
		t.Fatalf("got %d instances over %d pages; want 62 over 13", n, pages)
	}
	// Other account, own fleet.
	cl2 := ssm.NewFromConfig(Config(ep, "444455556666", "eu-west-1"))
	out, err := cl2.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{})
	if err != nil || len(out.InstanceInformationList) != 50 || out.NextToken == nil {
		t.Fatalf("page of 50 with a token: %v %d", err, len(out.InstanceInformationList))
	}
	_, err = cl.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(51)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Fatalf("MaxResults 51: %v", err)
	}
	_, err = cl.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
		{Key: aws.String("tag:App"), Values: []string{"web"}}, {Key: aws.String("PingStatus"), Values: []string{"Online"}}}})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidFilterKey" {
		t.Fatalf("tag filter mixed with another key must be refused: %v", err)
	}
	if s.Calls()["ssm:DescribeInstanceInformation"] != 13+3 {
		t.Fatalf("calls %v", s.Calls())
	}
}

func TestSendCommandRunsAndPatches(t *testing.T) { synctest.Test(t, testSendCommandRunsAndPatches) }

func testSendCommandRunsAndPatches(t *testing.T) {
	s, ep, c := newSim(t, DemoScenario(DemoOptions{FailStaging: true}))
	cl := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	ctx := context.Background()
	var ids []string
	for _, in := range s.Instances("111122223333", "us-east-1") {
		if in.Tags["Environment"] == "staging" && in.Tags["App"] == "web" {
			ids = append(ids, in.ID)
		}
	}
	before, err := cl.DescribeInstancePatchStates(ctx, &ssm.DescribeInstancePatchStatesInput{InstanceIds: ids})
	if err != nil || before.InstancePatchStates[0].MissingCount != 6 {
		t.Fatalf("before: %v %+v", err, before)
	}
	out, err := cl.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPatchBaseline"), InstanceIds: ids, Comment: aws.String("t"),
		Parameters: map[string][]string{"Operation": {"Install"}}, MaxConcurrency: aws.String("50%"), MaxErrors: aws.String("1")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Command.CommandId)
	w := ssm.NewCommandExecutedWaiter(cl)
	if err := w.Wait(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String(ids[0])}, 3*time.Hour,
		func(o *ssm.CommandExecutedWaiterOptions) {
			o.MinDelay, o.MaxDelay = time.Minute, 5*time.Minute
		}); err != nil {
		t.Fatalf("waiter: %v", err)
	}
	time.Sleep(time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC).Sub(c.Now()))
	lc, err := cl.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id)})
	if err != nil || lc.Commands[0].CompletedCount != int32(len(ids)) || lc.Commands[0].ErrorCount != 1 {
		t.Fatalf("list: %v %+v", err, lc.Commands)
	}
	inv, err := cl.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{CommandId: aws.String(id), Details: true})
	if err != nil || len(inv.CommandInvocations) != len(ids) {
		t.Fatal(err)
	}
	failed := 0
	for _, i := range inv.CommandInvocations {
		if i.Status == ssmtypes.CommandInvocationStatusFailed {
			failed++
			if !strings.Contains(aws.ToString(i.CommandPlugins[0].Output), "conflicts") {
				t.Errorf("failed output: %q", aws.ToString(i.CommandPlugins[0].Output))
			}
		}
	}
	after, _ := cl.DescribeInstancePatchStates(ctx, &ssm.DescribeInstancePatchStatesInput{InstanceIds: ids})
	compliant := 0
	for _, st := range after.InstancePatchStates {
		if st.Operation == ssmtypes.PatchOperationTypeInstall && st.MissingCount == 0 && st.FailedCount == 0 {
			compliant++
		}
	}
	if failed != 1 || compliant != len(ids)-1 {
		t.Fatalf("failed %d compliant %d of %d", failed, compliant, len(ids))
	}
	_, err = cl.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPatchBaseline"), InstanceIds: ids, Comment: aws.String(strings.Repeat("x", 101))})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Fatalf("comment > 100: %v", err)
	}
	if len(s.Sends()) != 1 {
		t.Fatalf("sends %d", len(s.Sends()))
	}
}

func TestRetryerRetriesThrottlingNotValidation(t *testing.T) {
	synctest.Test(t, testRetryerRetriesThrottlingNotValidation)
}

func testRetryerRetriesThrottlingNotValidation(t *testing.T) {
	s, ep, _ := newSim(t, DemoScenario(DemoOptions{}))
	cl := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"), func(o *ssm.Options) { o.RetryMaxAttempts = 4 })
	s.Throttle("ssm:GetCalendarState", 2)
	if _, err := cl.GetCalendarState(context.Background(), &ssm.GetCalendarStateInput{CalendarNames: []string{"c"}}); err != nil {
		t.Fatalf("two throttles then success: %v", err)
	}
	if n := s.Calls()["ssm:GetCalendarState"]; n != 3 {
		t.Fatalf("calls %d, want 3", n)
	}
	_, err := cl.DescribeInstancePatchStates(context.Background(), &ssm.DescribeInstancePatchStatesInput{InstanceIds: make([]string, 51)})
	if err == nil || s.Calls()["ssm:DescribeInstancePatchStates"] != 1 {
		t.Fatalf("validation errors are not retried: %v, calls %d", err, s.Calls()["ssm:DescribeInstancePatchStates"])
	}
}

func TestParameterLockSemanticsAndDrop(t *testing.T) {
	synctest.Test(t, testParameterLockSemanticsAndDrop)
}

func testParameterLockSemanticsAndDrop(t *testing.T) {
	s, ep, _ := newSim(t, DemoScenario(DemoOptions{}))
	cl := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	ctx := context.Background()
	put := &ssm.PutParameterInput{Name: aws.String("/l"), Value: aws.String("v"), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(false)}
	if _, err := cl.PutParameter(ctx, put); err != nil {
		t.Fatal(err)
	}
	var exists *ssmtypes.ParameterAlreadyExists
	if _, err := cl.PutParameter(ctx, put); !errors.As(err, &exists) {
		t.Fatalf("second put: %v", err)
	}
	s.DropResponse("ssm:DeleteParameter", 1)
	_, err := cl.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/l")}, func(o *ssm.Options) { o.RetryMaxAttempts = 1 })
	if err == nil {
		t.Fatal("a dropped response must be an error")
	}
	var nf *ssmtypes.ParameterNotFound
	if _, err := cl.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/l")}); !errors.As(err, &nf) {
		t.Fatalf("the dropped delete must have taken effect: %v", err)
	}
}

func TestSTSAccounts(t *testing.T) { synctest.Test(t, testSTSAccounts) }

func testSTSAccounts(t *testing.T) {
	_, ep, _ := newSim(t, DemoScenario(DemoOptions{}))
	cl := sts.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	out, err := cl.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::444455556666:role/t"), RoleSessionName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config(ep, "", "us-east-1")
	cfg.Credentials = staticFrom(out.Credentials)
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != "444455556666" {
		t.Fatalf("assumed identity: %v %v", err, id)
	}
	_, err = cl.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::999999999999:role/t"), RoleSessionName: aws.String("s")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		t.Fatalf("unknown account: %v", err)
	}

	// DurationSeconds as STS reads it: an hour when absent, 900 s to 12 h,
	// an hour at most for a role session's credentials (role chaining).
	now := time.Now()
	sessionCl := sts.NewFromConfig(cfg) // signed with the assumed role's session
	for _, tc := range []struct {
		name   string
		cl     *sts.Client
		secs   *int32
		want   time.Duration // 0: refused
		reason string
	}{
		{"absent", cl, nil, time.Hour, ""},
		{"15 minutes", cl, aws.Int32(900), 15 * time.Minute, ""},
		{"12 hours from user keys", cl, aws.Int32(43200), 12 * time.Hour, ""},
		{"under 900 s", cl, aws.Int32(899), 0, "between 900 and 43200"},
		{"over 12 hours", cl, aws.Int32(43201), 0, "between 900 and 43200"},
		{"an hour, chained", sessionCl, aws.Int32(3600), time.Hour, ""},
		{"two hours, chained", sessionCl, aws.Int32(7200), 0, "role chaining"},
	} {
		out, err := tc.cl.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::444455556666:role/t"), RoleSessionName: aws.String("s"), DurationSeconds: tc.secs})
		if tc.want == 0 {
			if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationError" || !strings.Contains(ae.ErrorMessage(), tc.reason) {
				t.Errorf("%s: %v, want a ValidationError naming %q", tc.name, err, tc.reason)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := aws.ToTime(out.Credentials.Expiration).Sub(now).Round(time.Second); got != tc.want {
			t.Errorf("%s: credentials for %s, want %s", tc.name, got, tc.want)
		}
	}
}

// BenchmarkLoadAndPaginate50k loads a 50,000-instance scenario and pages
// through every instance with the real SDK paginator (1,000 calls).
func BenchmarkLoadAndPaginate50k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sc := &Scenario{Accounts: []string{"111122223333"}, Groups: []Group{{Region: "us-east-1", Count: 50000, Name: "web", Tags: map[string]string{"App": "web"}}}}
		s := New(sc, nil)
		srv := httptest.NewServer(s)
		ep := srv.URL
		cl := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
		p := ssm.NewDescribeInstanceInformationPaginator(cl, &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(50),
			Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("tag:App"), Values: []string{"web"}}}})
		n := 0
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			n += len(page.InstanceInformationList)
		}
		if n != 50000 {
			b.Fatalf("%d instances", n)
		}
		srv.Close()
	}
}

func TestGetCommandInvocationDelayCancelAndStats(t *testing.T) {
	synctest.Test(t, testGetCommandInvocationDelayCancelAndStats)
}

func testGetCommandInvocationDelayCancelAndStats(t *testing.T) {
	sc := &Scenario{Accounts: []string{"111122223333"}, InvocationDelay: 30 * time.Minute, Groups: []Group{{Region: "us-east-1", Count: 3, Name: "h", Behavior: "hang"}}}
	s, ep, c := newSim(t, sc)
	cl := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	ctx := context.Background()
	ids := []string{s.Instances("111122223333", "us-east-1")[0].ID, s.Instances("111122223333", "us-east-1")[1].ID}
	out, err := cl.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPatchBaseline"), InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	id := out.Command.CommandId
	_, err = cl.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: id, InstanceId: aws.String(ids[0])}, func(o *ssm.Options) { o.RetryMaxAttempts = 1 })
	var notYet *ssmtypes.InvocationDoesNotExist
	if !errors.As(err, &notYet) {
		t.Fatalf("right after send: %v", err)
	}
	time.Sleep(aws.ToTime(out.Command.RequestedDateTime).Add(31 * time.Minute).Sub(c.Now()))
	inv, err := cl.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: id, InstanceId: aws.String(ids[0])})
	if err != nil || inv.Status != ssmtypes.CommandInvocationStatusInProgress {
		t.Fatalf("hanging invocation: %v %v", err, inv)
	}
	if _, err := cl.CancelCommand(ctx, &ssm.CancelCommandInput{CommandId: id}); err != nil {
		t.Fatal(err)
	}
	lc, err := cl.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: id})
	if err != nil || lc.Commands[0].Status != ssmtypes.CommandStatusCancelled || lc.Commands[0].CompletedCount != 2 {
		t.Fatalf("after cancel: %v %+v", err, lc.Commands)
	}
	req, err := http.NewRequest(http.MethodGet, ep+"/_sim/stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := memnet.ClientFor(ep).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats struct{ Calls map[string]int }
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil || stats.Calls["ssm:CancelCommand"] != 1 || stats.Calls["ssm:SendCommand"] != 1 {
		t.Fatalf("stats %v %+v", err, stats)
	}
}

func TestInspectorFindingsAndCoverage(t *testing.T) {
	synctest.Test(t, testInspectorFindingsAndCoverage)
}

func testInspectorFindingsAndCoverage(t *testing.T) {
	sc := &Scenario{Accounts: []string{"111122223333"}, PatchDuration: 10 * time.Minute, Groups: []Group{
		{Region: "us-east-1", Count: 2, Name: "a", Tags: map[string]string{"App": "web"}, Missing: 1,
			Findings: []FindingSpec{{CVE: "CVE-2024-6387", Severity: "CRITICAL", Package: "openssh"}, {CVE: "CVE-2023-1", Severity: "LOW", Package: "x", Fix: "NO"}}},
		{Region: "us-east-1", Count: 1, Name: "stale", Coverage: "STALE_INVENTORY", Findings: []FindingSpec{{CVE: "CVE-2024-6387", Severity: "CRITICAL", Package: "openssh"}}},
	}}
	s, ep, c := newSim(t, sc)
	cfg := Config(ep, "111122223333", "us-east-1")
	in := inspector2.NewFromConfig(cfg)
	ctx := context.Background()
	active := func() int {
		p := inspector2.NewListFindingsPaginator(in, &inspector2.ListFindingsInput{MaxResults: aws.Int32(1),
			FilterCriteria: &insptypes.FilterCriteria{FindingStatus: []insptypes.StringFilter{{Comparison: insptypes.StringComparisonEquals, Value: aws.String("ACTIVE")}}}})
		n := 0
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Findings)
		}
		return n
	}
	if n := active(); n != 5 {
		t.Fatalf("%d ACTIVE findings before patching, want 5", n)
	}
	ids := []string{}
	for _, i := range s.Instances("111122223333", "us-east-1") {
		ids = append(ids, i.ID)
	}
	if _, err := ssm.NewFromConfig(cfg).SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPatchBaseline"), InstanceIds: ids, MaxConcurrency: aws.String("100%")}); err != nil {
		t.Fatal(err)
	}
	start := c.Now()
	time.Sleep(time.Hour)
	// The rescan closed the fixable CVE on the covered instances; the stale one was not rescanned.
	if n := active(); n != 3 {
		t.Fatalf("%d ACTIVE findings after patching and rescan, want 3", n)
	}
	cov, err := in.ListCoverage(ctx, &inspector2.ListCoverageInput{FilterCriteria: &insptypes.CoverageFilterCriteria{
		ResourceId: []insptypes.CoverageStringFilter{{Comparison: insptypes.CoverageStringComparisonEquals, Value: aws.String(ids[2])}}}})
	if err != nil || len(cov.CoveredResources) != 1 || cov.CoveredResources[0].ScanStatus.Reason != insptypes.ScanStatusReasonStaleInventory ||
		!cov.CoveredResources[0].LastScannedAt.Before(start) {
		t.Fatalf("stale coverage: %v %+v", err, cov)
	}
	_, err = in.ListFindings(ctx, &inspector2.ListFindingsInput{MaxResults: aws.Int32(101)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Fatalf("maxResults 101: %v", err)
	}
}

func TestPatchBaselines(t *testing.T) { synctest.Test(t, testPatchBaselines) }

func testPatchBaselines(t *testing.T) {
	s, ep, _ := newSim(t, DemoScenario(DemoOptions{}))
	ctx := context.Background()
	cl := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	rules := &ssmtypes.PatchRuleGroup{PatchRules: []ssmtypes.PatchRule{{ApproveAfterDays: aws.Int32(7), ComplianceLevel: ssmtypes.PatchComplianceLevelCritical,
		PatchFilterGroup: &ssmtypes.PatchFilterGroup{PatchFilters: []ssmtypes.PatchFilter{{Key: ssmtypes.PatchFilterKeyClassification, Values: []string{"Security"}}}}}}}
	created, err := cl.CreatePatchBaseline(ctx, &ssm.CreatePatchBaselineInput{Name: aws.String("patchgate-web"), OperatingSystem: ssmtypes.OperatingSystemAmazonLinux2023,
		ApprovalRules: rules, RejectedPatches: []string{"kernel*"}, Tags: []ssmtypes.Tag{{Key: aws.String("managed-by"), Value: aws.String("patchgate")}}, ClientToken: aws.String("tok-1")})
	if err != nil {
		t.Fatal(err)
	}
	// The same ClientToken answers with the same baseline, not a second one.
	again, err := cl.CreatePatchBaseline(ctx, &ssm.CreatePatchBaselineInput{Name: aws.String("patchgate-web"), ClientToken: aws.String("tok-1")})
	if err != nil || *again.BaselineId != *created.BaselineId {
		t.Fatalf("idempotent create: %v %v", err, again)
	}
	got, err := cl.GetPatchBaseline(ctx, &ssm.GetPatchBaselineInput{BaselineId: created.BaselineId})
	if err != nil || got.OperatingSystem != ssmtypes.OperatingSystemAmazonLinux2023 || *got.ApprovalRules.PatchRules[0].ApproveAfterDays != 7 || got.RejectedPatches[0] != "kernel*" {
		t.Fatalf("get: %v %+v", err, got)
	}
	if _, err := cl.RegisterPatchBaselineForPatchGroup(ctx, &ssm.RegisterPatchBaselineForPatchGroupInput{BaselineId: created.BaselineId, PatchGroup: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	var ae smithy.APIError
	_, err = cl.RegisterPatchBaselineForPatchGroup(ctx, &ssm.RegisterPatchBaselineForPatchGroupInput{BaselineId: created.BaselineId, PatchGroup: aws.String("web")})
	if !errors.As(err, &ae) || ae.ErrorCode() != "AlreadyExistsException" {
		t.Fatalf("second registration: %v", err)
	}
	pg, err := cl.GetPatchBaselineForPatchGroup(ctx, &ssm.GetPatchBaselineForPatchGroupInput{PatchGroup: aws.String("web"), OperatingSystem: ssmtypes.OperatingSystemAmazonLinux2023})
	if err != nil || *pg.BaselineId != *created.BaselineId {
		t.Fatalf("patch group: %v %v", err, pg)
	}
	pg, _ = cl.GetPatchBaselineForPatchGroup(ctx, &ssm.GetPatchBaselineForPatchGroupInput{PatchGroup: aws.String("web")}) // WINDOWS: default
	if !strings.HasPrefix(*pg.BaselineId, "arn:aws:ssm:us-east-1:aws:patchbaseline/") {
		t.Fatalf("unregistered group answers the default baseline: %v", *pg.BaselineId)
	}
	_, err = cl.DeletePatchBaseline(ctx, &ssm.DeletePatchBaselineInput{BaselineId: created.BaselineId})
	if !errors.As(err, &ae) || ae.ErrorCode() != "ResourceInUseException" {
		t.Fatalf("delete while registered: %v", err)
	}
	// Update with Replace drops members it does not send.
	upd, err := cl.UpdatePatchBaseline(ctx, &ssm.UpdatePatchBaselineInput{BaselineId: created.BaselineId, ApprovalRules: rules, Replace: aws.Bool(true)})
	if err != nil || len(upd.RejectedPatches) != 0 {
		t.Fatalf("replace: %v %v", err, upd.RejectedPatches)
	}
	desc, err := cl.DescribePatchBaselines(ctx, &ssm.DescribePatchBaselinesInput{Filters: []ssmtypes.PatchOrchestratorFilter{
		{Key: aws.String("OWNER"), Values: []string{"Self"}}, {Key: aws.String("NAME_PREFIX"), Values: []string{"patchgate-"}}}})
	if err != nil || len(desc.BaselineIdentities) != 1 || *desc.BaselineIdentities[0].BaselineName != "patchgate-web" {
		t.Fatalf("describe: %v %+v", err, desc)
	}
	all, err := cl.DescribePatchBaselines(ctx, &ssm.DescribePatchBaselinesInput{MaxResults: aws.Int32(2)})
	if err != nil || len(all.BaselineIdentities) != 2 || all.NextToken == nil {
		t.Fatalf("paginated describe: %v", err)
	}
	tags, err := cl.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingPatchBaseline, ResourceId: created.BaselineId})
	if err != nil || len(tags.TagList) != 1 || *tags.TagList[0].Value != "patchgate" {
		t.Fatalf("tags: %v %v", err, tags)
	}
	// Another account sees none of it.
	other := ssm.NewFromConfig(Config(ep, "444455556666", "us-east-1"))
	if _, err := other.GetPatchBaseline(ctx, &ssm.GetPatchBaselineInput{BaselineId: created.BaselineId}); !errors.As(err, &ae) || ae.ErrorCode() != "DoesNotExistException" {
		t.Fatalf("cross-account get: %v", err)
	}
	if s.Calls()["ssm:CreatePatchBaseline"] != 2 {
		t.Fatalf("calls: %v", s.Calls())
	}
}
