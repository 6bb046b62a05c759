//go:build integration

package securityhub_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	shsdk "github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/patchgate/patchgate/internal/motoenv"
	"github.com/patchgate/patchgate/internal/securityhub"
)

// Import against moto, twice: the second import updates the same findings.
// (moto does not implement BatchUpdateFindings, so the RESOLVED step is
// covered by the simulator's tests only.)
func TestMotoImportIsIdempotent(t *testing.T) {
	cfg, account := motoenv.FreshAccount(t)
	cl := shsdk.NewFromConfig(cfg)
	ctx := context.Background()
	e := securityhub.Export{Policy: "web", Account: account, Region: cfg.Region, Phase: "staging", RunURL: "https://example.com/run/1", At: time.Now(),
		Items: []securityhub.Item{{Kind: securityhub.KindInstance, InstanceID: "i-0123456789abcdef0", Severity: "HIGH", Reason: "install failed"},
			{Kind: securityhub.KindCVE, InstanceID: "i-0123456789abcdef0", CVE: "CVE-2024-6387", Severity: "CRITICAL"}}}
	fs := securityhub.Findings(e)
	for range 2 {
		out, err := cl.BatchImportFindings(ctx, &shsdk.BatchImportFindingsInput{Findings: fs})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(out.FailedCount) != 0 || aws.ToInt32(out.SuccessCount) != 2 {
			t.Fatalf("%+v", out)
		}
	}
	got, err := cl.GetFindings(ctx, &shsdk.GetFindingsInput{Filters: &shtypes.AwsSecurityFindingFilters{
		GeneratorId: []shtypes.StringFilter{{Comparison: shtypes.StringFilterComparisonEquals, Value: aws.String(securityhub.GeneratorID("web"))}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Findings) != 2 {
		t.Errorf("%d findings after importing the same 2 twice", len(got.Findings))
	}
}
