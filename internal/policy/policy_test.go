package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

func lines() []string { return strings.Split(basePolicy, "\n") }

// edit helpers work on 1-based line numbers of basePolicy.
func replaceLine(n int, text string) func(string) string {
	return func(s string) string {
		ls := strings.Split(s, "\n")
		ls[n-1] = text
		return strings.Join(ls, "\n")
	}
}

func insertAfter(n int, text string) func(string) string {
	return func(s string) string {
		ls := strings.Split(s, "\n")
		out := append(append(append([]string{}, ls[:n]...), text), ls[n:]...)
		return strings.Join(out, "\n")
	}
}

func deleteLine(n int) func(string) string {
	return func(s string) string {
		ls := strings.Split(s, "\n")
		return strings.Join(append(ls[:n-1:n-1], ls[n:]...), "\n")
	}
}

func sub(old, new string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic("test edit: " + old + " not in policy")
		}
		return strings.Replace(s, old, new, 1)
	}
}

func chain(fs ...func(string) string) func(string) string {
	return func(s string) string {
		for _, f := range fs {
			s = f(s)
		}
		return s
	}
}

type badCase struct {
	name   string
	edit   func(string) string
	at     string // LINE:COL of the first problem
	msg    string // substring of its message
	schema bool   // the JSON Schema rejects it too
}

