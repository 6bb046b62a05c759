package awssim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

func init() { extraSSM = append(extraSSM, patchBaselines) }

// baseline is a customer-owned patch baseline. Its definition is kept as
// the request sent it (the documented member names), so Get answers with
// exactly what Create/Update stored.
type baseline struct {
	id       string
	def      map[string]any
	tags     map[string]string
	created  time.Time
	modified time.Time
	token    string // ClientToken of the Create that made it
}

// baselineState is the patch-baseline part of one account and region.
type baselineState struct {
	byID   map[string]*baseline
	groups map[string]string // "OS\x00patch group" -> baseline id
	next   int
}

// awsDefaultBaselines are the AWS-owned default baselines by OS; their ids
// are ARNs, as in AWS.
var awsDefaultBaselines = map[string]string{
	"WINDOWS":                 "AWS-DefaultPatchBaseline",
	"AMAZON_LINUX_2":          "AWS-AmazonLinux2DefaultPatchBaseline",
	"AMAZON_LINUX_2023":       "AWS-AmazonLinux2023DefaultPatchBaseline",
	"UBUNTU":                  "AWS-UbuntuDefaultPatchBaseline",
	"DEBIAN":                  "AWS-DebianDefaultPatchBaseline",
	"REDHAT_ENTERPRISE_LINUX": "AWS-RedHatDefaultPatchBaseline",
}

func awsBaselineID(region, os string) string {
	return fmt.Sprintf("arn:aws:ssm:%s:aws:patchbaseline/pb-%016x", region, len(os)*7919+int(os[0]))
}

var baselineName = regexp.MustCompile(`^[a-zA-Z0-9_\-.]{3,128}$`)

// editable are the members Create and Update accept besides Name.
var editable = []string{"Description", "GlobalFilters", "ApprovalRules", "ApprovedPatches", "ApprovedPatchesComplianceLevel",
	"ApprovedPatchesEnableNonSecurity", "RejectedPatches", "RejectedPatchesAction", "Sources", "AvailableSecurityUpdatesComplianceStatus"}

func (s *Sim) baselines(k regionKey) *baselineState {
	if s.patchBaselines == nil {
		s.patchBaselines = map[regionKey]*baselineState{}
	}
	st := s.patchBaselines[k]
	if st == nil {
		st = &baselineState{byID: map[string]*baseline{}, groups: map[string]string{}}
		s.patchBaselines[k] = st
	}
	return st
}

func baselineNotFound(id string) error {
	return &apiError{Code: "DoesNotExistException", Message: "Patch Baseline " + id + " does not exist.", Status: 400}
}

func (b *baseline) view(k regionKey, st *baselineState) map[string]any {
	v := map[string]any{"BaselineId": b.id, "CreatedDate": epoch(b.created), "ModifiedDate": epoch(b.modified)}
	for key, val := range b.def {
		v[key] = val
	}
	var groups []string
	for key, id := range st.groups {
		if id == b.id {
			groups = append(groups, key[strings.IndexByte(key, 0)+1:])
		}
	}
	sort.Strings(groups)
	v["PatchGroups"] = groups
	return v
}

