//go:build integration

package verify

// Amazon Inspector (and the SSM patch-state reads) against moto.
//
// moto's ListFindings answers from a queue that tests fill through
// POST /moto-api/static/inspector2/findings-results: each distinct request
// (filterCriteria, maxResults, nextToken, sortCriteria) takes the next
// queued page, and the same request again gets the same page. It ignores
// the filters themselves, so the filters patchgate sends are checked on the
// wire through a motoenv.Recorder, and the findings parsing against what
// moto serialises. moto has no ListCoverage (HTTP 404) and no
// DescribeInstancePatchStates (HTTP 500): patchgate must fail with an
// error naming the operation, never pass a gate without the evidence.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/motoenv"
	"github.com/patchgate/patchgate/internal/result"
)

// motoFinding is a package-vulnerability finding as Inspector's restJson1
// ListFindings returns it.
func motoFinding(account, instance, cve, severity, pkg, status, fix string) map[string]any {
	now := float64(time.Now().Unix())
	return map[string]any{
		"awsAccountId":    account,
		"findingArn":      fmt.Sprintf("arn:aws:inspector2:%s:%s:finding/%s", motoenv.Region, account, motoenv.Unique("")),
		"description":     cve + " in " + pkg,
		"type":            "PACKAGE_VULNERABILITY",
		"severity":        severity,
		"status":          status,
		"fixAvailable":    fix,
		"firstObservedAt": now - 86400, "lastObservedAt": now, "updatedAt": now,
		"remediation": map[string]any{"recommendation": map[string]any{"text": "update " + pkg}},
		"resources":   []any{map[string]any{"id": instance, "type": "AWS_EC2_INSTANCE", "region": motoenv.Region, "partition": "aws"}},
		"packageVulnerabilityDetails": map[string]any{
			"vulnerabilityId": cve, "source": "NVD",
			"vulnerablePackages": []any{map[string]any{"name": pkg, "version": "1.0"}},
		},
	}
}

func motoSeed(t *testing.T, account string, pages ...[]map[string]any) {
	t.Helper()
	motoenv.PostAPI(t, "/moto-api/static/inspector2/findings-results", map[string]any{"results": pages, "account_id": account, "region": motoenv.Region})
}

func motoInstanceIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("i-0%s%04x", motoenv.Unique(""), i)
	}
	sort.Strings(ids)
	return ids
}

// listFindingsBody is what patchgate puts in ListFindings.
type listFindingsBody struct {
	MaxResults     int `json:"maxResults"`
	FilterCriteria struct {
		ResourceID    []struct{ Comparison, Value string } `json:"resourceId"`
		FindingStatus []struct{ Comparison, Value string } `json:"findingStatus"`
		FindingType   []struct{ Comparison, Value string } `json:"findingType"`
	} `json:"filterCriteria"`
}

func values(fs []struct{ Comparison, Value string }) []string {
	var out []string
	for _, f := range fs {
		if f.Comparison != "EQUALS" {
			return []string{"comparison " + f.Comparison}
		}
		out = append(out, f.Value)
	}
	return out
}