var badCases = []badCase{
	{"apiVersion", sub("patchgate.dev/v1", "patchgate.dev/v2"), "1:13", `use "patchgate.dev/v1"`, true},
	{"kind", sub("kind: PatchPolicy", "kind: Policy"), "2:7", `kind "Policy" is not supported`, true},
	{"name pattern", sub("name: web-fleet", "name: Web_Fleet"), "4:9", "lowercase letters", true},
	{"unknown key with hint", sub("  owners:", "  ownres:"), "5:3", `did you mean "owners"`, true},
	{"owners empty", sub(`owners: ["@acme/platform"]`, "owners: []"), "5:11", "metadata.owners is empty", true},
	// Encoding: the byte's own line and column (in characters), not 1:1.
	{"invalid UTF-8", sub("eu-west-1]", "eu-w\xffest-1]"), "29:28", "byte 0xFF is not valid UTF-8", false},
	{"NUL byte", sub("kind: PatchPolicy", "kind: Patch\x00Policy"), "2:12", "NUL byte", false},
	{"control character after a multibyte one", sub("name: web-fleet", "name: w\u00e9b\x1b-fleet"), "4:12", "control character U+001B", false},
	{"control character in a CRLF file", func(s string) string {
		return strings.ReplaceAll(sub("timezone: UTC", "timezone: U\x7fTC")(s), "\n", "\r\n")
	}, "22:16", "control character U+007F", false},
	{"control character after a byte order mark", func(s string) string { return "\uFEFF" + sub("apiVersion: patchgate", "apiVersion: \x01patchgate")(s) }, "1:13", "control character U+0001", false},
	{"operatingSystem enum", sub("AMAZON_LINUX_2023", "AMAZON_LINUX_2024"), "7:20", "is not one of", true},
	{"approvalRules empty", chain(deleteLine(13), deleteLine(12), deleteLine(11), deleteLine(10), replaceLine(9, "    approvalRules: []")), "9:20", "1 to 10 approval rules", true},
	// Filter values per operating system, as SSM documents them.
	{"classification of another OS", sub("classifications: [Security, Bugfix]", "classifications: [Security, SecurityUpdates]"), "10:37", `"SecurityUpdates" is not a CLASSIFICATION value on AMAZON_LINUX_2023: use one of Security, Bugfix, Enhancement, Recommended, Newpackage, or "*" ("SecurityUpdates" is a value for WINDOWS)`, true},
	{"severity case", sub("severities: [Critical, Important]", "severities: [critical, Important]"), "11:22", `did you mean "Critical"? values are case-sensitive`, true},
	{"MSRC severity on WINDOWS", chain(sub("AMAZON_LINUX_2023", "WINDOWS"), sub("[Security, Bugfix]", "[SecurityUpdates]"), sub("[Critical, Important]", "[Critical, Medium]")), "11:32", `"Medium" is not a MSRC_SEVERITY value on WINDOWS`, true},
	{"RHEL severity is Moderate", chain(sub("AMAZON_LINUX_2023", "REDHAT_ENTERPRISE_LINUX"), sub("[Critical, Important]", "[Critical, Medium]")), "11:32", `"Medium" is not a SEVERITY value on REDHAT_ENTERPRISE_LINUX: use one of Critical, Important, Moderate, Low`, true},
	{"SUSE classification", chain(sub("AMAZON_LINUX_2023", "SUSE"), sub("[Security, Bugfix]", "[Security, Recomended]")), "10:37", `did you mean "Recommended"?`, true},
	{"raw filter value", chain(sub("AMAZON_LINUX_2023", "UBUNTU"), deleteLine(12), deleteLine(11), replaceLine(10, "      - filters: {PRIORITY: [Required, Importnt]}")), "10:40", `"Importnt" is not a PRIORITY value on UBUNTU`, true},
	{"friendly field on UBUNTU", sub("AMAZON_LINUX_2023", "UBUNTU"), "10:26", "cannot be used on UBUNTU", false},
	{"filter key not valid for OS", insertAfter(11, "        filters: {PRIORITY: [Required]}"), "12:19", "not valid for AMAZON_LINUX_2023", false},
	{"more than 4 filters", insertAfter(11, "        products: [amzn]\n        filters: {PRODUCT_FAMILY: [x], PATCH_SET: [y]}"), "10:9", "at most 4", false},
	{"both approval delays", insertAfter(12, `        approveUntilDate: "2026-12-01"`), "13:27", "exactly one of approveAfterDays and approveUntilDate", true},
	{"no approval delay", deleteLine(12), "10:9", "needs exactly one of approveAfterDays", false},
	{"approveAfterDays range", sub("approveAfterDays: 7", "approveAfterDays: 400"), "12:27", "between 0 and 360", true},
	{"approveUntilDate format", sub("approveAfterDays: 7", `approveUntilDate: "2026-13-01"`), "12:27", "YYYY-MM-DD", true},
	{"complianceLevel enum", sub("complianceLevel: CRITICAL", "complianceLevel: SEVERE"), "13:26", "is not one of", true},
	{"case hint", sub("rejectedPatchesAction: BLOCK", "rejectedPatchesAction: block"), "14:28", `did you mean "BLOCK"`, true},
	{"rebootOption enum", sub("rebootOption: RebootIfNeeded", "rebootOption: Reboot"), "16:19", "is not one of", true},
	{"deliveryTimeout range", sub("deliveryTimeout: 10m", "deliveryTimeout: 10s"), "17:22", "between 30s and 720h", false},
	{"duration syntax", sub("deliveryTimeout: 10m", `deliveryTimeout: "ten minutes"`), "17:22", "is not a duration", true},
	{"cron fields", sub(`cron: "0 3 * * 0"`, `cron: "0 0 3 * * 0"`), "20:11", "5 fields", true},
	{"cron value", sub(`cron: "0 3 * * 0"`, `cron: "0 25 * * 0"`), "20:11", "cron", false},
	{"cron never fires", sub(`cron: "0 3 * * 0"`, `cron: "0 3 30 2 *"`), "20:11", "never fires: day 30 does not exist in February", false},
	{"cron day missing in every month chosen", sub(`cron: "0 3 * * 0"`, `cron: "0 4 31 4,6,9,11 *"`), "20:11", "day 31 does not exist in April, June, September, November", false},
	{"timezone", sub("timezone: UTC", "timezone: Mars/Base"), "22:15", "IANA", false},
	{"freeze order", sub(`{from: "2026-12-20", to: "2027-01-04"`, `{from: "2027-01-04", to: "2026-12-20"`), "24:34", "before it starts", false},
	{"change calendar name", sub("[prod-change-calendar]", "[x]"), "25:23", "Change Calendar", true},
	{"account id unquoted", sub(`id: "111122223333"`, "id: 111122223333"), "27:11", "must be quoted", true},
	{"account id digits", sub(`id: "111122223333"`, `id: "11112222333"`), "27:11", "12-digit", true},
	{"roleArn shape", sub("role/patchgate-target", "user/x"), "28:16", "not an IAM role ARN", true},
	{"roleArn account", sub("arn:aws:iam::111122223333", "arn:aws:iam::999922223333"), "28:16", "is in account 999922223333", false},
	{"region name", sub("[us-east-1, eu-west-1]", "[us-east-1, europe]"), "29:24", "not an AWS region", true},
	{"region twice", sub("[us-east-1, eu-west-1]", "[us-east-1, us-east-1]"), "29:24", "listed twice", true},
	{"regions type", sub("regions: [us-east-1, eu-west-1]", "regions: us-east-1"), "29:12", "must be a list", true},
	{"regions missing", deleteLine(29), "7:3", "spec.regions is required", true},
	{"phase names unique", sub("name: production", "name: staging"), "47:13", "is used by two phases", false},
	{"tags and instanceIds", insertAfter(33, "        instanceIds: [i-0123456789abcdef0]"), "33:9", "exactly one of tags and instanceIds", true},
	{"no targets", replaceLine(33, "        {}"), "33:9", "targets needs tags", true},
	{"too many tags", replaceLine(33, "        tags: {A: a, B: b, C: c, D: d, E: e, F: f}"), "33:15", "at most 5", true},
	{"instance id", replaceLine(33, "        instanceIds: [i-123]"), "33:23", "not an instance id", true},
	{"maxConcurrency zero", sub(`maxConcurrency: "50%"`, `maxConcurrency: "0"`), "34:23", "at least 1", true},
	{"maxErrors pattern", sub(`maxErrors: "0"`, `maxErrors: "-1"`), "35:18", "maxErrors", true},
	{"successThreshold", sub(`successThreshold: "100%"`, `successThreshold: "101%"`), "36:25", "1% to 100%", true},
	{"offline enum", sub("offline: fail", "offline: ignore"), "37:16", "is not one of", true},
	{"waves increase", sub(`["10%", "50%", "100%"]`, `["50%", "10%", "100%"]`), "52:22", "must increase", false},
	{"waves end at 100%", sub(`["10%", "50%", "100%"]`, `["10%", "50%"]`), "52:22", "last wave", false},
	{"soak duration", sub("soak: 30m", `soak: "30 minutes"`), "39:13", "is not a duration", true},
	{"failOnSeverity", sub("failOnSeverity: HIGH", "failOnSeverity: SEVERE"), "44:27", "is not one of", true},
	{"requireFixed CVE", sub("[CVE-2024-6387]", "[CVE-24-1]"), "46:26", "not a CVE id", true},
	{"inspector not enabled", sub("enabled: true", "enabled: false"), "43:11", "enabled is not true", false},
	{"namespace reserved", sub("cloudwatchNamespace: Patchgate", "cloudwatchNamespace: AWS/EC2"), "54:26", "reserved", true},
	{"enableNonSecurity on WINDOWS", chain(sub("AMAZON_LINUX_2023", "WINDOWS"), insertAfter(13, "        enableNonSecurity: true")), "14:28", "Linux only", false},
	{"bool type", sub("compliance: true", "compliance: yes"), "41:21", "true or false", true},
	// YAML hazards: the loader's own rules.
	{"duplicate key", insertAfter(29, "  regions: [us-east-1]"), "30:3", `duplicate key "regions"`, false},
	{"anchor", sub("regions: [us-east-1, eu-west-1]", "regions: &r [us-east-1, eu-west-1]"), "29:12", "anchor &r", false},
	{"merge key", insertAfter(49, `      <<: {maxErrors: "1"}`), "50:7", "merge key", false},
	{"custom tag", sub("regions: [us-east-1", "regions: !regions [us-east-1"), "29:12", "custom YAML tag !regions", false},
	{"explicit tag", sub(`maxErrors: "0"`, `maxErrors: !!str 0`), "35:18", "explicit YAML tag", false},
	{"two documents", func(s string) string { return s + "---\napiVersion: patchgate.dev/v1\n" }, "55:1", "more than one YAML document", false},
	{"syntax error", sub("regions: [us-east-1, eu-west-1]", "regions: [us-east-1, eu-west-1"), "", "invalid YAML", false},
	{"empty file", func(string) string { return "" }, "1:1", "file is empty", false},
}

