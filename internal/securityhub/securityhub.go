// Package securityhub exports a phase's outcome to AWS Security Hub as
// ASFF findings: one per non-compliant or failed instance and one per
// fixable CVE still open above the policy's threshold. Finding ids come
// from the policy, account, region, instance and CVE (never the run), so a
// rerun or the next run updates the same findings instead of adding new
// ones; findings of an earlier run that are fixed now are archived with
// compliance PASSED and their workflow set to RESOLVED.
package securityhub

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/patchgate/patchgate/internal/oneline"
)

// Hub is the part of the Security Hub API the export uses.
type Hub interface {
	BatchImportFindings(ctx context.Context, in *securityhub.BatchImportFindingsInput, optFns ...func(*securityhub.Options)) (*securityhub.BatchImportFindingsOutput, error)
	GetFindings(ctx context.Context, in *securityhub.GetFindingsInput, optFns ...func(*securityhub.Options)) (*securityhub.GetFindingsOutput, error)
	BatchUpdateFindings(ctx context.Context, in *securityhub.BatchUpdateFindingsInput, optFns ...func(*securityhub.Options)) (*securityhub.BatchUpdateFindingsOutput, error)
}

// BatchSize is Security Hub's limit of findings per BatchImportFindings
// and of identifiers per BatchUpdateFindings.
const BatchSize = 100

// Kinds of item.
const (
	KindInstance = "instance" // a non-compliant or failed instance
	KindCVE      = "cve"      // a fixable CVE still open on an instance
)

// Item is one problem to report.
type Item struct {
	Kind       string
	InstanceID string
	CVE        string // KindCVE
	Package    string // KindCVE: the vulnerable package, if known
	// Severity is an ASFF label: CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL.
	Severity string
	// Reason says what is wrong ("patch install failed: ...", "3 patches
	// missing"); for a CVE, Inspector's title.
	Reason string
}

// Export is what one account and region reports after a phase.
type Export struct {
	Policy, Account, Region, Phase string
	RunURL                         string // SourceUrl of every finding
	At                             time.Time
	Items                          []Item
}

// Result counts what the export did.
type Result struct {
	Imported, Resolved int
	// Failed are findings Security Hub refused, "id: code: message".
	Failed []string
}

// Exporter imports findings.
type Exporter struct{ Hub Hub }

// partition of a region, for ARNs.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// ProductArn is the account's default (custom integration) product.
func ProductArn(account, region string) string {
	return fmt.Sprintf("arn:%s:securityhub:%s:%s:product/%s/default", partition(region), region, account, account)
}

// GeneratorID identifies patchgate's findings of one policy.
func GeneratorID(policy string) string { return "patchgate/" + policy }

// FindingID is an item's stable id.
func FindingID(policy, account, region string, it Item) string {
	id := fmt.Sprintf("patchgate/%s/%s/%s/%s", policy, account, region, it.InstanceID)
	if it.Kind == KindCVE {
		id += "/" + it.CVE
	}
	return id
}

var severities = map[string]bool{"CRITICAL": true, "HIGH": true, "MEDIUM": true, "LOW": true, "INFORMATIONAL": true}