func TestMotoInspectorFindings(t *testing.T) {
	cfg, account := motoenv.FreshAccount(t)
	rec := motoenv.Record(t)
	cfg.BaseEndpoint = aws.String(rec.URL)
	v := &Verifier{SSM: ssm.NewFromConfig(cfg), Inspector: inspector2.NewFromConfig(cfg)}
	ctx := context.Background()

	// Today (plan): the ACTIVE findings of a phase's instances.
	ids := motoInstanceIDs(3)
	motoSeed(t, account, []map[string]any{
		motoFinding(account, ids[0], "CVE-2024-6387", "CRITICAL", "openssh-server", "ACTIVE", "YES"),
		motoFinding(account, ids[1], "CVE-2023-52425", "MEDIUM", "expat", "ACTIVE", "NO"),
	})
	listed, err := v.findings(ctx, scope{ids: ids}, findingFilter{statuses: []string{"ACTIVE"}})
	if err != nil {
		t.Fatal(err)
	}
	active := map[string]map[string]bool{}
	for _, f := range listed {
		if active[f.InstanceID] == nil {
			active[f.InstanceID] = map[string]bool{}
		}
		active[f.InstanceID][f.CVE] = true
	}
	want := map[string]map[string]bool{ids[0]: {"CVE-2024-6387": true}, ids[1]: {"CVE-2023-52425": true}}
	if fmt.Sprint(active) != fmt.Sprint(want) {
		t.Fatalf("ACTIVE findings %v, want %v", active, want)
	}
	var body listFindingsBody
	reqs := rec.Requests("/findings/list")
	if len(reqs) != 1 || json.Unmarshal(reqs[0].Body, &body) != nil {
		t.Fatalf("want one ListFindings, got %d", len(reqs))
	}
	if !slices.Equal(values(body.FilterCriteria.ResourceID), ids) || !slices.Equal(values(body.FilterCriteria.FindingStatus), []string{"ACTIVE"}) ||
		!slices.Equal(values(body.FilterCriteria.FindingType), []string{"PACKAGE_VULNERABILITY"}) || body.MaxResults != 100 {
		t.Fatalf("ListFindings sent %s", reqs[0].Body)
	}

	// After: ACTIVE and CLOSED findings of twelve instances, read in
	// Inspector's batches of ten resource ids, one page each.
	many := motoInstanceIDs(12)
	motoSeed(t, account,
		[]map[string]any{
			motoFinding(account, many[0], "CVE-2024-6387", "CRITICAL", "openssh-server", "CLOSED", "YES"),
			motoFinding(account, many[9], "CVE-2025-0001", "HIGH", "glibc", "ACTIVE", "PARTIAL"),
		},
		[]map[string]any{motoFinding(account, many[11], "CVE-2025-0002", "UNTRIAGED", "zlib", "ACTIVE", "NO")},
	)
	listedMany, err := v.findings(ctx, scope{ids: many}, findingFilter{statuses: []string{"ACTIVE", "CLOSED"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []result.Finding
	for _, f := range listedMany {
		got = append(got, f.Finding)
	}
	wantFindings := []result.Finding{
		{InstanceID: many[0], CVE: "CVE-2024-6387", Severity: "CRITICAL", Package: "openssh-server", FixAvailable: true, Status: "CLOSED"},
		{InstanceID: many[9], CVE: "CVE-2025-0001", Severity: "HIGH", Package: "glibc", FixAvailable: true, Status: "ACTIVE"},
		{InstanceID: many[11], CVE: "CVE-2025-0002", Severity: "UNTRIAGED", Package: "zlib", FixAvailable: false, Status: "ACTIVE"},
	}
	if fmt.Sprint(got) != fmt.Sprint(wantFindings) {
		t.Fatalf("findings\n got %+v\nwant %+v", got, wantFindings)
	}
	reqs = rec.Requests("/findings/list")[1:]
	if len(reqs) != 2 {
		t.Fatalf("twelve instances must take two ListFindings, got %d", len(reqs))
	}
	for i, batch := range [][]string{many[:10], many[10:]} {
		var b listFindingsBody
		if json.Unmarshal(reqs[i].Body, &b) != nil || !slices.Equal(values(b.FilterCriteria.ResourceID), batch) ||
			!slices.Equal(values(b.FilterCriteria.FindingStatus), []string{"ACTIVE", "CLOSED"}) {
			t.Fatalf("batch %d sent %s", i, reqs[i].Body)
		}
	}
}

func TestMotoInspectorCoverageAndPatchStatesMissing(t *testing.T) {
	cfg, _ := motoenv.FreshAccount(t)
	v := &Verifier{SSM: ssm.NewFromConfig(cfg), Inspector: inspector2.NewFromConfig(cfg)}
	ctx := context.Background()
	ids := motoInstanceIDs(2)

	if _, _, err := v.coverage(ctx, scope{ids: ids}, time.Time{}); err == nil || !strings.Contains(err.Error(), "inspector2:ListCoverage") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("moto has no ListCoverage: want an error naming it, got %v", err)
	}
	// The Inspector gate cannot pass without coverage: After fails.
	patched := []result.Instance{{ID: ids[0], Outcome: result.OutcomeSucceeded, PatchEndedAt: time.Now()}}
	res, err := v.After(ctx, Settings{Inspector: true, FailOnSeverity: "HIGH", RescanTimeout: time.Minute}, time.Now(), &Snapshot{}, patched)
	if err == nil || res != nil || !strings.Contains(err.Error(), "inspector2:ListCoverage") {
		t.Fatalf("After without coverage: want an error naming ListCoverage, got %+v, %v", res, err)
	}
	// Compliance verification reads DescribeInstancePatchStates after the
	// phase (Before reads nothing): After fails naming it.
	if res, err := v.After(ctx, Settings{Compliance: true}, time.Now(), &Snapshot{}, patched); err == nil || res != nil || !strings.Contains(err.Error(), "ssm:DescribeInstancePatchStates") {
		t.Fatalf("moto has no DescribeInstancePatchStates: want an error naming it, got %+v, %v", res, err)
	}
}
