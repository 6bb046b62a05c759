package policy

import (
	"strings"
	"testing"
	"time"
)

// safetyPolicy is basePolicy with every safety setting of issue #20.
var safetyPolicy = chain(
	sub("    executionTimeout: 2h\n", "    executionTimeout: 2h\n    backup: {mode: snapshot, retainDays: 7}\n    hooks: {preInstall: App-Drain, onExit: arn:aws:ssm:us-east-1:111122223333:document/App-Check}\n"),
	sub("          requireFixed: [CVE-2024-6387]\n", "          requireFixed: [CVE-2024-6387]\n        health: {alarms: [web-5xx, \"web-latency-*\"], pollInterval: 30s}\n"),
	sub("    cloudwatchNamespace: Patchgate\n", "    cloudwatchNamespace: Patchgate\n    securityHub: true\n    sns: arn:aws:sns:us-east-1:111122223333:patchgate\n"),
)(basePolicy)

func TestSafetySettingsCompile(t *testing.T) {
	p, probs := Parse("web.yaml", []byte(safetyPolicy))
	if len(probs) > 0 {
		t.Fatal(probs.Error())
	}
	if err := validateWithSchema(compileSchema(t), safetyPolicy); err != nil {
		t.Fatalf("the JSON Schema rejects a valid policy: %v", err)
	}
	r, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Backup == nil || r.Backup.RetainDays != 7 || r.Backup.WaitFor != WaitPending || r.Backup.Timeout != DefaultBackupTimeout {
		t.Errorf("backup %+v", r.Backup)
	}
	if r.Hooks == nil || r.Hooks.PreInstall != "App-Drain" || r.Hooks.PostInstall != "" || !strings.HasSuffix(r.Hooks.OnExit, "document/App-Check") {
		t.Errorf("hooks %+v", r.Hooks)
	}
	if !r.Notify.SecurityHub || r.Notify.SNSTopic != "arn:aws:sns:us-east-1:111122223333:patchgate" {
		t.Errorf("notify %+v", r.Notify)
	}
	h := r.Stages[0].Health
	if h == nil || strings.Join(h.Names, ",") != "web-5xx" || strings.Join(h.Prefixes, ",") != "web-latency-" ||
		h.During != HealthDuringSoak || h.PollInterval != 30*time.Second || h.AllowAlarmAtStart {
		t.Errorf("health %+v", h)
	}
	if r.Stages[1].Health != nil {
		t.Errorf("production has no health gate: %+v", r.Stages[1].Health)
	}
}

func TestSafetyDefaultsOnAPolicyWithoutThem(t *testing.T) {
	p, probs := Parse("web.yaml", []byte(basePolicy))
	if len(probs) > 0 {
		t.Fatal(probs.Error())
	}
	r, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Backup != nil || r.Hooks != nil || r.Notify != (Notifications{}) || r.Stages[0].Health != nil {
		t.Errorf("no safety settings were asked for: %+v %+v %+v %+v", r.Backup, r.Hooks, r.Notify, r.Stages[0].Health)
	}
}

func TestCompileLeavesThePolicysSafetySettingsAlone(t *testing.T) {
	p, probs := Parse("web.yaml", []byte(strings.Replace(safetyPolicy, "{mode: snapshot, retainDays: 7}", "{mode: snapshot}", 1)))
	if len(probs) > 0 {
		t.Fatal(probs.Error())
	}
	// Parse applies defaults to what it returns; undo two to see whether
	// Compile writes through the shared pointers.
	p.Spec.Install.Backup.RetainDays = 0
	p.Spec.Phases[0].Verify.Health.During = ""
	r, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Backup.RetainDays != DefaultRetainDays || r.Stages[0].Health.During != HealthDuringSoak {
		t.Errorf("defaults not compiled: %+v %+v", r.Backup, r.Stages[0].Health)
	}
	if p.Spec.Install.Backup.RetainDays != 0 || p.Spec.Phases[0].Verify.Health.During != "" {
		t.Errorf("Compile wrote the caller's policy: %+v %+v", p.Spec.Install.Backup, p.Spec.Phases[0].Verify.Health)
	}
}

