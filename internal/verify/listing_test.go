package verify

// Tests of how verification reads Amazon Inspector listings, over an
// in-memory Findings (the interface is verify's own): which filters a
// listing sends, how a finding becomes a result.Finding, and which
// resources a tag-scoped listing keeps. Written from the survivors of
// mutation testing (make mutate; docs/testing.md).

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/patchgate/patchgate/internal/result"
)

// pagedInspector answers each listing with the pages given, in order, and
// records every request.
type pagedInspector struct {
	findings  [][]insptypes.Finding
	coverage  [][]insptypes.CoveredResource
	err       error
	fRequests []*inspector2.ListFindingsInput
	cRequests []*inspector2.ListCoverageInput
}

func page(token *string, pages int) (int, *string) {
	i := 0
	if token != nil {
		i = int((*token)[0] - '0')
	}
	var next *string
	if i+1 < pages {
		next = aws.String(string(rune('0' + i + 1)))
	}
	return i, next
}

func (p *pagedInspector) ListFindings(_ context.Context, in *inspector2.ListFindingsInput, _ ...func(*inspector2.Options)) (*inspector2.ListFindingsOutput, error) {
	p.fRequests = append(p.fRequests, in)
	if p.err != nil {
		return nil, p.err
	}
	if len(p.findings) == 0 {
		return &inspector2.ListFindingsOutput{}, nil
	}
	i, next := page(in.NextToken, len(p.findings))
	return &inspector2.ListFindingsOutput{Findings: p.findings[i], NextToken: next}, nil
}

func (p *pagedInspector) ListCoverage(_ context.Context, in *inspector2.ListCoverageInput, _ ...func(*inspector2.Options)) (*inspector2.ListCoverageOutput, error) {
	p.cRequests = append(p.cRequests, in)
	if p.err != nil {
		return nil, p.err
	}
	if len(p.coverage) == 0 {
		return &inspector2.ListCoverageOutput{}, nil
	}
	i, next := page(in.NextToken, len(p.coverage))
	return &inspector2.ListCoverageOutput{CoveredResources: p.coverage[i], NextToken: next}, nil
}

func inspFinding(cve string, sev insptypes.Severity, fix insptypes.FixAvailable, pkgs []string, ids ...string) insptypes.Finding {
	f := insptypes.Finding{Severity: sev, FixAvailable: fix, Status: insptypes.FindingStatusActive,
		FirstObservedAt: aws.Time(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)), UpdatedAt: aws.Time(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))}
	if cve != "" {
		d := &insptypes.PackageVulnerabilityDetails{VulnerabilityId: aws.String(cve)}
		for _, p := range pkgs {
			d.VulnerablePackages = append(d.VulnerablePackages, insptypes.VulnerablePackage{Name: aws.String(p)})
		}
		f.PackageVulnerabilityDetails = d
	}
	for _, id := range ids {
		f.Resources = append(f.Resources, insptypes.Resource{Id: aws.String(id)})
	}
	return f
}

