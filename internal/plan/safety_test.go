package plan_test

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/awsconnect"
	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/policy"
)

func TestSafetyRisks(t *testing.T) {
	src, err := os.ReadFile("../../policies/web-fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The example carries its own safety settings; the cases below start
	// from the policy without them and add their own.
	src = []byte(strings.NewReplacer(
		"    backup: {mode: snapshot, retainDays: 14}     # EBS snapshots of every instance before its wave\n", "",
		"    hooks: {preInstall: App-Drain, postInstall: App-HealthCheck}\n", "",
		"        health: {alarms: [web-5xx]}   # CloudWatch: before, after each wave, through the soak\n", "",
		"        health: {alarms: [web-5xx]}\n", "",
	).Replace(string(src)))
	safe := strings.NewReplacer(
		"    executionTimeout: 4h\n", "    executionTimeout: 4h\n    backup: {mode: snapshot, retainDays: 14}\n    hooks: {preInstall: App-Drain, onExit: App-Check}\n",
		"          requireFixed: [CVE-2024-6387]\n", "          requireFixed: [CVE-2024-6387]\n        health: {alarms: [web-5xx, \"web-latency-*\"]}\n",
	).Replace(string(src))
	parse := func(text string) *policy.Policy {
		p, probs := policy.Parse("policies/web-fleet.yaml", []byte(text))
		if len(probs) > 0 {
			t.Fatal(probs.Error())
		}
		return p
	}
	edit := func(old, new string) string {
		if !strings.Contains(safe, old) {
			t.Fatalf("no %q", old)
		}
		return strings.Replace(safe, old, new, 1)
	}
	for _, tc := range []struct {
		name   string
		head   string
		risks  []string // "check|message substring"
		change string
	}{
		{"unchanged", safe, nil, ""},
		{"backup turned off", edit("{mode: snapshot, retainDays: 14}", "{mode: none}"), []string{plan.RiskBackupOff + "|turned off"}, "backup: snapshot, retain 14 days, wait for pending (timeout 30m) -> none"},
		{"backup removed", edit("    backup: {mode: snapshot, retainDays: 14}\n", ""), []string{plan.RiskBackupOff + "|turned off"}, "backup: removed"},
		{"one hook removed", edit("{preInstall: App-Drain, onExit: App-Check}", "{onExit: App-Check}"), []string{plan.RiskHooksRemoved + "|preInstall hook App-Drain"}, "hook preInstall: removed (was App-Drain)"},
		{"hooks removed", edit("    hooks: {preInstall: App-Drain, onExit: App-Check}\n", ""), []string{plan.RiskHooksRemoved + "|preInstall", plan.RiskHooksRemoved + "|onExit"}, ""},
		{"hook renamed is a change, not a removal", edit("preInstall: App-Drain", "preInstall: App-Drain2"), nil, "hook preInstall: App-Drain -> App-Drain2"},
		{"alarm removed", edit(`[web-5xx, "web-latency-*"]`, `[web-5xx]`), []string{plan.RiskHealthAlarmRemoved + "|health alarm web-latency-* is no longer watched"}, ""},
		{"health removed", edit(`        health: {alarms: [web-5xx, "web-latency-*"]}`+"\n", ""), []string{plan.RiskHealthAlarmRemoved + "|web-5xx", plan.RiskHealthAlarmRemoved + "|web-latency-*"}, ""},
		{"alarm at start allowed", edit(`[web-5xx, "web-latency-*"]}`, `[web-5xx, "web-latency-*"], allowAlarmAtStart: true}`), []string{plan.RiskHealthAlarmRemoved + "|allowAlarmAtStart"}, ""},
		{"alarm added is no risk", edit(`[web-5xx, "web-latency-*"]`, `[web-5xx, "web-latency-*", web-errors]`), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := plan.Diff([]*policy.Policy{parse(safe)}, []*policy.Policy{parse(tc.head)})
			var got []plan.Risk
			var changes []string
			for _, d := range ds {
				got = append(got, d.Risks...)
				for _, c := range d.Changes {
					changes = append(changes, c.String())
				}
			}
			if len(got) != len(tc.risks) {
				t.Fatalf("risks %+v, want %v", got, tc.risks)
			}
			for i, want := range tc.risks {
				check, msg, _ := strings.Cut(want, "|")
				if got[i].Check != check || !strings.Contains(got[i].Message, msg) {
					t.Errorf("risk %d: %+v, want %s", i, got[i], want)
				}
			}
			if tc.change != "" && !strings.Contains(strings.Join(changes, "\n"), tc.change) {
				t.Errorf("changes %q lack %q", changes, tc.change)
			}
		})
	}
}

// TestPlanChecksHookDocuments: plan --aws says, per account-region, which
// hook document does not exist there, named with its hook.
func TestPlanChecksHookDocuments(t *testing.T) {
	sim := awssim.New(awssim.DemoScenario(awssim.DemoOptions{}), nil)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	base := awssim.Config(srv.URL, "111122223333", "us-east-1")
	src, err := os.ReadFile("../../policies/web-fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "postInstall: App-HealthCheck", "postInstall: App-Missing", 1)
	p, probs := policy.Parse("policies/web-fleet.yaml", []byte(text))
	if len(probs) > 0 {
		t.Fatal(probs.Error())
	}
	set := &policy.Set{Policies: []*policy.Policy{p}}
	pl := plan.New("(none)", "", nil, set)
	pl.Resolve(context.Background(), set, awsconnect.Plan(&awsapi.Factory{Base: base}), true, 4)
	if len(pl.Policies[0].Drift) == 0 {
		t.Fatal("no account-region resolved")
	}
	for _, d := range pl.Policies[0].Drift {
		if !strings.Contains(d.Hooks, "App-Missing (install.hooks.postInstall)") || strings.Contains(d.Hooks, "App-Drain") {
			t.Fatalf("%s/%s hooks: %q", d.Account, d.Region, d.Hooks)
		}
	}
}