func TestBadSafetySettings(t *testing.T) {
	schema := compileSchema(t)
	for _, tc := range []struct {
		name, old, new string
		path, msg      string
		schema         bool
	}{
		{"backup mode", "{mode: snapshot, retainDays: 7}", "{mode: ami}", "spec.install.backup.mode", "is not one of", true},
		{"backup mode missing", "{mode: snapshot, retainDays: 7}", "{retainDays: 7}", "spec.install.backup.mode", "mode is required", true},
		{"backup waitFor", "{mode: snapshot, retainDays: 7}", "{mode: snapshot, waitFor: available}", "spec.install.backup.waitFor", "is not one of", true},
		{"backup retainDays", "{mode: snapshot, retainDays: 7}", "{mode: snapshot, retainDays: 5000}", "spec.install.backup.retainDays", "between 1 and 3650", true},
		{"backup timeout", "{mode: snapshot, retainDays: 7}", "{mode: snapshot, timeout: 5s}", "spec.install.backup.timeout", "between 1m and 24h", false},
		{"settings with mode none", "{mode: snapshot, retainDays: 7}", "{mode: none, retainDays: 7}", "spec.install.backup", "mode is none", false},
		{"hook name", "preInstall: App-Drain", "preInstall: \"App Drain; rm -rf /\"", "spec.install.hooks.preInstall", "is not an SSM document name", true},
		{"hook name too short", "preInstall: App-Drain", "preInstall: ab", "spec.install.hooks.preInstall", "is not an SSM document name", true},
		{"hook ARN of another service", "onExit: arn:aws:ssm:us-east-1:111122223333:document/App-Check", "onExit: arn:aws:s3:::bucket/App-Check", "spec.install.hooks.onExit", "is not an SSM document name", true},
		{"hooks empty", "hooks: {preInstall: App-Drain, onExit: arn:aws:ssm:us-east-1:111122223333:document/App-Check}", "hooks: {}", "spec.install.hooks", "names no document", true},
		{"hooks on macOS", "operatingSystem: AMAZON_LINUX_2023", "operatingSystem: MACOS", "spec.install.hooks", "does not support macOS", false},
		{"alarms empty", `alarms: [web-5xx, "web-latency-*"]`, "alarms: []", "spec.phases[0].verify.health.alarms", "is empty", true},
		{"alarm star inside", `"web-latency-*"`, `"web-*-latency"`, "spec.phases[0].verify.health.alarms[1]", "only at its end", true},
		{"alarm only a star", `"web-latency-*"`, `"*"`, "spec.phases[0].verify.health.alarms[1]", "at least one character", true},
		{"alarm twice", `"web-latency-*"`, `web-5xx`, "spec.phases[0].verify.health.alarms[1]", "listed twice", true},
		{"alarm control character", `"web-latency-*"`, `"web\u0007"`, "spec.phases[0].verify.health.alarms[1]", "control character", false},
		{"during", "pollInterval: 30s", "pollInterval: 30s, during: always", "spec.phases[0].verify.health.during", "is not one of", true},
		{"poll too fast", "pollInterval: 30s", "pollInterval: 1s", "spec.phases[0].verify.health.pollInterval", "between 10s and 15m", false},
		{"unknown health key", "pollInterval: 30s", "pollInterval: 30s, alarm: x", "spec.phases[0].verify.health", "alarm", true},
		{"sns ARN", "sns: arn:aws:sns:us-east-1:111122223333:patchgate", "sns: arn:aws:sqs:us-east-1:111122223333:patchgate", "spec.reporting.sns", "not an SNS topic ARN", true},
		{"securityHub type", "securityHub: true", "securityHub: yes", "spec.reporting.securityHub", "true or false", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(safetyPolicy, tc.old) {
				t.Fatalf("the test edits %q, which the policy lacks", tc.old)
			}
			src := strings.Replace(safetyPolicy, tc.old, tc.new, 1)
			_, probs := Parse("web.yaml", []byte(src))
			var found bool
			for _, pr := range probs {
				if strings.Contains(pr.Message, tc.msg) && strings.HasPrefix(pr.Path, tc.path) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no problem at %s says %q; got:\n%s", tc.path, tc.msg, probs.Error())
			}
			if tc.schema && validateWithSchema(schema, src) == nil {
				t.Errorf("the JSON Schema accepts what the loader rejects: the two have drifted")
			}
		})
	}
}