func TestBadPolicies(t *testing.T) {
	if len(badCases) < 30 {
		t.Fatalf("the table must cover at least 30 rules, has %d", len(badCases))
	}
	schema := compileSchema(t)
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.edit(basePolicy)
			p, probs := Parse("policies/web.yaml", []byte(src))
			if len(probs) == 0 || p != nil {
				t.Fatalf("want problems, got none")
			}
			first := probs[0]
			var match *Problem
			for i := range probs {
				if strings.Contains(probs[i].Message, tc.msg) {
					match = &probs[i]
					break
				}
			}
			if match == nil {
				t.Fatalf("no problem says %q; got:\n%s", tc.msg, probs.Error())
			}
			if tc.at != "" && fmt.Sprintf("%d:%d", match.Line, match.Col) != tc.at {
				t.Errorf("problem %q at %d:%d, want %s (all: %s)", match.Message, match.Line, match.Col, tc.at, probs.Error())
			}
			if first.File != "policies/web.yaml" || !strings.HasPrefix(first.String(), "policies/web.yaml:") {
				t.Errorf("problem must name the file: %s", first)
			}
			if tc.schema {
				if err := validateWithSchema(schema, src); err == nil {
					t.Errorf("the JSON Schema accepts what the loader rejects: the two have drifted")
				}
			}
		})
	}
}