func patchBaselines(s *Sim, op string, k regionKey, now time.Time, body []byte) (any, bool, error) {
	switch op {
	case "CreatePatchBaseline", "UpdatePatchBaseline", "GetPatchBaseline", "DeletePatchBaseline", "DescribePatchBaselines",
		"RegisterPatchBaselineForPatchGroup", "DeregisterPatchBaselineForPatchGroup", "GetPatchBaselineForPatchGroup",
		"AddTagsToResource", "RemoveTagsFromResource", "ListTagsForResource":
	default:
		return nil, false, nil
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, true, validation("%v", err)
	}
	str := func(key string) string { v, _ := in[key].(string); return v }
	st := s.baselines(k)
	out, err := func() (any, error) {
		switch op {
		case "CreatePatchBaseline":
			name := str("Name")
			if !baselineName.MatchString(name) {
				return nil, validation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{3,128}$", name)
			}
			if tok := str("ClientToken"); tok != "" {
				for _, b := range st.byID {
					if b.token == tok {
						return map[string]any{"BaselineId": b.id}, nil
					}
				}
			}
			if err := checkBaselineDef(in); err != nil {
				return nil, err
			}
			if len(st.byID) >= 50 {
				return nil, &apiError{Code: "ResourceLimitExceededException", Message: "You have reached the limit of 50 patch baselines in this Region.", Status: 400}
			}
			st.next++
			b := &baseline{id: fmt.Sprintf("pb-%017x", 0xa000+st.next+len(k.account)), def: map[string]any{"Name": name}, tags: map[string]string{},
				created: now, modified: now, token: str("ClientToken")}
			os := str("OperatingSystem")
			if os == "" {
				os = "WINDOWS"
			}
			b.def["OperatingSystem"] = os
			for _, key := range editable {
				if v, ok := in[key]; ok {
					b.def[key] = v
				}
			}
			tags, err := tagList(in["Tags"])
			if err != nil {
				return nil, err
			}
			for key, v := range tags {
				b.tags[key] = v
			}
			st.byID[b.id] = b
			return map[string]any{"BaselineId": b.id}, nil

		case "UpdatePatchBaseline":
			b := st.byID[str("BaselineId")]
			if b == nil {
				return nil, baselineNotFound(str("BaselineId"))
			}
			if err := checkBaselineDef(in); err != nil {
				return nil, err
			}
			if name, ok := in["Name"].(string); ok {
				if !baselineName.MatchString(name) {
					return nil, validation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint", name)
				}
				b.def["Name"] = name
			}
			replace, _ := in["Replace"].(bool)
			for _, key := range editable {
				if v, ok := in[key]; ok {
					b.def[key] = v
				} else if replace {
					delete(b.def, key)
				}
			}
			b.modified = now
			v := b.view(k, st)
			delete(v, "PatchGroups")
			return v, nil

		case "GetPatchBaseline":
			b := st.byID[str("BaselineId")]
			if b == nil {
				return nil, baselineNotFound(str("BaselineId"))
			}
			return b.view(k, st), nil

		case "DeletePatchBaseline":
			id := str("BaselineId")
			b := st.byID[id]
			if b == nil {
				return nil, baselineNotFound(id)
			}
			for _, gid := range st.groups {
				if gid == id {
					return nil, &apiError{Code: "ResourceInUseException", Message: "Patch Baseline " + id + " is registered to a patch group; deregister it first.", Status: 400}
				}
			}
			delete(st.byID, id)
			return map[string]any{"BaselineId": id}, nil

		case "DescribePatchBaselines":
			return describeBaselines(k, st, in)

		case "RegisterPatchBaselineForPatchGroup":
			id, group := str("BaselineId"), str("PatchGroup")
			b := st.byID[id]
			if b == nil {
				return nil, baselineNotFound(id)
			}
			if group == "" || len(group) > 256 {
				return nil, validation("1 validation error detected: Value at 'patchGroup' failed to satisfy constraint: Member must have length between 1 and 256")
			}
			key := b.def["OperatingSystem"].(string) + "\x00" + group
			if cur, ok := st.groups[key]; ok {
				return nil, &apiError{Code: "AlreadyExistsException", Message: fmt.Sprintf("Patch Group %s is already registered to baseline %s.", group, cur), Status: 400}
			}
			st.groups[key] = id
			return map[string]any{"BaselineId": id, "PatchGroup": group}, nil

		case "DeregisterPatchBaselineForPatchGroup":
			id, group := str("BaselineId"), str("PatchGroup")
			b := st.byID[id]
			if b == nil {
				return nil, baselineNotFound(id)
			}
			key := b.def["OperatingSystem"].(string) + "\x00" + group
			if st.groups[key] != id {
				return nil, &apiError{Code: "DoesNotExistException", Message: fmt.Sprintf("Patch Group %s is not registered to baseline %s.", group, id), Status: 400}
			}
			delete(st.groups, key)
			return map[string]any{"BaselineId": id, "PatchGroup": group}, nil

		case "GetPatchBaselineForPatchGroup":
			group, os := str("PatchGroup"), str("OperatingSystem")
			if os == "" {
				os = "WINDOWS"
			}
			if id, ok := st.groups[os+"\x00"+group]; ok {
				return map[string]any{"BaselineId": id, "PatchGroup": group, "OperatingSystem": os}, nil
			}
			// No registration: AWS answers with the OS's default baseline.
			return map[string]any{"BaselineId": awsBaselineID(k.region, os), "PatchGroup": group, "OperatingSystem": os}, nil

		default: // tags
			if str("ResourceType") != "PatchBaseline" {
				return nil, &apiError{Code: "InvalidResourceType", Message: "awssim only tags PatchBaseline resources", Status: 400}
			}
			b := st.byID[str("ResourceId")]
			if b == nil {
				return nil, &apiError{Code: "InvalidResourceId", Message: "The resource ID is not valid: " + str("ResourceId"), Status: 400}
			}
			switch op {
			case "AddTagsToResource":
				tags, err := tagList(in["Tags"])
				if err != nil {
					return nil, err
				}
				for key, v := range tags {
					b.tags[key] = v
				}
				return map[string]any{}, nil
			case "RemoveTagsFromResource":
				keys, _ := in["TagKeys"].([]any)
				for _, key := range keys {
					if s, ok := key.(string); ok {
						delete(b.tags, s)
					}
				}
				return map[string]any{}, nil
			}
			var list []map[string]string
			for key, v := range b.tags {
				list = append(list, map[string]string{"Key": key, "Value": v})
			}
			sort.Slice(list, func(i, j int) bool { return list[i]["Key"] < list[j]["Key"] })
			return map[string]any{"TagList": list}, nil
		}
	}()
	return out, true, err
}

