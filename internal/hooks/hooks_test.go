package hooks

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/policy"
)

const acct, region = "111122223333", "us-east-1"

func harness(t *testing.T, sc *awssim.Scenario) (*awssim.Sim, *ssm.Client, *clock.Step) {
	t.Helper()
	c := clock.NewStep(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC))
	sim := awssim.New(sc, c)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, ssm.NewFromConfig(awssim.Config(srv.URL, acct, region)), c
}

func TestDocumentAndParameters(t *testing.T) {
	if DocumentFor(nil) != PlainDocument || Parameters(nil) != nil || DocumentFor(&policy.Hooks{}) != PlainDocument {
		t.Error("no hooks: the plain document, no parameters")
	}
	h := &policy.Hooks{PreInstall: "App-Drain"}
	p := Parameters(h)
	if DocumentFor(h) != Document || p[ParamPreInstall][0] != "App-Drain" || p[ParamPostInstall][0] != Noop || p[ParamOnExit][0] != Noop || len(p) != 3 {
		t.Errorf("%s %v", DocumentFor(h), p)
	}
}

func TestCheckNamesEachMissingDocumentAndItsHook(t *testing.T) {
	_, cl, _ := harness(t, &awssim.Scenario{Accounts: []string{acct}, Documents: []string{"App-Drain", "App-Check"}})
	ok := &policy.Hooks{PreInstall: "App-Drain", OnExit: "arn:aws:ssm:us-east-1:111122223333:document/App-Check"}
	if err := Check(context.Background(), cl, ok); err != nil {
		t.Fatal(err)
	}
	bad := &policy.Hooks{PreInstall: "App-Drain", PostInstall: "App-Warm", OnExit: "arn:aws:ssm:eu-west-1:111122223333:document/App-Check"}
	err := Check(context.Background(), cl, bad)
	if err == nil || !strings.Contains(err.Error(), "App-Warm (install.hooks.postInstall)") || !strings.Contains(err.Error(), "document/App-Check (install.hooks.onExit)") || strings.Contains(err.Error(), "App-Drain (") {
		t.Errorf("%v", err)
	}
	if err := Check(context.Background(), cl, nil); err != nil {
		t.Errorf("no hooks, nothing to check: %v", err)
	}
}

// A failing pre-install hook fails its instance, and the reason names the
// hook; the install itself failing is not blamed on a hook.
func TestAFailingPreInstallHookFailsTheInstanceWithTheHooksName(t *testing.T) {
	sc := &awssim.Scenario{Accounts: []string{acct}, Documents: []string{"App-Drain"}, Groups: []awssim.Group{
		{Region: region, Count: 1, Name: "ok"},
		{Region: region, Count: 1, Name: "hookfail", PreInstallHookFails: true},
		{Region: region, Count: 1, Name: "broken", Behavior: "fail"},
	}}
	sim, cl, c := harness(t, sc)
	h := &policy.Hooks{PreInstall: "App-Drain"}
	var ids []string
	for _, in := range sim.Instances(acct, region) {
		ids = append(ids, in.ID)
	}
	params := map[string][]string{"Operation": {"Install"}, "RebootOption": {"NoReboot"}}
	for k, v := range Parameters(h) {
		params[k] = v
	}
	out, err := cl.SendCommand(context.Background(), &ssm.SendCommandInput{DocumentName: aws.String(DocumentFor(h)), InstanceIds: ids, Parameters: params, MaxErrors: aws.String("3")})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(3 * time.Hour)
	invs, err := cl.ListCommandInvocations(context.Background(), &ssm.ListCommandInvocationsInput{CommandId: out.Command.CommandId, Details: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, inv := range invs.CommandInvocations {
		var ps []Plugin
		for _, p := range inv.CommandPlugins {
			ps = append(ps, Plugin{Name: aws.ToString(p.Name), Status: string(p.Status), Output: aws.ToString(p.Output)})
		}
		reason, ok := FailureReason(h, ps, "")
		got[aws.ToString(inv.InstanceId)] = string(inv.Status) + "|" + reason
		if !ok && reason != "" {
			t.Errorf("reason without ok: %q", reason)
		}
	}
	if got[ids[0]] != "Success|" {
		t.Errorf("healthy instance: %q", got[ids[0]])
	}
	if !strings.HasPrefix(got[ids[1]], "Failed|pre-install hook App-Drain failed: Step PreInstallHook: running document App-Drain failed") {
		t.Errorf("hook failure: %q", got[ids[1]])
	}
	if got[ids[2]] != "Failed|" {
		t.Errorf("an install failure is not a hook's: %q", got[ids[2]])
	}
	// From GetCommandInvocation's output alone (no plugin list).
	inv, err := cl.GetCommandInvocation(context.Background(), &ssm.GetCommandInvocationInput{CommandId: out.Command.CommandId, InstanceId: aws.String(ids[1])})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := FailureReason(h, nil, aws.ToString(inv.StandardOutputContent)); !ok || !strings.HasPrefix(r, "pre-install hook App-Drain failed") {
		t.Errorf("from output: %q %v", r, ok)
	}
}

func TestFailureReasonIsOneLine(t *testing.T) {
	h := &policy.Hooks{OnExit: "App-Check"}
	r, ok := FailureReason(h, []Plugin{{Name: "OnExitHook", Status: "Failed", Output: "error: \r::error::forged\nmore"}}, "")
	if !ok || strings.ContainsAny(r, "\r\n") || !strings.HasPrefix(r, "on-exit hook App-Check failed: error:") {
		t.Errorf("%q %v", r, ok)
	}
}