func TestBasePolicyAndDefaults(t *testing.T) {
	p, probs := Parse("web.yaml", []byte(basePolicy))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	ph := p.Spec.Phases[1]
	if ph.Offline != "fail" || !ph.Verify.ComplianceEnabled() || ph.Verify.Inspector.FailOnSeverity != "HIGH" || ph.Verify.Inspector.RescanTimeout.Duration != 45*time.Minute {
		t.Errorf("defaults not applied: %+v", ph)
	}
	if p.Spec.Baseline.ApprovalRules[0].ComplianceLevel != "CRITICAL" || p.Spec.Install.ExecutionTimeout.Duration != 2*time.Hour {
		t.Errorf("explicit values must be kept")
	}
	min, probs := Parse("min.yaml", []byte(`apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: min}
spec:
  operatingSystem: AMAZON_LINUX_2
  baseline: {approvalRules: [{classifications: [Security], approveAfterDays: 0}]}
  regions: [us-east-1]
  phases: [{name: all, targets: {instanceIds: [i-0123456789abcdef0]}}]
`))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	got := min.Spec
	if got.Install.RebootOption != DefaultRebootOption || got.Install.DeliveryTimeout.Duration != DefaultDeliveryTimeout ||
		got.Phases[0].MaxConcurrency != DefaultMaxConcurrency || got.Phases[0].MaxErrors != "0" || got.Phases[0].SuccessThreshold != "100%" ||
		len(got.Phases[0].Waves) != 1 || got.Baseline.RejectedPatchesAction != DefaultRejectedPatchesAction || got.Baseline.ApprovalRules[0].ComplianceLevel != "UNSPECIFIED" {
		t.Errorf("defaults: %+v", got)
	}
}

