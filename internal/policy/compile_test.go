package policy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
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