// Findings builds the ASFF findings of e's items (pure).
func Findings(e Export) []shtypes.AwsSecurityFinding {
	at := e.At.UTC().Format(time.RFC3339Nano)
	product := ProductArn(e.Account, e.Region)
	var out []shtypes.AwsSecurityFinding
	for _, it := range e.Items {
		sev := strings.ToUpper(it.Severity)
		if !severities[sev] {
			sev = "HIGH"
		}
		f := shtypes.AwsSecurityFinding{
			SchemaVersion:  aws.String("2018-10-08"),
			Id:             aws.String(FindingID(e.Policy, e.Account, e.Region, it)),
			ProductArn:     aws.String(product),
			ProductName:    aws.String("patchgate"),
			CompanyName:    aws.String("patchgate"),
			GeneratorId:    aws.String(GeneratorID(e.Policy)),
			AwsAccountId:   aws.String(e.Account),
			Region:         aws.String(e.Region),
			CreatedAt:      aws.String(at),
			UpdatedAt:      aws.String(at),
			LastObservedAt: aws.String(at),
			Severity:       &shtypes.Severity{Label: shtypes.SeverityLabel(sev)},
			Compliance:     &shtypes.Compliance{Status: shtypes.ComplianceStatusFailed},
			Workflow:       &shtypes.Workflow{Status: shtypes.WorkflowStatusNew},
			RecordState:    shtypes.RecordStateActive,
			Resources: []shtypes.Resource{{Type: aws.String("AwsEc2Instance"), Partition: shtypes.Partition(partition(e.Region)), Region: aws.String(e.Region),
				Id: aws.String(fmt.Sprintf("arn:%s:ec2:%s:%s:instance/%s", partition(e.Region), e.Region, e.Account, it.InstanceID))}},
			ProductFields: map[string]string{"patchgate/Policy": e.Policy, "patchgate/Phase": e.Phase},
		}
		if e.RunURL != "" {
			f.SourceUrl = aws.String(e.RunURL)
			f.ProductFields["patchgate/RunUrl"] = e.RunURL
		}
		reason := oneline.Clean(it.Reason, 900)
		switch it.Kind {
		case KindCVE:
			f.Types = []string{"Software and Configuration Checks/Vulnerabilities/CVE"}
			f.Title = aws.String(oneline.Clean(fmt.Sprintf("%s still open on %s after patching", it.CVE, it.InstanceID), 256))
			f.Description = aws.String(orDefault(reason, it.CVE+" has a fix, but the fix is not installed.") + " Reported by patchgate policy " + e.Policy + ".")
			v := shtypes.Vulnerability{Id: aws.String(it.CVE), FixAvailable: shtypes.VulnerabilityFixAvailableYes}
			if it.Package != "" {
				v.VulnerablePackages = []shtypes.SoftwarePackage{{Name: aws.String(oneline.Clean(it.Package, 256))}}
			}
			f.Vulnerabilities = []shtypes.Vulnerability{v}
		default:
			f.Types = []string{"Software and Configuration Checks/Patch Management"}
			f.Title = aws.String(oneline.Clean(fmt.Sprintf("%s is not patched as policy %s requires", it.InstanceID, e.Policy), 256))
			f.Description = aws.String(orDefault(reason, "The instance failed to patch or is not compliant.") + " Reported by patchgate policy " + e.Policy + ".")
		}
		out = append(out, f)
	}
	return out
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return strings.TrimSuffix(s, ".") + "."
}