// neverFires must agree with the cron library itself: a schedule it
// rejects has no firing within the library's five-year horizon from any of
// several starts, and one it accepts fires from each of them.
func TestNeverFiresAgreesWithCronLibrary(t *testing.T) {
	starts := []time.Time{
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, tc := range []struct {
		cron  string
		never bool
	}{
		{"0 3 30 2 *", true},
		{"0 3 30,31 2 *", true},
		{"0 3 31 4,6,9,11 *", true},
		{"0 3 31 2,4 ?", true},
		{"0 3 29 2 *", false},   // leap years only, still fires
		{"0 3 31 1,2 *", false}, // January has it
		{"0 3 30 2 1", false},   // both day fields restricted: Mondays in February fire
		{"0 3 * 2 *", false},
		{"0 3 1-31 2 *", false},
		{"0 3 * * 0", false},
		{"*/15 * 31 * *", false},
	} {
		sched, err := cronParser.Parse(tc.cron)
		if err != nil {
			t.Fatalf("%s: %v", tc.cron, err)
		}
		why := neverFires(sched)
		if (why != "") != tc.never {
			t.Errorf("%s: neverFires=%q, want never=%v", tc.cron, why, tc.never)
		}
		for _, st := range starts {
			if next := sched.Next(st); next.IsZero() != tc.never {
				t.Errorf("%s from %s: the library's next firing %v disagrees with never=%v", tc.cron, st.Format(dateLayout), next, tc.never)
			}
		}
	}
}

// Every documented value is accepted and an unknown one refused (accepted
// for open-ended keys such as PRODUCT), for each operating system, key and
// field, by the loader and by the JSON Schema alike: the two tables cannot
// drift apart in either direction.
func TestFilterValuesPerOSLoaderAndSchemaAgree(t *testing.T) {
	schema := compileSchema(t)
	policyWith := func(os, rule string) string {
		return fmt.Sprintf(`apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: p}
spec:
  operatingSystem: %s
  baseline: {approvalRules: [%s]}
  regions: [us-east-1]
  phases: [{name: all, targets: {instanceIds: [i-0123456789abcdef0]}}]
`, os, rule)
	}
	delay := func(os string) string {
		if DebianLike(os) {
			return ""
		}
		return ", approveAfterDays: 0"
	}
	for _, os := range OperatingSystems {
		for _, key := range FilterKeys[os] {
			vals := FilterValues[os][key] // nil: open-ended, any value goes
			rules := map[string]string{"filters": "{filters: {" + key + ": [%s]}" + delay(os) + "}"}
			switch key {
			case "CLASSIFICATION":
				rules["classifications"] = "{classifications: [%s]" + delay(os) + "}"
			case SeverityKey(os):
				rules["severities"] = "{severities: [%s]" + delay(os) + "}"
			}
			for field, rule := range rules {
				for _, val := range append(slices.Clone(vals), "*", "NotAValue") {
					src := policyWith(os, fmt.Sprintf(rule, strconv.Quote(val)))
					_, probs := Parse("p.yaml", []byte(src))
					schemaErr := validateWithSchema(schema, src)
					want := val != "NotAValue" || vals == nil
					if (len(probs) == 0) != want {
						t.Errorf("%s %s %s: loader accepts=%v, want %v: %v", os, field, val, len(probs) == 0, want, probs)
					}
					if (schemaErr == nil) != want {
						t.Errorf("%s %s %s: schema accepts=%v, want %v: %v", os, field, val, schemaErr == nil, want, schemaErr)
					}
				}
			}
		}
	}
}

func TestHazardsAreFast(t *testing.T) {
	// A billion-laughs document: aliases are refused before anything expands them.
	var b strings.Builder
	b.WriteString("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 'b'; i <= 'z'; i++ {
		fmt.Fprintf(&b, "%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	nested := ""
	for i := 0; i < 40; i++ {
		nested += strings.Repeat("  ", i) + fmt.Sprintf("k%d:\n", i)
	}
	for name, src := range map[string]string{"billion laughs": b.String(), "deep flow": deep, "deep block": nested} {
		start := time.Now()
		_, probs := Parse(name, []byte(src))
		if len(probs) == 0 {
			t.Errorf("%s: accepted", name)
		}
		// Not a timing assertion: a guard against a hang, logged for the curious.
		t.Logf("%s: %d problems in %v", name, len(probs), time.Since(start))
	}
}

func TestFileTooLarge(t *testing.T) {
	big := basePolicy + "# " + strings.Repeat("x", MaxFileSize) + "\n"
	set, err := Load(fstest.MapFS{"p/big.yaml": {Data: []byte(big)}}, "p")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Problems) != 1 || !strings.Contains(set.Problems[0].Message, "larger than") {
		t.Fatalf("problems: %v", set.Problems)
	}
}

func TestLoadSetDuplicateNamesAndReportsEveryFile(t *testing.T) {
	other := strings.Replace(basePolicy, "kind: PatchPolicy", "kind: Nope", 1)
	fsys := fstest.MapFS{
		"p/a.yaml":    {Data: []byte(basePolicy)},
		"p/b.yml":     {Data: []byte(basePolicy)},
		"p/c.yaml":    {Data: []byte(other)},
		"p/notes.txt": {Data: []byte("not a policy")},
	}
	set, err := Load(fsys, "p")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Files) != 3 {
		t.Fatalf("files %v", set.Files)
	}
	var msgs []string
	for _, p := range set.Problems {
		msgs = append(msgs, p.String())
	}
	all := strings.Join(msgs, "\n")
	if !strings.Contains(all, `p/b.yml:4:9: policy name "web-fleet" is already used by p/a.yaml:4:9`) || !strings.Contains(all, "p/c.yaml:2:7") {
		t.Fatalf("problems:\n%s", all)
	}
	if _, err := Load(fsys, "missing"); err == nil {
		t.Fatal("a missing path is an I/O error")
	}
}

func TestScheduleWindow(t *testing.T) {
	s := &Schedule{Cron: "0 3 * * 0", Duration: Duration{4 * time.Hour}, Timezone: "Europe/Berlin",
		Freezes: []Freeze{{From: "2026-12-20", To: "2027-01-04", Reason: "holidays"}}}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, tc := range []struct {
		at   time.Time
		open bool
	}{
		{time.Date(2026, 11, 22, 3, 0, 0, 0, berlin), true},  // Sunday 03:00, the window opens
		{time.Date(2026, 11, 22, 6, 59, 0, 0, berlin), true}, // still inside 4h
		{time.Date(2026, 11, 22, 7, 0, 0, 0, berlin), false}, // closed
		{time.Date(2026, 11, 22, 2, 59, 0, 0, berlin), false},
		{time.Date(2026, 11, 23, 4, 0, 0, 0, berlin), false}, // Monday
	} {
		open, next := s.WindowAt(tc.at)
		if open != tc.open {
			t.Errorf("%v: open=%v want %v", tc.at, open, tc.open)
		}
		if !open && next.IsZero() {
			t.Errorf("%v: a closed window must say when the next opens", tc.at)
		}
	}
	if _, in := s.FreezeAt(time.Date(2027, 1, 4, 23, 0, 0, 0, berlin)); !in {
		t.Error("freeze end date is inclusive")
	}
	if _, in := s.FreezeAt(time.Date(2027, 1, 5, 0, 30, 0, 0, berlin)); in {
		t.Error("the day after the freeze is free")
	}
}

func TestExamplesValidAgainstLoaderAndSchema(t *testing.T) {
	schema := compileSchema(t)
	set, err := Load(os.DirFS("../.."), "policies")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Problems) > 0 {
		t.Fatalf("examples must validate:\n%s", set.Problems.Error())
	}
	if len(set.Policies) < 3 {
		t.Fatalf("want at least 3 example policies, got %d", len(set.Policies))
	}
	for _, f := range set.Files {
		data, _ := os.ReadFile(filepath.Join("../..", f))
		if !bytes.HasPrefix(data, []byte("# yaml-language-server: $schema=./schema.json")) {
			t.Errorf("%s: first line must point editors at the schema", f)
		}
		if err := validateWithSchema(schema, string(data)); err != nil {
			t.Errorf("%s: schema rejects a valid example: %v", f, err)
		}
	}
}

