package policy

import (
	"os"
	"strings"
	"testing"
	"time"
)

// ringsPolicy is the example policy with a staging account and two
// production accounts; the table below edits it one rule at a time.
func ringsPolicy(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../policies/rings/payments-rings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestRingsBadPolicies(t *testing.T) {
	schema := compileSchema(t)
	cases := []struct {
		name   string
		old    string
		new    string
		msg    string
		schema bool // the JSON Schema rejects it too
	}{
		{"promotion from unknown phase", "from: staging", "from: canary", `"canary" is not a phase`, false},
		{"promotion from itself", "from: staging", "from: production", "must name an earlier phase", false},
		{"minAge not below maxAge", "minAge: 72h", "minAge: 400h", "must be greater than minAge", false},
		{"maxAge required", "        maxAge: 336h\n", "", "promotion.maxAge is required", true},
		{"maxAge bounded", "maxAge: 336h", "maxAge: 9000h", "is longer than", false},
		{"promotion needs a store", "  rings:\n    store:\n      bucket: acme-patchgate-records\n      account: \"999988887777\"\n      region: us-east-1\n      roleArn: arn:aws:iam::999988887777:role/patchgate-records\n      prefix: patchgate\n", "", "needs spec.rings.store", false},
		{"bucket uppercase", "bucket: acme-patchgate-records", "bucket: Acme-Records", "lowercase letters", true},
		{"bucket ip", "bucket: acme-patchgate-records", "bucket: 10.1.2.3", "IP address", false},
		{"bucket double dot", "bucket: acme-patchgate-records", "bucket: acme..records", "adjacent periods", false},
		{"bucket reserved prefix", "bucket: acme-patchgate-records", "bucket: xn--records", "reserved by S3", false},
		{"bucket reserved suffix", "bucket: acme-patchgate-records", "bucket: records-s3alias", "reserved by S3", false},
		{"store account quoted", `account: "999988887777"`, "account: 999988887777", "must be quoted", true},
		{"store account digits", `account: "999988887777"`, `account: "99998888777"`, "12-digit", true},
		{"store region", "      region: us-east-1\n      roleArn", "      region: useast\n      roleArn", "not an AWS region", true},
		{"store role account", "arn:aws:iam::999988887777:role/patchgate-records", "arn:aws:iam::111122223333:role/patchgate-records", "is in account 111122223333", false},
		{"prefix reserved", "prefix: patchgate", "prefix: ssm-records", "must not start with aws or ssm", false},
		{"prefix too deep", "prefix: patchgate", "prefix: a/b/c/d/e/f/g/h/i/j/k", "at most 10", false},
		{"prefix slashes", "prefix: patchgate", "prefix: /patchgate/", "single slashes", true},
		{"phase account unquoted", `id: "444455556666"`, "id: 444455556666", "must be quoted", true},
		{"phase account digits", `id: "444455556666"`, `id: "4444"`, "12-digit", true},
		{"phase account twice", `id: "777788889999"`, `id: "444455556666"`, "listed twice", false},
		{"phase role account", "arn:aws:iam::777788889999:role/patchgate-target", "arn:aws:iam::444455556666:role/patchgate-target", "is in account 444455556666", false},
		{"phase region", "regions: [us-east-1]\n      targets", "regions: [mars-1]\n      targets", "not an AWS region", true},
		{"phase region twice", "regions: [us-east-1]\n      targets", "regions: [us-east-1, us-east-1]\n      targets", "listed twice", true},
		{"phase regions empty", "regions: [us-east-1]\n      targets", "regions: []\n      targets", "regions is empty", true},
		{"unknown promotion key", "replay: true", "replay: true\n        after: 3d", `unknown key "after"`, true},
		{"replay type", "replay: true", "replay: yes", "true or false", true},
	}
	base := ringsPolicy(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("edit: %q not in the example", tc.old)
			}
			src := strings.Replace(base, tc.old, tc.new, 1)
			p, probs := Parse("policies/payments-rings.yaml", []byte(src))
			if tc.msg == "" { // the edit is harmless
				if len(probs) > 0 {
					t.Fatalf("want valid, got %v", probs)
				}
				return
			}
			if p != nil || len(probs) == 0 {
				t.Fatalf("want a problem containing %q, got none", tc.msg)
			}
			if !strings.Contains(probs.Error(), tc.msg) {
				t.Fatalf("want a problem containing %q, got:\n%s", tc.msg, probs.Error())
			}
			for _, pr := range probs {
				if pr.Line < 1 || pr.Col < 1 {
					t.Errorf("problem without a position: %+v", pr)
				}
			}
			if err := validateWithSchema(schema, src); (err != nil) != tc.schema {
				t.Errorf("schema rejects it: %v, want %v (%v)", err != nil, tc.schema, err)
			}
		})
	}
}

