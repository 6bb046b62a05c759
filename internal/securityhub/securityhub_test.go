package securityhub

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
)

const acct, region = "111122223333", "us-east-1"

var start = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func harness(t *testing.T) (*awssim.Sim, *Exporter) {
	t.Helper()
	sim := awssim.New(&awssim.Scenario{Accounts: []string{acct}}, clock.NewStep(start))
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, &Exporter{Hub: securityhub.NewFromConfig(awssim.Config(srv.URL, acct, region))}
}

func items(instances, cves int) []Item {
	var out []Item
	for i := range instances {
		id := fmt.Sprintf("i-%017x", i+1)
		out = append(out, Item{Kind: KindInstance, InstanceID: id, Severity: "HIGH", Reason: "patch install failed"})
		for c := range cves {
			out = append(out, Item{Kind: KindCVE, InstanceID: id, CVE: fmt.Sprintf("CVE-2024-%04d", 1000+c), Severity: "CRITICAL", Package: "openssl"})
		}
	}
	return out
}

func TestExportBatchesAndARerunUpdatesInsteadOfDuplicating(t *testing.T) {
	sim, x := harness(t)
	e := Export{Policy: "web", Account: acct, Region: region, Phase: "staging", RunURL: "https://github.com/acme/infra/actions/runs/1", At: start, Items: items(50, 4)}
	res, err := x.Export(context.Background(), e)
	if err != nil || res.Imported != 250 || len(res.Failed) != 0 || res.Resolved != 0 {
		t.Fatalf("%v %+v", err, res)
	}
	if n := sim.Calls()["securityhub:BatchImportFindings"]; n != 3 {
		t.Errorf("250 findings in %d calls, want 3 (100 a call)", n)
	}
	// The same run again, and a later run that still sees everything.
	for _, run := range []string{"1", "2"} {
		e.RunURL = "https://github.com/acme/infra/actions/runs/" + run
		e.At = e.At.Add(time.Hour)
		if _, err := x.Export(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	fs, _ := sim.SecurityHubFindings()
	if len(fs) != 250 {
		t.Fatalf("%d findings after three exports of the same 250", len(fs))
	}
	for _, f := range fs {
		if f.Workflow != "NEW" || f.RecordState != "ACTIVE" || f.ComplianceStatus != "FAILED" || !strings.HasPrefix(f.ID, "patchgate/web/111122223333/us-east-1/i-") {
			t.Fatalf("%+v", f)
		}
		if f.Raw["SourceUrl"] != "https://github.com/acme/infra/actions/runs/2" || f.Raw["CreatedAt"] != start.Format(time.RFC3339Nano) {
			t.Fatalf("an update keeps CreatedAt and takes the latest run's URL: %v %v", f.Raw["SourceUrl"], f.Raw["CreatedAt"])
		}
	}
}

func TestFixedFindingsAreResolvedOnTheNextRun(t *testing.T) {
	sim, x := harness(t)
	e := Export{Policy: "web", Account: acct, Region: region, Phase: "production", At: start, Items: items(3, 1)}
	if _, err := x.Export(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	// Another policy's findings in the same account stay untouched.
	other := Export{Policy: "db", Account: acct, Region: region, At: start, Items: items(1, 0)}
	if _, err := x.Export(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	// Next run: instance 1 is fixed, instance 2's CVE is fixed.
	e.At = start.Add(24 * time.Hour)
	all := items(3, 1)
	e.Items = []Item{all[2], all[5]} // i-2's instance finding, i-3's CVE
	res, err := x.Export(context.Background(), e)
	if err != nil || res.Imported != 2 || res.Resolved != 4 || len(res.Failed) != 0 {
		t.Fatalf("%v %+v", err, res)
	}
	fs, _ := sim.SecurityHubFindings()
	state := map[string]string{}
	for _, f := range fs {
		state[f.ID] = f.RecordState + "/" + f.ComplianceStatus + "/" + f.Workflow
	}
	want := map[string]string{
		"patchgate/web/111122223333/us-east-1/i-00000000000000001":               "ARCHIVED/PASSED/RESOLVED",
		"patchgate/web/111122223333/us-east-1/i-00000000000000001/CVE-2024-1000": "ARCHIVED/PASSED/RESOLVED",
		"patchgate/web/111122223333/us-east-1/i-00000000000000002":               "ACTIVE/FAILED/NEW",
		"patchgate/web/111122223333/us-east-1/i-00000000000000002/CVE-2024-1000": "ARCHIVED/PASSED/RESOLVED",
		"patchgate/web/111122223333/us-east-1/i-00000000000000003":               "ARCHIVED/PASSED/RESOLVED",
		"patchgate/web/111122223333/us-east-1/i-00000000000000003/CVE-2024-1000": "ACTIVE/FAILED/NEW",
		"patchgate/db/111122223333/us-east-1/i-00000000000000001":                "ACTIVE/FAILED/NEW",
	}
	for id, w := range want {
		if state[id] != w {
			t.Errorf("%s: %s, want %s", id, state[id], w)
		}
	}
	// A resolved finding that comes back is active again.
	e.Items = items(1, 0)
	e.At = start.Add(48 * time.Hour)
	if _, err := x.Export(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	fs, _ = sim.SecurityHubFindings()
	for _, f := range fs {
		if f.ID == "patchgate/web/111122223333/us-east-1/i-00000000000000001" && (f.RecordState != "ACTIVE" || f.ComplianceStatus != "FAILED") {
			t.Errorf("reappeared: %+v", f)
		}
	}
}

func TestRefusedFindingsAreReportedNotLost(t *testing.T) {
	_, x := harness(t)
	// Findings for another account than the caller's are refused one by one.
	res, err := x.Export(context.Background(), Export{Policy: "web", Account: "444455556666", Region: region, At: start, Items: items(2, 0)})
	if err != nil || res.Imported != 0 || len(res.Failed) != 2 || !strings.Contains(res.Failed[0], "AccessDeniedException") {
		t.Fatalf("%v %+v", err, res)
	}
}

func TestFindingsAreStableAndWellFormed(t *testing.T) {
	e := Export{Policy: "web", Account: acct, Region: "cn-north-1", At: start, Items: []Item{
		{Kind: KindCVE, InstanceID: "i-1", CVE: "CVE-2024-6387", Severity: "bogus", Reason: "openssh\r\n::error::x"},
	}}
	f := Findings(e)[0]
	if aws.ToString(f.Id) != "patchgate/web/111122223333/cn-north-1/i-1/CVE-2024-6387" ||
		aws.ToString(f.ProductArn) != "arn:aws-cn:securityhub:cn-north-1:111122223333:product/111122223333/default" ||
		f.Severity.Label != "HIGH" || strings.ContainsAny(aws.ToString(f.Description), "\r\n") || aws.ToString(f.Vulnerabilities[0].Id) != "CVE-2024-6387" {
		t.Errorf("%+v", f)
	}
}