// Export imports e's findings in batches of BatchSize, then resolves the
// findings of earlier runs (same policy, account and region) that e no
// longer reports: compliance PASSED, record ARCHIVED, workflow RESOLVED.
// Findings Security Hub refuses are listed in Result.Failed; an error is a
// call that failed as a whole (the export is then incomplete, and running
// it again is safe).
func (x *Exporter) Export(ctx context.Context, e Export) (Result, error) {
	var res Result
	current := Findings(e)
	ids := map[string]bool{}
	for _, f := range current {
		ids[aws.ToString(f.Id)] = true
	}
	open, err := x.active(ctx, e)
	if err != nil {
		return res, err
	}
	if err := x.importAll(ctx, current, &res, &res.Imported); err != nil {
		return res, err
	}
	at := e.At.UTC().Format(time.RFC3339Nano)
	var fixed []shtypes.AwsSecurityFinding
	for _, f := range open {
		if ids[aws.ToString(f.Id)] {
			continue
		}
		f.UpdatedAt = aws.String(at)
		f.Compliance = &shtypes.Compliance{Status: shtypes.ComplianceStatusPassed}
		f.RecordState = shtypes.RecordStateArchived
		f.Workflow = nil // a finding's workflow is changed only by BatchUpdateFindings
		f.ProcessedAt = nil
		if e.RunURL != "" {
			f.SourceUrl = aws.String(e.RunURL)
		}
		fixed = append(fixed, f)
	}
	var archived int
	if err := x.importAll(ctx, fixed, &res, &archived); err != nil {
		return res, err
	}
	failed := map[string]bool{}
	for _, f := range res.Failed {
		failed[strings.SplitN(f, ": ", 2)[0]] = true
	}
	var idents []shtypes.AwsSecurityFindingIdentifier
	for _, f := range fixed {
		if !failed[aws.ToString(f.Id)] {
			idents = append(idents, shtypes.AwsSecurityFindingIdentifier{Id: f.Id, ProductArn: f.ProductArn})
		}
	}
	for len(idents) > 0 {
		n := min(len(idents), BatchSize)
		out, err := x.Hub.BatchUpdateFindings(ctx, &securityhub.BatchUpdateFindingsInput{FindingIdentifiers: idents[:n],
			Workflow: &shtypes.WorkflowUpdate{Status: shtypes.WorkflowStatusResolved},
			Note:     &shtypes.NoteUpdate{Text: aws.String(oneline.Clean("Fixed: no longer reported by patchgate policy "+e.Policy+" "+e.RunURL, 512)), UpdatedBy: aws.String("patchgate")}})
		if err != nil {
			return res, fmt.Errorf("securityhub:BatchUpdateFindings in %s/%s: %w", e.Account, e.Region, err)
		}
		res.Resolved += len(out.ProcessedFindings)
		for _, u := range out.UnprocessedFindings {
			id := ""
			if u.FindingIdentifier != nil {
				id = aws.ToString(u.FindingIdentifier.Id)
			}
			res.Failed = append(res.Failed, fmt.Sprintf("%s: %s: %s", id, aws.ToString(u.ErrorCode), oneline.Clean(aws.ToString(u.ErrorMessage), 200)))
		}
		idents = idents[n:]
	}
	return res, nil
}

func (x *Exporter) importAll(ctx context.Context, fs []shtypes.AwsSecurityFinding, res *Result, count *int) error {
	for len(fs) > 0 {
		n := min(len(fs), BatchSize)
		out, err := x.Hub.BatchImportFindings(ctx, &securityhub.BatchImportFindingsInput{Findings: fs[:n]})
		if err != nil {
			return fmt.Errorf("securityhub:BatchImportFindings (%d findings): %w", n, err)
		}
		*count += int(aws.ToInt32(out.SuccessCount))
		for _, f := range out.FailedFindings {
			res.Failed = append(res.Failed, fmt.Sprintf("%s: %s: %s", aws.ToString(f.Id), aws.ToString(f.ErrorCode), oneline.Clean(aws.ToString(f.ErrorMessage), 200)))
		}
		fs = fs[n:]
	}
	sort.Strings(res.Failed)
	return nil
}

// active lists patchgate's active findings of e's policy, account and
// region.
func (x *Exporter) active(ctx context.Context, e Export) ([]shtypes.AwsSecurityFinding, error) {
	eq := func(v string) []shtypes.StringFilter {
		return []shtypes.StringFilter{{Comparison: shtypes.StringFilterComparisonEquals, Value: aws.String(v)}}
	}
	p := securityhub.NewGetFindingsPaginator(x.Hub, &securityhub.GetFindingsInput{MaxResults: aws.Int32(100), Filters: &shtypes.AwsSecurityFindingFilters{
		ProductArn: eq(ProductArn(e.Account, e.Region)), GeneratorId: eq(GeneratorID(e.Policy)), AwsAccountId: eq(e.Account),
		Region: eq(e.Region), RecordState: eq(string(shtypes.RecordStateActive)),
	}})
	var out []shtypes.AwsSecurityFinding
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("securityhub:GetFindings in %s/%s: %w", e.Account, e.Region, err)
		}
		for _, f := range page.Findings {
			// Check what the filters promised: never touch a finding that
			// is not patchgate's own for this policy.
			if aws.ToString(f.GeneratorId) == GeneratorID(e.Policy) && strings.HasPrefix(aws.ToString(f.Id), "patchgate/"+e.Policy+"/") {
				out = append(out, f)
			}
		}
	}
	return out, nil
}
