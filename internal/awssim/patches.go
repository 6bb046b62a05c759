package awssim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

func init() { extraSSM = append(extraSSM, describeInstancePatches) }

// patchList is an instance's approved patches and their state at now: the
// first Missing patches are missing until a successful Install, after which
// StillMissing stay missing and FailedAfter are failed. Patches carry the
// CVEs of the instance's findings, in order.
func (in *Instance) patchList(now time.Time) []map[string]any {
	st := in.patchState(now)
	missing, _ := st["MissingCount"].(int)
	failed, _ := st["FailedCount"].(int)
	pending, _ := st["InstalledPendingRebootCount"].(int)
	var out []map[string]any
	for i := 0; i < in.Missing; i++ {
		state := "Installed"
		switch {
		case i < missing:
			state = "Missing"
		case i < missing+failed:
			state = "Failed"
		case i < missing+failed+pending:
			state = "InstalledPendingReboot"
		}
		p := map[string]any{"Title": fmt.Sprintf("ALAS2023-2026-%03d security update", i+1), "KBId": fmt.Sprintf("ALAS2023-2026-%03d", i+1),
			"Classification": "Security", "Severity": "Important", "State": state, "InstalledTime": epoch(in.baselineScan)}
		if i < len(in.Findings) {
			p["CVEIds"] = in.Findings[i].CVE
			p["Severity"] = strings.ToUpper(in.Findings[i].Severity[:1]) + strings.ToLower(in.Findings[i].Severity[1:])
		}
		out = append(out, p)
	}
	return out
}

func describeInstancePatches(s *Sim, op string, k regionKey, now time.Time, body []byte) (any, bool, error) {
	if op != "DescribeInstancePatches" {
		return nil, false, nil
	}
	var in struct {
		InstanceId string
		Filters    []struct {
			Key    string
			Values []string
		}
		MaxResults *int
		NextToken  string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, true, validation("%v", err)
	}
	max := 50
	if in.MaxResults != nil {
		if *in.MaxResults < 10 || *in.MaxResults > 100 {
			return nil, true, validation("Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 10 and 100", *in.MaxResults)
		}
		max = *in.MaxResults
	}
	inst := s.byID[in.InstanceId]
	if inst == nil || inst.Account != k.account || inst.Region != k.region {
		return nil, true, &apiError{Code: "InvalidInstanceId", Message: "instance " + in.InstanceId + " is not a managed instance", Status: 400}
	}
	var rows []map[string]any
	for _, p := range inst.patchList(now) {
		ok := true
		for _, f := range in.Filters {
			v, _ := p[f.Key].(string)
			found := false
			for _, want := range f.Values {
				found = found || want == v
			}
			ok = ok && found
		}
		if ok {
			rows = append(rows, p)
		}
	}
	start := tokenIndex(in.NextToken)
	end := min(start+max, len(rows))
	out := map[string]any{"Patches": rows[min(start, len(rows)):end]}
	if end < len(rows) {
		out["NextToken"] = strconv.Itoa(end)
	}
	return out, true, nil
}