func TestRingsCompile(t *testing.T) {
	p, probs := Parse("policies/payments-rings.yaml", []byte(ringsPolicy(t)))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	r, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	stg, prd := r.Stage("staging"), r.Stage("production")
	if len(stg.Accounts) != 1 || stg.Accounts[0].ID != "111122223333" || strings.Join(stg.Regions, ",") != "us-east-1" {
		t.Errorf("staging scope = %+v %v, want its own account and region", stg.Accounts, stg.Regions)
	}
	if len(prd.Accounts) != 2 || prd.Accounts[1].ID != "777788889999" || strings.Join(prd.Regions, ",") != "us-east-1,eu-west-1" {
		t.Errorf("production scope = %+v %v, want two accounts and the spec's regions", prd.Accounts, prd.Regions)
	}
	if stg.Promotion != nil {
		t.Error("staging has no promotion")
	}
	want := StagePromotion{From: "staging", MinAge: 72 * time.Hour, MaxAge: 336 * time.Hour, MinAgeTxt: "72h", MaxAgeTxt: "336h", Replay: true}
	if prd.Promotion == nil || *prd.Promotion != want {
		t.Errorf("production promotion = %+v, want %+v", prd.Promotion, want)
	}
	if r.Rings == nil || r.Rings.Store == nil || r.Rings.Store.Bucket != "acme-patchgate-records" || r.Rings.Store.RingPrefix() != "patchgate" || r.Rings.IndependentTargets {
		t.Errorf("rings = %+v, want the store and the barrier (independentTargets false)", r.Rings)
	}
}

func TestRingsDefaults(t *testing.T) {
	// A v1 policy keeps its meaning: every phase's scope is the spec's, no
	// promotion, and the barrier is not opted out of.
	p, probs := Parse("policies/web.yaml", []byte(basePolicy))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	r, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range r.Stages {
		if len(st.Accounts) != 1 || st.Accounts[0].ID != "111122223333" || strings.Join(st.Regions, ",") != "us-east-1,eu-west-1" || st.Promotion != nil {
			t.Errorf("%s: scope %+v %v promotion %+v, want the spec's lists and none", st.Name, st.Accounts, st.Regions, st.Promotion)
		}
	}
	if r.Rings != nil {
		t.Errorf("rings = %+v, want none", r.Rings)
	}
	// replay defaults to true; minAge to zero.
	src := strings.Replace(ringsPolicy(t), "        minAge: 72h\n", "", 1)
	src = strings.Replace(src, "        replay: true\n", "", 1)
	p, probs = Parse("x.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	r, _ = Compile(p)
	if pr := r.Stage("production").Promotion; !pr.Replay || pr.MinAge != 0 {
		t.Errorf("promotion = %+v, want replay true and minAge 0", pr)
	}
	// replay can be turned off; independentTargets is explicit.
	src = strings.Replace(ringsPolicy(t), "replay: true", "replay: false", 1)
	src = strings.Replace(src, "      prefix: patchgate\n", "      prefix: patchgate\n    independentTargets: true\n", 1)
	p, probs = Parse("x.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	r, _ = Compile(p)
	if r.Stage("production").Promotion.Replay || !r.Rings.IndependentTargets {
		t.Errorf("replay false and independentTargets true must survive compile: %+v %+v", r.Stage("production").Promotion, r.Rings)
	}
}

func TestRingsExampleValidAgainstLoaderAndSchema(t *testing.T) {
	set, err := Load(os.DirFS("../.."), "policies/rings")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Problems) > 0 || len(set.Policies) != 1 {
		t.Fatalf("policies/rings must hold one valid policy: %d, %s", len(set.Policies), set.Problems.Error())
	}
	if err := validateWithSchema(compileSchema(t), ringsPolicy(t)); err != nil {
		t.Errorf("the schema rejects the rings example: %v", err)
	}
	if !strings.HasPrefix(ringsPolicy(t), "# yaml-language-server: $schema=../schema.json\n") {
		t.Error("the first line must point editors at the schema")
	}
}
