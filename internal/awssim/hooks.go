package awssim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The hooks document: SendCommand runs AWS-RunPatchBaselineWithHooks like
// AWS-RunPatchBaseline, except that an instance of a group with
// preInstallHookFails fails in the pre-install hook step (nothing is
// installed) when a PreInstallHookDocName other than AWS-Noop is given.
// DescribeDocument knows AWS-owned documents and the scenario's documents.

// HooksDocument is the SSM document that runs patching with hooks.
const HooksDocument = "AWS-RunPatchBaselineWithHooks"

// hookStep is the plugin (step) name the simulated hooks document reports
// for a failed pre-install hook.
const hookStep = "PreInstallHook"

func init() { extraSSM = append(extraSSM, describeDocument) }

func describeDocument(s *Sim, op string, k regionKey, now time.Time, body []byte) (any, bool, error) {
	if op != "DescribeDocument" {
		return nil, false, nil
	}
	var in struct{ Name string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, true, validation("%v", err)
	}
	name := in.Name
	owner := k.account
	if i := strings.Index(name, ":document/"); strings.HasPrefix(name, "arn:") && i > 0 {
		parts := strings.Split(name, ":")
		if len(parts) < 6 || parts[3] != k.region {
			return nil, true, &apiError{Code: "InvalidDocument", Message: "Document with name " + name + " does not exist.", Status: 400}
		}
		owner = parts[4]
		name = name[i+len(":document/"):]
	}
	known := strings.HasPrefix(name, "AWS-") || slices.Contains(s.sc.Documents, name)
	if !known {
		return nil, true, &apiError{Code: "InvalidDocument", Message: "Document with name " + in.Name + " does not exist.", Status: 400}
	}
	if strings.HasPrefix(name, "AWS-") {
		owner = "Amazon"
	}
	return map[string]any{"Document": map[string]any{"Name": name, "Owner": owner, "DocumentType": "Command", "Status": "Active",
		"DocumentFormat": "YAML", "SchemaVersion": "2.2", "PlatformTypes": []string{"Linux", "Windows"}, "DocumentVersion": "1", "LatestVersion": "1",
		"CreatedDate": epoch(now.Add(-30 * 24 * time.Hour))}}, true, nil
}

// preInstallHookFails reports whether the invocation of c on in fails in
// its pre-install hook.
func (c *command) preInstallHookFails(in *Instance) bool {
	hook := c.params["PreInstallHookDocName"]
	return c.doc == HooksDocument && in.PreInstallHookFails && len(hook) > 0 && hook[0] != "" && hook[0] != "AWS-Noop"
}

// hookOutput is the output of an invocation that failed in its pre-install
// hook.
func (inv *invocation) hookOutput() string {
	return fmt.Sprintf("----------ERROR-------\nStep %s: running document %s failed: exit status 1\ndrain: load balancer target still in use\nPatch baseline operation Install not started on %s: the pre-install hook failed.",
		hookStep, inv.cmd.params["PreInstallHookDocName"][0], inv.instance.ID)
}
