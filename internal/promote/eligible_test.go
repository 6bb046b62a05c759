package promote

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/policy"
)

func TestEligible(t *testing.T) {
	minAge, maxAge := 72*time.Hour, 336*time.Hour
	passed := record(Passed, start)
	passed.Seq = 1
	failed := record(Failed, start)
	failed.Seq = 1
	cases := []struct {
		name   string
		rec    *Record
		now    time.Time
		digest string
		ok     bool
		reason string
		at     time.Time
	}{
		{"no record", nil, start, digestA, false, "no record", start.Add(minAge)},
		{"too young", passed, start.Add(71 * time.Hour), digestA, false, "needs at least 72h", start.Add(minAge)},
		{"exactly minAge", passed, start.Add(minAge), digestA, true, "within", start.Add(minAge)},
		{"in the window", passed, start.Add(100 * time.Hour), digestA, true, "within", start.Add(minAge)},
		{"exactly maxAge", passed, start.Add(maxAge), digestA, true, "within", start.Add(minAge)},
		{"too old", passed, start.Add(maxAge + time.Minute), digestA, false, "must pass again", time.Time{}},
		{"another revision", passed, start.Add(100 * time.Hour), digestB, false, "policy revision", time.Time{}},
		{"failed", failed, start.Add(100 * time.Hour), digestA, false, "failed", time.Time{}},
		{"from the future", passed, start.Add(-time.Hour), digestA, false, "future", time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason, at := Eligible(tc.rec, minAge, maxAge, tc.now, tc.digest)
			if ok != tc.ok || !strings.Contains(reason, tc.reason) || !at.Equal(tc.at) {
				t.Errorf("Eligible = %v, %q, %v; want %v, ~%q, %v", ok, reason, at, tc.ok, tc.reason, tc.at)
			}
		})
	}
}

func TestDigest(t *testing.T) {
	data, err := os.ReadFile("../../policies/rings/payments-rings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(src string) *policy.Policy {
		t.Helper()
		p, probs := policy.Parse("p.yaml", []byte(src))
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		return p
	}
	base, err := Digest(parse(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(base, "sha256:") || len(base) != len("sha256:")+64 {
		t.Fatalf("digest %q is not sha256:<64 hex>", base)
	}
	same := []struct{ name, old, new string }{
		{"description", "description: Payments API on Amazon Linux 2023, staged across accounts", "description: reworded"},
		{"owners", `owners: ["@acme/payments"]`, `owners: ["@acme/sre"]`},
		{"comment", "# Rings across", "# Reworded: rings across"},
		{"a default written out", "      soak: 1h\n", "      soak: 1h\n      offline: fail\n"},
	}
	for _, c := range same {
		d, _ := Digest(parse(strings.Replace(string(data), c.old, c.new, 1)))
		if d != base {
			t.Errorf("%s: digest changed (%s), but what is patched did not", c.name, d)
		}
	}
	other := []struct{ name, old, new string }{
		{"approval delay", "approveAfterDays: 3", "approveAfterDays: 4"},
		{"a production account", `id: "777788889999"`, `id: "777788880000"`},
		{"targets", "tags: {App: payments}\n      maxConcurrency: \"50%\"", "tags: {App: billing}\n      maxConcurrency: \"50%\""},
		{"minAge", "minAge: 72h", "minAge: 48h"},
	}
	for _, c := range other {
		src := strings.Replace(string(data), c.old, c.new, 1)
		if c.name == "a production account" {
			src = strings.Replace(src, "arn:aws:iam::777788889999", "arn:aws:iam::777788880000", 1)
		}
		d, _ := Digest(parse(src))
		if d == base {
			t.Errorf("%s: digest unchanged, but the policy patches differently", c.name)
		}
	}
	// The policy is not written: defaults go on a copy.
	raw := &policy.Policy{Metadata: policy.Metadata{Name: "p"}, Spec: policy.Spec{Schedule: &policy.Schedule{Cron: "0 3 * * *"},
		Baseline: policy.Baseline{ApprovalRules: []policy.ApprovalRule{{}}}, Phases: []policy.Phase{{Name: "a"}}}}
	if _, err := Digest(raw); err != nil {
		t.Fatal(err)
	}
	if raw.Spec.Baseline.ApprovalRules[0].ComplianceLevel != "" || raw.Spec.Schedule.Timezone != "" || raw.Spec.Phases[0].MaxErrors != "" {
		t.Errorf("Digest wrote defaults into the caller's policy: %+v", raw.Spec)
	}
	// Stable: the same document, parsed again, gives the same digest.
	if again, _ := Digest(parse(string(data))); again != base {
		t.Errorf("digest is not stable: %s then %s", base, again)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	rec := record(Passed, start)
	rec.Schema, rec.Seq = Schema, 3
	data, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data)
	if err != nil || got.Seq != 3 || got.Patches[0].Patches[0].Version != "0:1.0.1-1.amzn2023" {
		t.Fatalf("Decode = %+v, %v", got, err)
	}
	bad := *rec
	bad.Verdict = "maybe"
	if _, err := bad.Encode(); err == nil {
		t.Error("a record with an unknown verdict must not be written")
	}
	// Control characters (a carriage return can hide a workflow command)
	// are refused on write and on read.
	for name, edit := range map[string]func(r *Record){
		"runId":  func(r *Record) { r.RunID = "1\r::error::owned" },
		"runUrl": func(r *Record) { r.RunURL = "https://x/\x1b[2J" },
		"patch title": func(r *Record) {
			r.Patches = []OSPatches{{OS: "WINDOWS", Patches: []Patch{{ID: "KB1", Title: "a\rb"}}}}
		},
	} {
		bad := *rec
		edit(&bad)
		if _, err := bad.Encode(); err == nil || !strings.Contains(err.Error(), "control character") {
			t.Errorf("%s: Encode = %v, want a control character refused", name, err)
		}
		raw, _ := json.Marshal(&bad)
		if _, err := Decode(raw); err == nil {
			t.Errorf("%s: Decode accepted a control character", name)
		}
	}
	multi := *rec
	multi.Verdict, multi.Reason = Failed, "wave 1 over maxErrors\nwave 2 not sent"
	if _, err := multi.Encode(); err != nil {
		t.Errorf("a reason over two lines is fine: %v", err)
	}
}
