package policy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCompileAppliesEveryDefaultOnce(t *testing.T) {
	p, probs := Parse("min.yaml", []byte(`apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: min}
spec:
  operatingSystem: AMAZON_LINUX_2023
  baseline: {approvalRules: [{classifications: [Security], approveAfterDays: 7}]}
  install: {rebootOption: NoReboot}
  regions: [us-east-1]
  phases:
    - name: only
      targets: {tags: {App: web}}
`))
	if len(probs) > 0 {
		t.Fatal(probs.Error())
	}
	r, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	st := r.Stages[0]
	if r.PendingReboot != PendingRebootWarn || st.PendingReboot != PendingRebootWarn {
		t.Errorf("NoReboot defaults pendingReboot to warn: %q %q", r.PendingReboot, st.PendingReboot)
	}
	if r.DeliveryTimeout != DefaultDeliveryTimeout || r.ExecutionTimeout != DefaultExecutionTimeout {
		t.Errorf("timeouts %v %v", r.DeliveryTimeout, r.ExecutionTimeout)
	}
	if st.MaxConcurrency != (Percent{10, true}) || st.MaxErrors != (Percent{0, false}) || st.SuccessThreshold != (Percent{100, true}) ||
		!st.OfflineFails || !st.Compliance || st.Inspector.Enabled || len(st.Waves) != 1 || st.Waves[0] != (Percent{100, true}) {
		t.Errorf("stage %+v", st)
	}
	// The same plan as JSON, and back.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"maxConcurrency":"10%"`) || !strings.Contains(string(b), `"executionTimeout":"2h"`) {
		t.Errorf("%s", b)
	}
	var back Rollout
	if err := json.Unmarshal(b, &back); err != nil || back.Stages[0].SuccessThreshold != st.SuccessThreshold {
		t.Fatalf("round trip: %v %+v", err, back.Stages)
	}
}

func TestCompileDefaultPendingRebootFollowsRebootOption(t *testing.T) {
	for _, tc := range []struct{ reboot, pending, want string }{
		{"RebootIfNeeded", "", PendingRebootFail}, {"NoReboot", "", PendingRebootWarn},
		{"NoReboot", "fail", PendingRebootFail}, {"RebootIfNeeded", "warn", PendingRebootWarn},
	} {
		src := strings.Replace(basePolicy, "    rebootOption: RebootIfNeeded\n", "    rebootOption: "+tc.reboot+"\n", 1)
		if tc.pending != "" {
			src = strings.Replace(src, "    deliveryTimeout: 10m\n", "    deliveryTimeout: 10m\n    pendingReboot: "+tc.pending+"\n", 1)
		}
		p, probs := Parse("p.yaml", []byte(src))
		if len(probs) > 0 {
			t.Fatal(probs.Error())
		}
		r, err := Compile(p)
		if err != nil || r.PendingReboot != tc.want {
			t.Errorf("%+v: %v %q", tc, err, r.PendingReboot)
		}
	}
	src := strings.Replace(basePolicy, "    deliveryTimeout: 10m\n", "    deliveryTimeout: 10m\n    pendingReboot: ignore\n", 1)
	if _, probs := Parse("p.yaml", []byte(src)); len(probs) == 0 || !strings.Contains(probs.Error(), "pendingReboot") {
		t.Errorf("pendingReboot: ignore must be refused: %v", probs)
	}
}

// TestCompileRefusesWhatValidationWouldHave: Compile never reads a bad
// limit as a default; a policy that skipped validation fails here.
func TestCompileRefusesWhatValidationWouldHave(t *testing.T) {
	for _, tc := range []struct{ field, value string }{
		{"maxConcurrency", "0"}, {"maxConcurrency", "ten"}, {"maxErrors", "-1"}, {"successThreshold", "90"},
		{"successThreshold", "0%"}, {"successThreshold", "101%"},
	} {
		p := &Policy{Metadata: Metadata{Name: "x"}, Source: Source{File: "x.yaml"}, Spec: Spec{Phases: []Phase{{Name: "a", MaxConcurrency: "1", MaxErrors: "0", SuccessThreshold: "100%"}}}}
		switch tc.field {
		case "maxConcurrency":
			p.Spec.Phases[0].MaxConcurrency = tc.value
		case "maxErrors":
			p.Spec.Phases[0].MaxErrors = tc.value
		case "successThreshold":
			p.Spec.Phases[0].SuccessThreshold = tc.value
		}
		if _, err := Compile(p); err == nil || !strings.Contains(err.Error(), "x.yaml: spec.phases[0]."+tc.field) {
			t.Errorf("%s %q: %v", tc.field, tc.value, err)
		}
	}
	for _, waves := range [][]string{{"50%", "50%"}, {"50%"}, {"60%", "40%", "100%"}, {"5", "100%"}} {
		p := &Policy{Metadata: Metadata{Name: "x"}, Spec: Spec{Phases: []Phase{{Name: "a", Waves: waves}}}}
		if _, err := Compile(p); err == nil || !strings.Contains(err.Error(), "waves") {
			t.Errorf("waves %v: %v", waves, err)
		}
	}
}