func TestFindingsAreReadAsListed(t *testing.T) {
	insp := &pagedInspector{findings: [][]insptypes.Finding{
		{inspFinding("CVE-1", insptypes.SeverityHigh, insptypes.FixAvailableYes, []string{"openssl", "libssl"}, "i-1")},
		{
			inspFinding("CVE-2", insptypes.SeverityLow, insptypes.FixAvailablePartial, nil, "i-2"),
			inspFinding("CVE-3", insptypes.SeverityCritical, insptypes.FixAvailableNo, []string{"kernel"}, "i-1", "i-2"),
			inspFinding("", insptypes.SeverityMedium, insptypes.FixAvailableYes, nil, "i-3"),
		},
	}}
	v := &Verifier{Inspector: insp}
	got, err := v.findings(context.Background(), scope{ids: []string{"i-1", "i-2", "i-3"}}, findingFilter{statuses: []string{"ACTIVE", "SUPPRESSED"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []result.Finding{
		{InstanceID: "i-1", CVE: "CVE-1", Severity: "HIGH", Package: "openssl", FixAvailable: true, Status: "ACTIVE"},
		{InstanceID: "i-2", CVE: "CVE-2", Severity: "LOW", Package: "", FixAvailable: true, Status: "ACTIVE"},
		{InstanceID: "i-1", CVE: "CVE-3", Severity: "CRITICAL", Package: "kernel", FixAvailable: false, Status: "ACTIVE"},
		{InstanceID: "i-2", CVE: "CVE-3", Severity: "CRITICAL", Package: "kernel", FixAvailable: false, Status: "ACTIVE"},
		{InstanceID: "i-3", CVE: "", Severity: "MEDIUM", Package: "", FixAvailable: true, Status: "ACTIVE"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d findings, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Finding.InstanceID != want[i].InstanceID || got[i].CVE != want[i].CVE || got[i].Severity != want[i].Severity ||
			got[i].Package != want[i].Package || got[i].FixAvailable != want[i].FixAvailable || got[i].Status != want[i].Status {
			t.Errorf("finding %d = %+v, want %+v", i, got[i].Finding, want[i])
		}
		if !got[i].firstObserved.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("finding %d first observed %v", i, got[i].firstObserved)
		}
	}
	if len(insp.fRequests) != 2 {
		t.Fatalf("%d requests for 2 pages", len(insp.fRequests))
	}
	fc := insp.fRequests[0].FilterCriteria
	if aws.ToInt32(insp.fRequests[0].MaxResults) != 100 || filterValues(fc.FindingStatus) != "ACTIVE,SUPPRESSED" ||
		filterValues(fc.FindingType) != "PACKAGE_VULNERABILITY" || filterValues(fc.ResourceId) != "i-1,i-2,i-3" || fc.ResourceTags != nil {
		t.Fatalf("filters %+v", fc)
	}
}

func filterValues(fs []insptypes.StringFilter) string {
	var out []string
	for _, f := range fs {
		if f.Comparison != insptypes.StringComparisonEquals {
			return "comparison " + string(f.Comparison)
		}
		out = append(out, aws.ToString(f.Value))
	}
	return strings.Join(out, ",")
}

// A listing by id sends one request per 10 ids; one by tag sends one, by
// the tag, and keeps only the phase's instances.
func TestFindingsScope(t *testing.T) {
	all := instanceIDs(23)
	insp := &pagedInspector{}
	v := &Verifier{Inspector: insp}
	if _, err := v.findings(context.Background(), scope{ids: all}, findingFilter{statuses: []string{"ACTIVE"}}); err != nil {
		t.Fatal(err)
	}
	if len(insp.fRequests) != 3 || filterValues(insp.fRequests[2].FilterCriteria.ResourceId) != "i-020,i-021,i-022" {
		t.Fatalf("by id: %d requests", len(insp.fRequests))
	}

	insp = &pagedInspector{findings: [][]insptypes.Finding{{
		inspFinding("CVE-1", insptypes.SeverityHigh, insptypes.FixAvailableYes, []string{"p"}, "i-001", "i-999"),
		inspFinding("CVE-2", insptypes.SeverityHigh, insptypes.FixAvailableYes, []string{"p"}, "i-998"),
	}}}
	v = &Verifier{Inspector: insp}
	sc := newScope(all, map[string]string{"App": "web", "Env": "prod"}, "Env")
	got, err := v.findings(context.Background(), sc, findingFilter{statuses: []string{"CLOSED"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Finding.InstanceID != "i-001" {
		t.Fatalf("by tag kept %+v, want i-001's only", got)
	}
	if len(insp.fRequests) != 1 {
		t.Fatalf("by tag: %d requests", len(insp.fRequests))
	}
	fc := insp.fRequests[0].FilterCriteria
	if fc.ResourceId != nil || filterValues(fc.ResourceType) != "AWS_EC2_INSTANCE" || len(fc.ResourceTags) != 1 ||
		aws.ToString(fc.ResourceTags[0].Key) != "Env" || aws.ToString(fc.ResourceTags[0].Value) != "prod" ||
		fc.ResourceTags[0].Comparison != insptypes.MapComparisonEquals || filterValues(fc.FindingStatus) != "CLOSED" {
		t.Fatalf("by tag filters %+v", fc)
	}

	insp.err = errors.New("AccessDeniedException")
	if _, err := v.findings(context.Background(), sc, findingFilter{statuses: []string{"ACTIVE"}}); err == nil || !strings.Contains(err.Error(), "inspector2:ListFindings") {
		t.Fatalf("denied: %v", err)
	}
}

func TestCoverageListing(t *testing.T) {
	scanned := aws.Time(time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC))
	since := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	cov := func(id string, status insptypes.ScanStatusCode) insptypes.CoveredResource {
		c := insptypes.CoveredResource{ResourceId: aws.String(id), LastScannedAt: scanned, AccountId: aws.String("111122223333")}
		if status != "" {
			c.ScanStatus = &insptypes.ScanStatus{StatusCode: status, Reason: insptypes.ScanStatusReasonSuccessful}
		}
		return c
	}
	insp := &pagedInspector{coverage: [][]insptypes.CoveredResource{{cov("i-001", insptypes.ScanStatusCodeActive)}, {cov("i-002", ""), cov("i-999", insptypes.ScanStatusCodeActive)}}}
	v := &Verifier{Inspector: insp}
	sc := newScope(instanceIDs(12), map[string]string{"Env": "prod"}, "")
	got, _, err := v.coverage(context.Background(), sc, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["i-001"].ScanStatus == nil || got["i-001"].ScanStatus.StatusCode != insptypes.ScanStatusCodeActive ||
		got["i-001"].ScanStatus.Reason != insptypes.ScanStatusReasonSuccessful || !got["i-001"].LastScannedAt.Equal(*scanned) ||
		got["i-002"].ScanStatus != nil || got["i-001"].AccountId != nil {
		t.Fatalf("coverage %+v", got)
	}
	fc := insp.cRequests[0].FilterCriteria
	if aws.ToInt32(insp.cRequests[0].MaxResults) != 200 || len(fc.Ec2InstanceTags) != 1 || aws.ToString(fc.Ec2InstanceTags[0].Key) != "Env" ||
		len(fc.LastScannedAt) != 1 || !aws.ToTime(fc.LastScannedAt[0].StartInclusive).Equal(since) || fc.ResourceId != nil ||
		len(fc.ResourceType) != 1 || aws.ToString(fc.ResourceType[0].Value) != "AWS_EC2_INSTANCE" {
		t.Fatalf("by tag filters %+v", fc)
	}

	// No date: no date filter. By id: batches of 10, no tag, no date.
	insp = &pagedInspector{}
	v = &Verifier{Inspector: insp}
	if _, _, err := v.coverage(context.Background(), sc, time.Time{}); err != nil || insp.cRequests[0].FilterCriteria.LastScannedAt != nil {
		t.Fatalf("undated: %v %+v", err, insp.cRequests[0].FilterCriteria)
	}
	insp = &pagedInspector{}
	v = &Verifier{Inspector: insp}
	if _, _, err := v.coverage(context.Background(), scope{ids: instanceIDs(11)}, since); err != nil || len(insp.cRequests) != 2 {
		t.Fatalf("by id: %v, %d requests", err, len(insp.cRequests))
	}
	var gotIDs []string
	for _, r := range insp.cRequests {
		if r.FilterCriteria.Ec2InstanceTags != nil || r.FilterCriteria.LastScannedAt != nil {
			t.Fatalf("by id filters %+v", r.FilterCriteria)
		}
		for _, f := range r.FilterCriteria.ResourceId {
			gotIDs = append(gotIDs, aws.ToString(f.Value))
		}
	}
	if !slices.Equal(gotIDs, instanceIDs(11)) {
		t.Fatalf("ids listed %v", gotIDs)
	}
	insp.err = errors.New("AccessDeniedException")
	if _, _, err := v.coverage(context.Background(), scope{ids: instanceIDs(1)}, since); err == nil || !strings.Contains(err.Error(), "inspector2:ListCoverage") {
		t.Fatalf("denied: %v", err)
	}
}

func TestInternerKeepsOneCopy(t *testing.T) {
	in := interner{}
	a := in.of(strings.Clone("HIGH"))
	b := in.of(strings.Clone("HIGH"))
	if a != "HIGH" || b != "HIGH" || len(in) != 1 {
		t.Fatalf("%q %q %v", a, b, in)
	}
	if in.of("LOW") != "LOW" || len(in) != 2 {
		t.Fatalf("%v", in)
	}
}