func TestCommittedSchemaIsCurrent(t *testing.T) {
	committed, err := os.ReadFile("../../policies/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, Schema) {
		t.Fatal("policies/schema.json is stale: run `go run ./cmd/patchgate schema > policies/schema.json`")
	}
}

func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("policy.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("policy.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validateWithSchema converts YAML to JSON the way an editor would and validates it.
func validateWithSchema(s *jsonschema.Schema, src string) error {
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		return err
	}
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return err
	}
	return s.Validate(doc)
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(basePolicy))
	for _, tc := range badCases {
		f.Add([]byte(tc.edit(basePolicy)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, probs := Parse("fuzz.yaml", data)
		if p == nil && len(probs) == 0 {
			t.Fatal("neither a policy nor a problem")
		}
		if p != nil && len(probs) > 0 {
			t.Fatal("a policy with problems")
		}
		for _, pr := range probs {
			if pr.Line < 1 || pr.Col < 1 || pr.Message == "" {
				t.Fatalf("problem without position or message: %+v", pr)
			}
		}
	})
}

func BenchmarkValidate1000Files(b *testing.B) {
	fsys := fstest.MapFS{}
	for i := 0; i < 1000; i++ {
		fsys[fmt.Sprintf("policies/p%04d.yaml", i)] = &fstest.MapFile{Data: []byte(strings.Replace(basePolicy, "name: web-fleet", fmt.Sprintf("name: web-%04d", i), 1))}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		set, err := Load(fsys, "policies")
		if err != nil || len(set.Problems) > 0 || len(set.Policies) != 1000 {
			b.Fatalf("%v %v %d", err, set.Problems, len(set.Policies))
		}
	}
}