func TestWaveEnds(t *testing.T) {
	for _, tc := range []struct {
		n      int
		shares []string
		want   []int
	}{
		{200, []string{"10%", "50%", "100%"}, []int{20, 100, 200}},
		{3, []string{"10%", "50%", "100%"}, []int{1, 2, 3}}, // at least one a wave while any remain
		{1, []string{"10%", "50%", "100%"}, []int{1, 1, 1}}, // then empty waves end where the last did
		{7, []string{"100%"}, []int{7}},
		{0, []string{"50%", "100%"}, []int{0, 0}},
		{10, []string{"33%", "100%"}, []int{4, 10}}, // rounded up
		{1000, []string{"1%", "99%", "100%"}, []int{10, 990, 1000}},
	} {
		st := Stage{}
		for _, s := range tc.shares {
			p, err := ParsePercent(s)
			if err != nil {
				t.Fatal(err)
			}
			st.Waves = append(st.Waves, p)
		}
		if got := st.WaveEnds(tc.n); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("WaveEnds(%d, %v) = %v, want %v", tc.n, tc.shares, got, tc.want)
		}
	}
}

func TestLimits(t *testing.T) {
	st := Stage{MaxErrors: Percent{5, true}, SuccessThreshold: Percent{95, true}}
	for _, tc := range []struct{ n, errLimit, required int }{
		{0, 0, 0}, {1, 0, 1}, {19, 0, 19}, {20, 1, 19}, {100, 5, 95}, {101, 5, 96}, {1000, 50, 950},
	} {
		if got := st.ErrorLimit(tc.n); got != tc.errLimit {
			t.Errorf("ErrorLimit(%d) = %d, want %d", tc.n, got, tc.errLimit)
		}
		if got := st.Required(tc.n); got != tc.required {
			t.Errorf("Required(%d) = %d, want %d", tc.n, got, tc.required)
		}
	}
	if got := (&Stage{MaxErrors: Percent{2, false}}).ErrorLimit(1000); got != 2 {
		t.Errorf("absolute maxErrors: %d", got)
	}
}

