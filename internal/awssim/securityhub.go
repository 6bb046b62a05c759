package awssim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// ImportedFinding is a Security Hub finding as the simulator holds it.
type ImportedFinding struct {
	Account, ID                                    string
	Title, ComplianceStatus, Workflow, RecordState string
	Raw                                            map[string]any
}

// SecurityHubFindings returns every finding held, sorted by account and id,
// and how many BatchImportFindings calls imported at least one.
func (s *Sim) SecurityHubFindings() ([]ImportedFinding, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ImportedFinding
	for acct, byID := range s.safety.findings {
		for id, f := range byID {
			out = append(out, ImportedFinding{Account: acct, ID: id, Title: str(f["Title"]), ComplianceStatus: str(sub1(f, "Compliance", "Status")),
				Workflow: str(sub1(f, "Workflow", "Status")), RecordState: str(f["RecordState"]), Raw: f})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account+out[i].ID < out[j].Account+out[j].ID })
	return out, s.safety.imports
}

func str(v any) string { s, _ := v.(string); return s }

func sub1(m map[string]any, k, f string) any {
	if o, ok := m[k].(map[string]any); ok {
		return o[f]
	}
	return nil
}

// serveSecurityHub answers Security Hub's REST-JSON: BatchImportFindings
// (POST /findings/import), GetFindings (POST /findings) and
// BatchUpdateFindings (PATCH /findings/batchupdate). As Security Hub does,
// an import updates a finding with the same ProductArn and Id instead of
// adding one, and ignores Workflow once the finding exists (only
// BatchUpdateFindings changes it).
func (s *Sim) serveSecurityHub(w http.ResponseWriter, r *http.Request, body []byte, account, region string) {
	var op string
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/findings/import":
		op = "BatchImportFindings"
	case r.Method == http.MethodPost && r.URL.Path == "/findings":
		op = "GetFindings"
	case r.Method == http.MethodPatch && r.URL.Path == "/findings/batchupdate":
		op = "BatchUpdateFindings"
	default:
		op = "Unknown"
	}
	err, drop := s.preflight("securityhub:" + op)
	w.Header().Set("Content-Type", "application/json")
	var out any
	if err == nil {
		var in map[string]any
		if jerr := json.Unmarshal(body, &in); jerr != nil {
			err = &apiError{Code: "InvalidInputException", Message: "body is not a JSON object", Status: 400}
		} else {
			out, err = s.securityHub(op, in, account, region)
		}
	}
	if drop { // the call took effect; its answer is lost
		dropConnection(w)
		return
	}
	if err != nil {
		ae := err.(*apiError)
		if ae.Code == "ThrottlingException" {
			ae = &apiError{Code: "TooManyRequestsException", Message: "Rate exceeded", Status: 429}
		}
		w.Header().Set("X-Amzn-ErrorType", ae.Code)
		w.WriteHeader(ae.Status)
		_ = json.NewEncoder(w).Encode(map[string]string{"Code": ae.Code, "Message": ae.Message})
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

// asffRequired are the fields BatchImportFindings requires.
var asffRequired = []string{"AwsAccountId", "CreatedAt", "Description", "GeneratorId", "Id", "ProductArn", "Resources", "SchemaVersion", "Title", "Types", "UpdatedAt"}

func (s *Sim) securityHub(op string, in map[string]any, account, region string) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mine := s.safety.findings[account]
	if mine == nil {
		mine = map[string]map[string]any{}
		s.safety.findings[account] = mine
	}
	switch op {
	case "BatchImportFindings":
		list, _ := in["Findings"].([]any)
		if len(list) == 0 || len(list) > 100 {
			return nil, &apiError{Code: "InvalidInputException", Message: fmt.Sprintf("Findings must have 1 to 100 items, has %d", len(list)), Status: 400}
		}
		product := "arn:aws:securityhub:" + region + ":" + account + ":product/" + account + "/default"
		failed := []any{}
		ok := 0
		for _, item := range list {
			f, _ := item.(map[string]any)
			id := str(f["Id"])
			fail := func(code, msg string) {
				failed = append(failed, map[string]any{"Id": id, "ErrorCode": code, "ErrorMessage": msg})
			}
			missing := ""
			for _, k := range asffRequired {
				if f[k] == nil || f[k] == "" {
					missing = k
					break
				}
			}
			_, sevOK := f["Severity"].(map[string]any)
			switch {
			case missing != "":
				fail("InvalidInput", "Finding is missing required field "+missing)
			case !sevOK:
				fail("InvalidInput", "Finding is missing required field Severity")
			case str(f["ProductArn"]) != product:
				fail("AccessDeniedException", "ProductArn "+str(f["ProductArn"])+" is not the account's default product "+product)
			case str(f["AwsAccountId"]) != account:
				fail("AccessDeniedException", "AwsAccountId "+str(f["AwsAccountId"])+" is not the caller's account")
			case len(id) > 512:
				fail("InvalidInput", "Id is longer than 512 characters")
			default:
				if old := mine[id]; old != nil {
					// Once a finding exists, its workflow belongs to the
					// customer: an import does not change it.
					if wf, has := old["Workflow"]; has {
						f["Workflow"] = wf
					} else {
						delete(f, "Workflow")
					}
					f["CreatedAt"] = old["CreatedAt"]
				} else if f["Workflow"] == nil {
					f["Workflow"] = map[string]any{"Status": "NEW"}
				}
				if f["RecordState"] == nil {
					f["RecordState"] = "ACTIVE"
				}
				mine[id] = f
				ok++
			}
		}
		if ok > 0 {
			s.safety.imports++
		}
		return map[string]any{"FailedCount": len(failed), "SuccessCount": ok, "FailedFindings": failed}, nil

	case "GetFindings":
		filters, _ := in["Filters"].(map[string]any)
		max := 100
		if m, ok := in["MaxResults"].(float64); ok {
			if m < 1 || m > 100 {
				return nil, &apiError{Code: "InvalidInputException", Message: "MaxResults must be between 1 and 100", Status: 400}
			}
			max = int(m)
		}
		ids := make([]string, 0, len(mine))
		for id := range mine {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var out []any
		i := tokenIndex(str(in["NextToken"]))
		for ; i < len(ids) && len(out) < max; i++ {
			if matchFinding(mine[ids[i]], filters) {
				out = append(out, mine[ids[i]])
			}
		}
		res := map[string]any{"Findings": append([]any{}, out...)}
		if i < len(ids) {
			res["NextToken"] = strconv.Itoa(i)
		}
		return res, nil

	case "BatchUpdateFindings":
		idents, _ := in["FindingIdentifiers"].([]any)
		if len(idents) == 0 || len(idents) > 100 {
			return nil, &apiError{Code: "InvalidInputException", Message: fmt.Sprintf("FindingIdentifiers must have 1 to 100 items, has %d", len(idents)), Status: 400}
		}
		wf, _ := in["Workflow"].(map[string]any)
		processed, unprocessed := []any{}, []any{}
		for _, it := range idents {
			ident, _ := it.(map[string]any)
			f := mine[str(ident["Id"])]
			if f == nil || str(f["ProductArn"]) != str(ident["ProductArn"]) {
				unprocessed = append(unprocessed, map[string]any{"FindingIdentifier": ident, "ErrorCode": "FindingNotFound", "ErrorMessage": "Finding Not Found"})
				continue
			}
			if wf != nil {
				f["Workflow"] = map[string]any{"Status": wf["Status"]}
			}
			processed = append(processed, ident)
		}
		return map[string]any{"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}, nil
	}
	return nil, &apiError{Code: "InvalidInputException", Message: "awssim does not implement this Security Hub call", Status: 400}
}

// matchFinding applies GetFindings' string filters (EQUALS, PREFIX and
// NOT_EQUALS) to top-level fields, WorkflowStatus and ComplianceStatus.
func matchFinding(f map[string]any, filters map[string]any) bool {
	for key, v := range filters {
		conds, _ := v.([]any)
		var have string
		switch key {
		case "WorkflowStatus":
			have = str(sub1(f, "Workflow", "Status"))
		case "ComplianceStatus":
			have = str(sub1(f, "Compliance", "Status"))
		default:
			have = str(f[key])
		}
		anyEq, hasEq := false, false
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			val, cmp := str(cm["Value"]), str(cm["Comparison"])
			switch cmp {
			case "EQUALS", "PREFIX":
				hasEq = true
				if have == val || (cmp == "PREFIX" && strings.HasPrefix(have, val)) {
					anyEq = true
				}
			case "NOT_EQUALS":
				if have == val {
					return false
				}
			}
		}
		if hasEq && !anyEq {
			return false
		}
	}
	return true
}