// checkBaselineDef applies the documented limits patchgate could break.
func checkBaselineDef(in map[string]any) error {
	if ar, ok := in["ApprovalRules"].(map[string]any); ok {
		rules, _ := ar["PatchRules"].([]any)
		if len(rules) > 10 {
			return validation("1 validation error detected: Value at 'approvalRules.patchRules' failed to satisfy constraint: Member must have length less than or equal to 10")
		}
		for i, r := range rules {
			rule, _ := r.(map[string]any)
			_, days := rule["ApproveAfterDays"]
			_, until := rule["ApproveUntilDate"]
			if days == until {
				return validation("approval rule %d must set exactly one of ApproveAfterDays and ApproveUntilDate", i+1)
			}
			fg, _ := rule["PatchFilterGroup"].(map[string]any)
			filters, _ := fg["PatchFilters"].([]any)
			if len(filters) > 4 {
				return validation("1 validation error detected: Value at 'approvalRules.patchRules.%d.member.patchFilterGroup.patchFilters' failed to satisfy constraint: Member must have length less than or equal to 4", i+1)
			}
		}
	}
	if action, ok := in["RejectedPatchesAction"].(string); ok && action != "ALLOW_AS_DEPENDENCY" && action != "BLOCK" {
		return validation("Value '%s' at 'rejectedPatchesAction' failed to satisfy enum value set: [ALLOW_AS_DEPENDENCY, BLOCK]", action)
	}
	return nil
}

func tagList(v any) (map[string]string, error) {
	list, _ := v.([]any)
	if len(list) > 1000 {
		return nil, validation("too many tags")
	}
	out := map[string]string{}
	for _, t := range list {
		m, _ := t.(map[string]any)
		key, _ := m["Key"].(string)
		val, _ := m["Value"].(string)
		if key == "" || len(key) > 128 || len(val) > 256 {
			return nil, validation("tag keys are 1..128 characters and values at most 256")
		}
		out[key] = val
	}
	return out, nil
}

func describeBaselines(k regionKey, st *baselineState, in map[string]any) (any, error) {
	max := 100
	if v, ok := in["MaxResults"].(float64); ok {
		if v < 1 || v > 100 {
			return nil, validation("1 validation error detected: Value '%v' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", v)
		}
		max = int(v)
	}
	owner, prefix := "All", ""
	filters, _ := in["Filters"].([]any)
	for _, f := range filters {
		m, _ := f.(map[string]any)
		vals, _ := m["Values"].([]any)
		if len(vals) != 1 {
			return nil, validation("filter %v takes exactly one value", m["Key"])
		}
		val, _ := vals[0].(string)
		switch m["Key"] {
		case "NAME_PREFIX":
			prefix = val
		case "OWNER":
			owner = val
		default:
			return nil, validation("unknown DescribePatchBaselines filter key %v: use NAME_PREFIX or OWNER", m["Key"])
		}
	}
	type row struct{ id, name, os, desc string }
	var rows []row
	if owner == "All" || owner == "AWS" {
		for os, name := range awsDefaultBaselines {
			rows = append(rows, row{awsBaselineID(k.region, os), name, os, "Default patch baseline provided by AWS."})
		}
	}
	if owner == "All" || owner == "Self" {
		for _, b := range st.byID {
			desc, _ := b.def["Description"].(string)
			rows = append(rows, row{b.id, b.def["Name"].(string), b.def["OperatingSystem"].(string), desc})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	var ids []map[string]any
	for _, r := range rows {
		if strings.HasPrefix(r.name, prefix) {
			ids = append(ids, map[string]any{"BaselineId": r.id, "BaselineName": r.name, "OperatingSystem": r.os,
				"BaselineDescription": r.desc, "DefaultBaseline": strings.HasPrefix(r.id, "arn:aws:ssm:")})
		}
	}
	start := 0
	if tok, ok := in["NextToken"].(string); ok && tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(ids) {
			return nil, &apiError{Code: "InvalidNextToken", Message: "The specified token is not valid.", Status: 400}
		}
		start = n
	}
	end := min(start+max, len(ids))
	out := map[string]any{"BaselineIdentities": ids[start:end]}
	if end < len(ids) {
		out["NextToken"] = strconv.Itoa(end)
	}
	return out, nil
}