// TestCompileBasePolicy: every field of a full policy reaches its stage as
// written (the fields mutation testing found unread by any test).
func TestCompileBasePolicy(t *testing.T) {
	src := strings.Replace(basePolicy, "      waves: [\"10%\", \"50%\", \"100%\"]\n",
		"      waves: [\"10%\", \"50%\", \"100%\"]\n      offline: skip\n      verify: {compliance: false}\n", 1)
	p, probs := Parse("base.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatal(probs.Error())
	}
	r, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Stages) != 2 {
		t.Fatalf("stages %+v", r.Stages)
	}
	st, prod := r.Stage("staging"), r.Stage("production")
	if st != &r.Stages[0] || prod != &r.Stages[1] || r.Stage("Staging") != nil || r.Stage("") != nil {
		t.Fatalf("Stage lookup: %p %p", st, prod)
	}
	if !st.Compliance || prod.Compliance {
		t.Errorf("compliance: staging %v (compliance: true), production %v (compliance: false)", st.Compliance, prod.Compliance)
	}
	if st.Index != 0 || prod.Index != 1 || !st.OfflineFails || prod.OfflineFails {
		t.Errorf("index/offline: %+v %+v", st, prod)
	}
	if st.Soak != 30*time.Minute || st.SoakText != "30m" || prod.Soak != 0 || prod.SoakText != "" {
		t.Errorf("soak: %v %q, %v %q", st.Soak, st.SoakText, prod.Soak, prod.SoakText)
	}
	wantInsp := Inspection{Enabled: true, FailOnSeverity: "HIGH", RescanTimeout: 45 * time.Minute, RequireFixed: []string{"CVE-2024-6387"}}
	if fmt.Sprint(st.Inspector) != fmt.Sprint(wantInsp) || prod.Inspector.Enabled || prod.Inspector.FailOnSeverity != "" {
		t.Errorf("inspector: %+v, production %+v", st.Inspector, prod.Inspector)
	}
	if prod.MaxErrors != (Percent{2, true}) || prod.SuccessThreshold != (Percent{98, true}) || prod.MaxConcurrency != (Percent{10, true}) ||
		fmt.Sprint(prod.Waves) != "[10% 50% 100%]" {
		t.Errorf("production limits %+v", prod)
	}
	if r.Policy != "web-fleet" || r.RebootOption != "RebootIfNeeded" || r.DeliveryTimeout != 10*time.Minute || r.DeliveryTimeoutText != "10m" ||
		r.ExecutionTimeout != 2*time.Hour || r.ExecutionTimeoutText != "2h" {
		t.Errorf("rollout %+v", r)
	}
	// A soak of zero is no soak in the plan's JSON.
	b, err := json.Marshal(prod)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"soak"`) {
		t.Errorf("a stage without soak writes one: %s", b)
	}
	// Compile wrote nothing into the policy it read.
	if p.Spec.Phases[1].MaxConcurrency != "10%" || p.Spec.Schedule == nil || len(p.Spec.Baseline.ApprovalRules) != 1 {
		t.Errorf("the policy was changed: %+v", p.Spec)
	}
}

// TestCompileLimitEdges: the smallest and largest limits accepted, and the
// first refused on either side.
func TestCompileLimitEdges(t *testing.T) {
	for _, tc := range []struct {
		field, value string
		ok           bool
	}{
		{"maxConcurrency", "1", true}, {"maxConcurrency", "1%", true}, {"maxConcurrency", "0%", false},
		{"maxErrors", "0", true}, {"maxErrors", "0%", true},
		{"successThreshold", "1%", true}, {"successThreshold", "100%", true}, {"successThreshold", "0%", false}, {"successThreshold", "101%", false},
	} {
		p := &Policy{Metadata: Metadata{Name: "x"}, Source: Source{File: "x.yaml"}, Spec: Spec{Phases: []Phase{{Name: "a", MaxConcurrency: "1", MaxErrors: "0", SuccessThreshold: "100%"}}}}
		ph := &p.Spec.Phases[0]
		switch tc.field {
		case "maxConcurrency":
			ph.MaxConcurrency = tc.value
		case "maxErrors":
			ph.MaxErrors = tc.value
		case "successThreshold":
			ph.SuccessThreshold = tc.value
		}
		r, err := Compile(p)
		if (err == nil) != tc.ok {
			t.Errorf("%s %q: %v, want accepted %v", tc.field, tc.value, err, tc.ok)
			continue
		}
		if tc.ok && fmt.Sprint(map[string]Percent{"maxConcurrency": r.Stages[0].MaxConcurrency, "maxErrors": r.Stages[0].MaxErrors,
			"successThreshold": r.Stages[0].SuccessThreshold}[tc.field]) != tc.value {
			t.Errorf("%s %q compiled to %+v", tc.field, tc.value, r.Stages[0])
		}
	}
	for _, tc := range []struct {
		waves []string
		ok    bool
	}{
		{[]string{"1%", "100%"}, true}, {[]string{"99%", "100%"}, true}, {[]string{"100%"}, true},
		{[]string{"0%", "100%"}, false}, {[]string{"100%", "100%"}, false}, {[]string{"50%", "101%"}, false},
	} {
		p := &Policy{Metadata: Metadata{Name: "x"}, Spec: Spec{Phases: []Phase{{Name: "a", Waves: tc.waves}}}}
		r, err := Compile(p)
		if (err == nil) != tc.ok {
			t.Errorf("waves %v: %v, want accepted %v", tc.waves, err, tc.ok)
			continue
		}
		if tc.ok && fmt.Sprint(r.Stages[0].Waves) != fmt.Sprint(tc.waves) {
			t.Errorf("waves %v compiled to %v", tc.waves, r.Stages[0].Waves)
		}
	}
}

// TestWaveEndsEdges: a wave whose share ends where the last one did takes
// one more instance; the last wave ends at n whatever its share says (a
// hand-built stage; Compile requires 100%).
func TestWaveEndsEdges(t *testing.T) {
	for _, tc := range []struct {
		n     int
		waves []Percent
		want  string
	}{
		{3, []Percent{{10, true}, {20, true}, {100, true}}, "[1 2 3]"},
		{10, []Percent{{50, true}}, "[10]"},
		{10, []Percent{{20, true}, {50, true}}, "[2 10]"},
		{10, []Percent{{3, false}, {100, true}}, "[3 10]"},   // an absolute share
		{10, []Percent{{30, false}, {100, true}}, "[10 10]"}, // capped at n
	} {
		st := Stage{Waves: tc.waves}
		if got := fmt.Sprint(st.WaveEnds(tc.n)); got != tc.want {
			t.Errorf("WaveEnds(%d, %v) = %s, want %s", tc.n, tc.waves, got, tc.want)
		}
	}
}

func TestPercentCeilAndJSON(t *testing.T) {
	for _, tc := range []struct {
		p     Percent
		total int
		want  int
	}{
		{Percent{1, true}, 1, 1}, {Percent{1, true}, 100, 1}, {Percent{1, true}, 101, 2}, {Percent{50, true}, 3, 2},
		{Percent{100, true}, 7, 7}, {Percent{0, true}, 7, 0}, {Percent{5, false}, 1000, 5},
	} {
		if got := tc.p.Ceil(tc.total); got != tc.want {
			t.Errorf("%s.Ceil(%d) = %d, want %d", tc.p, tc.total, got, tc.want)
		}
	}
	var p Percent
	if err := json.Unmarshal([]byte(`"12%"`), &p); err != nil || p != (Percent{12, true}) {
		t.Fatalf("%v %+v", err, p)
	}
	for _, bad := range []string{`12`, `"twelve"`, `"-1"`} {
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("%s was read as %+v", bad, p)
		}
	}
}
