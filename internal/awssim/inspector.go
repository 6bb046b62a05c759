package awssim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Amazon Inspector (restJson1): ListFindings and ListCoverage over the fleet
// model. An instance is rescanned ScanDelay after each successful Install,
// if its coverage is SUCCESSFUL; the rescan closes the findings the patch
// fixed and reveals findings marked new.

type strFilter struct {
	Comparison string `json:"comparison"`
	Value      string `json:"value"`
}

type mapFilter struct {
	Comparison string `json:"comparison"`
	Key        string `json:"key"`
	Value      string `json:"value"`
}

func (s *Sim) serveInspector(w http.ResponseWriter, path string, body []byte, account, region string) {
	op := "inspector2:ListFindings"
	if path == "/coverage/list" {
		op = "inspector2:ListCoverage"
	}
	err, drop := s.preflight(op)
	if drop {
		dropConnection(w)
		return
	}
	var out any
	if err == nil {
		s.mu.Lock()
		if path == "/findings/list" {
			out, err = s.listFindings(body, account, region)
		} else {
			out, err = s.listCoverage(body, account, region)
		}
		s.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		ae := err.(*apiError)
		if ae.Code == "ThrottlingException" {
			ae.Status = 429
		}
		w.Header().Set("X-Amzn-ErrorType", ae.Code)
		w.WriteHeader(ae.Status)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": ae.Message})
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

// lastScan is when Inspector last scanned the instance, at now.
func (in *Instance) lastScan(now time.Time) (time.Time, bool) {
	last, rescanned := in.baselineScan, false
	if in.Coverage != "SUCCESSFUL" {
		return last, false
	}
	for _, inv := range in.installs {
		if inv.final != "Success" || inv.notStarted || inv.end.IsZero() || (!inv.cancelledAt.IsZero() && inv.cancelledAt.Before(inv.end)) {
			continue
		}
		if scan := inv.end.Add(in.ScanDelay); !scan.After(now) && scan.After(last) {
			last, rescanned = scan, true
		}
	}
	return last, rescanned
}

type findingView struct {
	spec   FindingSpec
	status string
	at     time.Time
}

// findings are the instance's findings (ACTIVE and CLOSED) at now.
func (in *Instance) findings(now time.Time) []findingView {
	last, rescanned := in.lastScan(now)
	var out []findingView
	for _, f := range in.Findings {
		if f.Fix == "" {
			f.Fix = "YES"
		}
		switch {
		case f.New && !rescanned:
			continue
		case rescanned && f.Fix != "NO" && !f.Unpatched && !f.New:
			out = append(out, findingView{f, "CLOSED", last})
		default:
			out = append(out, findingView{f, "ACTIVE", last})
		}
	}
	return out
}

func (s *Sim) listFindings(body []byte, account, region string) (any, error) {
	var in struct {
		FilterCriteria struct {
			ResourceId      []strFilter
			FindingStatus   []strFilter
			Severity        []strFilter
			FixAvailable    []strFilter
			VulnerabilityId []strFilter
			FindingType     []strFilter
			ResourceTags    []mapFilter
			ResourceType    []strFilter
		} `json:"filterCriteria"`
		MaxResults *int   `json:"maxResults"`
		NextToken  string `json:"nextToken"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	max := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, validation("maxResults must be between 1 and 100")
		}
		max = *in.MaxResults
	}
	fc := in.FilterCriteria
	for name, n := range map[string]int{"resourceId": len(fc.ResourceId), "findingStatus": len(fc.FindingStatus), "severity": len(fc.Severity),
		"fixAvailable": len(fc.FixAvailable), "vulnerabilityId": len(fc.VulnerabilityId), "resourceTags": len(fc.ResourceTags)} {
		if n > 10 {
			return nil, validation("filterCriteria.%s has %d entries; the maximum is 10", name, n)
		}
	}
	now := s.clock.Now()
	type row struct {
		in *Instance
		f  findingView
	}
	// The token is the position of the next finding (instance, finding), so
	// a page costs its own rows, not a pass over the fleet.
	fleet := s.fleet[regionKey{account, region}]
	i0, j0 := findingToken(in.NextToken)
	var rows []row
	next := ""
	for i := i0; i < len(fleet) && next == ""; i++ {
		inst := fleet[i]
		if !strMatch(fc.ResourceId, inst.ID) || !tagsMatch(fc.ResourceTags, inst.Tags) || !strMatch(fc.ResourceType, "AWS_EC2_INSTANCE") {
			continue
		}
		for j, f := range inst.findings(now) {
			if i == i0 && j < j0 {
				continue
			}
			if strMatch(fc.FindingStatus, f.status) && strMatch(fc.Severity, f.spec.Severity) && strMatch(fc.FixAvailable, fixOf(f.spec)) &&
				strMatch(fc.VulnerabilityId, f.spec.CVE) && strMatch(fc.FindingType, "PACKAGE_VULNERABILITY") {
				if len(rows) == max {
					next = fmt.Sprintf("%d:%d", i, j)
					break
				}
				rows = append(rows, row{inst, f})
			}
		}
	}
	list := []map[string]any{}
	for _, r := range rows {
		list = append(list, map[string]any{
			"findingArn":   fmt.Sprintf("arn:aws:inspector2:%s:%s:finding/%s-%s", region, account, r.in.ID, r.f.spec.CVE),
			"awsAccountId": account, "type": "PACKAGE_VULNERABILITY", "severity": r.f.spec.Severity, "status": r.f.status,
			"fixAvailable": fixOf(r.f.spec), "title": r.f.spec.CVE + " - " + r.f.spec.Package, "description": "simulated finding",
			"firstObservedAt": epoch(r.f.firstObserved(r.in)), "lastObservedAt": epoch(r.f.at), "updatedAt": epoch(r.f.at),
			"remediation": map[string]any{"recommendation": map[string]any{"text": "update " + r.f.spec.Package}},
			"resources":   []any{map[string]any{"id": r.in.ID, "type": "AWS_EC2_INSTANCE", "region": region, "partition": "aws", "tags": r.in.Tags}},
			"packageVulnerabilityDetails": map[string]any{"vulnerabilityId": r.f.spec.CVE, "source": "NVD",
				"vulnerablePackages": []any{map[string]any{"name": r.f.spec.Package, "version": "1.0"}}},
		})
	}
	out := map[string]any{"findings": list}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func (s *Sim) listCoverage(body []byte, account, region string) (any, error) {
	var in struct {
		FilterCriteria struct {
			ResourceId      []strFilter
			Ec2InstanceTags []mapFilter
			ResourceType    []strFilter
			LastScannedAt   []struct {
				StartInclusive *float64 `json:"startInclusive"`
				EndInclusive   *float64 `json:"endInclusive"`
			} `json:"lastScannedAt"`
		} `json:"filterCriteria"`
		MaxResults *int   `json:"maxResults"`
		NextToken  string `json:"nextToken"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	max := 200
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 200 {
			return nil, validation("maxResults must be between 1 and 200")
		}
		max = *in.MaxResults
	}
	if len(in.FilterCriteria.ResourceId) > 10 {
		return nil, validation("filterCriteria.resourceId has %d entries; the maximum is 10", len(in.FilterCriteria.ResourceId))
	}
	now := s.clock.Now()
	fleet := s.fleet[regionKey{account, region}]
	list := []map[string]any{}
	next := ""
	for i := tokenIndex(in.NextToken); i < len(fleet); i++ {
		inst := fleet[i]
		if !strMatch(in.FilterCriteria.ResourceId, inst.ID) || !tagsMatch(in.FilterCriteria.Ec2InstanceTags, inst.Tags) ||
			!strMatch(in.FilterCriteria.ResourceType, "AWS_EC2_INSTANCE") {
			continue
		}
		last, _ := inst.lastScan(now)
		inWindow := true
		for _, d := range in.FilterCriteria.LastScannedAt {
			if d.StartInclusive != nil && epoch(last) < *d.StartInclusive || d.EndInclusive != nil && epoch(last) > *d.EndInclusive {
				inWindow = false
			}
		}
		if !inWindow {
			continue
		}
		if len(list) == max {
			next = strconv.Itoa(i)
			break
		}
		code := "ACTIVE"
		if inst.Coverage == "UNMANAGED_EC2_INSTANCE" || inst.Coverage == "PENDING_INITIAL_SCAN" {
			code = "INACTIVE"
		}
		list = append(list, map[string]any{"accountId": account, "resourceId": inst.ID, "resourceType": "AWS_EC2_INSTANCE",
			"scanType": "PACKAGE", "scanMode": "EC2_SSM_AGENT_BASED", "lastScannedAt": epoch(last),
			"scanStatus": map[string]any{"statusCode": code, "reason": inst.Coverage}})
	}
	out := map[string]any{"coveredResources": list}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

// firstObserved is when Inspector first saw the finding: a finding that
// only appears at the rescan after a patch was first seen then.
func (f findingView) firstObserved(in *Instance) time.Time {
	if f.spec.New {
		return f.at
	}
	return in.baselineScan
}

// findingToken reads a ListFindings token "instance:finding".
func findingToken(tok string) (int, int) {
	a, b, ok := strings.Cut(tok, ":")
	if !ok {
		return 0, 0
	}
	return tokenIndex(a), tokenIndex(b)
}

func fixOf(f FindingSpec) string {
	if f.Fix == "" {
		return "YES"
	}
	return f.Fix
}

// strMatch applies Inspector string filters: entries with the same field
// are ORed (EQUALS, PREFIX) and NOT_EQUALS excludes.
func strMatch(fs []strFilter, v string) bool {
	if len(fs) == 0 {
		return true
	}
	any := false
	positive := false
	for _, f := range fs {
		switch f.Comparison {
		case "NOT_EQUALS":
			if v == f.Value {
				return false
			}
		case "PREFIX":
			positive = true
			if len(v) >= len(f.Value) && v[:len(f.Value)] == f.Value {
				any = true
			}
		default:
			positive = true
			if v == f.Value {
				any = true
			}
		}
	}
	return any || !positive
}

func tagsMatch(fs []mapFilter, tags map[string]string) bool {
	for _, f := range fs {
		if tags[f.Key] != f.Value {
			return false
		}
	}
	return true
}
