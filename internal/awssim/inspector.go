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
	err, drop := s.preflightIn(op, regionKey{account, region})
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

// lastScan is when Inspector last scanned the instance, at now, and
// whether it has scanned since a successful install ended.
func (in *Instance) lastScan(now time.Time) (time.Time, bool) {
	last, rescanned := in.baselineScan, false
	if in.Coverage != "SUCCESSFUL" {
		return last, false
	}
	r := in.sim.realism()
	if r != nil {
		// Inventory passes run whether or not anything was patched; a
		// patch shows at the first pass after it ends.
		last = r.lastPass(in.sim.origin, in.num, now)
	}
	for _, inv := range in.installs {
		if inv.final != "Success" || inv.notStarted || inv.end.IsZero() || (!inv.cancelledAt.IsZero() && inv.cancelledAt.Before(inv.end)) {
			continue
		}
		if r != nil {
			rescanned = rescanned || !r.firstPass(in.sim.origin, in.num, inv.end).After(now)
			continue
		}
		if scan := inv.end.Add(in.ScanDelay); !scan.After(now) && scan.After(last) {
			last, rescanned = scan, true
		}
	}
	return last, rescanned
}

// realism is the realistic model, or nil (also for instances made
// outside New).
func (s *Sim) realism() *Realism {
	if s == nil {
		return nil
	}
	return s.real
}

type findingView struct {
	spec   FindingSpec
	status string
	at     time.Time
}

// eachFinding calls fn with the instance's findings (ACTIVE and CLOSED) at
// now, in a fixed order, from index from on, until fn returns false: the
// scenario's findings, then the realistic model's, generated on demand
// from the seed so that no instance holds its findings in memory.
func (in *Instance) eachFinding(now time.Time, from int, fn func(j int, f findingView) bool) {
	last, rescanned := in.lastScan(now)
	view := func(f FindingSpec) (findingView, bool) {
		if f.Fix == "" {
			f.Fix = "YES"
		}
		switch {
		case f.New && !rescanned:
			return findingView{}, false
		case rescanned && f.Fix != "NO" && !f.Unpatched && !f.New:
			return findingView{f, "CLOSED", last}, true
		}
		return findingView{f, "ACTIVE", last}, true
	}
	for j := from; j < len(in.Findings); j++ {
		if v, ok := view(in.Findings[j]); ok && !fn(j, v) {
			return
		}
	}
	r := in.sim.realism()
	if r == nil || in.Coverage == "PENDING_INITIAL_SCAN" || in.Coverage == "UNMANAGED_EC2_INSTANCE" {
		return
	}
	base := len(in.Findings)
	for j := max(from-base, 0); j < r.findingCount(in.num); j++ {
		if v, ok := view(r.finding(in.sim.catalogue, in.num, j)); ok && !fn(base+j, v) {
			return
		}
	}
}

// findingCriteria is ListFindings' filterCriteria, as far as the
// simulator filters. Matching is in its two methods only, so that every
// operation over findings filters alike.
type findingCriteria struct {
	ResourceId      []strFilter
	FindingStatus   []strFilter
	Severity        []strFilter
	FixAvailable    []strFilter
	VulnerabilityId []strFilter
	FindingType     []strFilter
	ResourceTags    []mapFilter
	ResourceType    []strFilter
}

// validate applies Inspector's limit of 10 entries a filter.
func (fc *findingCriteria) validate() error {
	for name, n := range map[string]int{"resourceId": len(fc.ResourceId), "findingStatus": len(fc.FindingStatus), "severity": len(fc.Severity),
		"fixAvailable": len(fc.FixAvailable), "vulnerabilityId": len(fc.VulnerabilityId), "resourceTags": len(fc.ResourceTags)} {
		if n > 10 {
			return validation("filterCriteria.%s has %d entries; the maximum is 10", name, n)
		}
	}
	return nil
}

// instance reports whether the instance's findings can match.
func (fc *findingCriteria) instance(in *Instance) bool {
	return strMatch(fc.ResourceId, in.ID) && tagsMatch(fc.ResourceTags, in.Tags) && strMatch(fc.ResourceType, "AWS_EC2_INSTANCE")
}

// finding reports whether a finding of a matching instance matches.
func (fc *findingCriteria) finding(f findingView) bool {
	return strMatch(fc.FindingStatus, f.status) && strMatch(fc.Severity, f.spec.Severity) && strMatch(fc.FixAvailable, fixOf(f.spec)) &&
		strMatch(fc.VulnerabilityId, f.spec.CVE) && strMatch(fc.FindingType, "PACKAGE_VULNERABILITY")
}

func (s *Sim) listFindings(body []byte, account, region string) (any, error) {
	var in struct {
		FilterCriteria findingCriteria `json:"filterCriteria"`
		MaxResults     *int            `json:"maxResults"`
		NextToken      string          `json:"nextToken"`
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
	fc := &in.FilterCriteria
	if err := fc.validate(); err != nil {
		return nil, err
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
		if !fc.instance(inst) {
			continue
		}
		from := 0
		if i == i0 {
			from = j0
		}
		inst.eachFinding(now, from, func(j int, f findingView) bool {
			if !fc.finding(f) {
				return true
			}
			if len(rows) == max {
				next = fmt.Sprintf("%d:%d", i, j)
				return false
			}
			rows = append(rows, row{inst, f})
			return true
		})
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