var _ = lines

// A list of tens of thousands of entries gives one problem per distinct
// problem, with a count, and a file gives at most MaxProblemsPerFile.
func TestRepeatedProblemsAreCountedAndCapped(t *testing.T) {
	regions := func(items []string) string {
		return strings.Replace(basePolicy, "regions: [us-east-1, eu-west-1]", "regions: ["+strings.Join(items, ", ")+"]", 1)
	}
	same := func(s string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	distinct := make([]string, 200)
	for i := range distinct {
		distinct[i] = fmt.Sprintf("nowhere%d", i)
	}
	for _, tc := range []struct {
		name  string
		src   string
		want  []string // substrings, one problem each, in order
		count int
	}{
		{"95,000 copies of a region", regions(same("us-east-1", 95000)), []string{`region "us-east-1" is listed 95,000 times (first at spec.regions[0]): list it once`}, 1},
		{"95,000 copies of a bad region", regions(same("europe", 95000)),
			[]string{`"europe" is not an AWS region name like us-east-1 (and 94,999 more like it, the next at 29:21)`, `region "europe" is listed 95,000 times`}, 2},
		{"200 different bad regions", regions(distinct), []string{`"nowhere0" is not`, "150 more problems not shown (at most 50 a file)"}, MaxProblemsPerFile + 1},
		{"a value listed twice still says twice", regions([]string{"us-east-1", "eu-west-1", "us-east-1"}), []string{`region "us-east-1" is listed twice (first at spec.regions[0])`}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, probs := Parse("policies/web.yaml", []byte(tc.src))
			if len(probs) != tc.count {
				t.Fatalf("%d problems, want %d:\n%.2000s", len(probs), tc.count, probs.Error())
			}
			for _, w := range tc.want {
				if !strings.Contains(probs.Error(), w) {
					t.Errorf("no problem says %q:\n%.2000s", w, probs.Error())
				}
			}
			if n := len(probs.Error()); n > 20000 {
				t.Errorf("the report is %d bytes", n)
			}
		})
	}
}

// The cost of validating a huge list must stay linear: compare ns/op of
// the two sizes (10x the entries should cost about 10x, not 100x).
func BenchmarkParseRepeatedRegions(b *testing.B) {
	for _, n := range []int{9500, 95000} {
		src := []byte(strings.Replace(basePolicy, "regions: [us-east-1, eu-west-1]", "regions: ["+strings.Repeat("us-east-1, ", n-1)+"us-east-1]", 1))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if _, probs := Parse("p.yaml", src); len(probs) != 1 {
					b.Fatal(probs.Error())
				}
			}
		})
	}
}
