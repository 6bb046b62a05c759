package awssim

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/patchgate/patchgate/internal/clock"
)

func stepSim(t *testing.T, sc *Scenario) (*Sim, string, *clock.Step) {
	t.Helper()
	c := clock.NewStep(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC))
	s := New(sc, c)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL, c
}

// DescribeAlarms as CloudWatch documents it: metric alarms only unless
// AlarmTypes asks, names and a prefix not together, scheduled changes.
func TestDescribeAlarmsAsDocumented(t *testing.T) {
	_, ep, c := stepSim(t, &Scenario{Accounts: []string{"111122223333"}, Alarms: []AlarmSpec{
		{Region: "us-east-1", Name: "web-5xx", Changes: []AlarmChange{{After: 10 * time.Minute, State: "ALARM", Reason: "breach"}}},
		{Region: "us-east-1", Name: "web-all", Type: "CompositeAlarm"},
	}})
	cw := cloudwatch.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	ctx := context.Background()
	out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("web-")})
	if err != nil || len(out.MetricAlarms) != 1 || len(out.CompositeAlarms) != 0 {
		t.Fatalf("without AlarmTypes only metric alarms: %v %+v", err, out)
	}
	if out.MetricAlarms[0].StateValue != cwtypes.StateValueOk {
		t.Errorf("state at start: %s", out.MetricAlarms[0].StateValue)
	}
	c.Advance(10 * time.Minute)
	out, err = cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("web-"),
		AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm, cwtypes.AlarmTypeCompositeAlarm}})
	if err != nil || len(out.CompositeAlarms) != 1 || out.MetricAlarms[0].StateValue != cwtypes.StateValueAlarm ||
		aws.ToString(out.MetricAlarms[0].StateReason) != "breach" || !out.MetricAlarms[0].StateTransitionedTimestamp.Equal(c.Now()) {
		t.Fatalf("after the scheduled change: %v %+v", err, out)
	}
	_, err = cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("web-"), AlarmNames: []string{"web-5xx"}})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterCombination" {
		t.Errorf("names with a prefix: %v", err)
	}
}

// The pre-install hook fails only under the hooks document with a hook.
func TestPreInstallHookFailsOnlyWithAHook(t *testing.T) {
	s, ep, c := stepSim(t, &Scenario{Accounts: []string{"111122223333"}, Groups: []Group{{Region: "us-east-1", Count: 1, Name: "h", PreInstallHookFails: true}}})
	cl := ssm.NewFromConfig(Config(ep, "111122223333", "us-east-1"))
	id := s.Instances("111122223333", "us-east-1")[0].ID
	for _, tc := range []struct {
		doc, hook, want string
	}{{"AWS-RunPatchBaseline", "", "Success"}, {HooksDocument, "AWS-Noop", "Success"}, {HooksDocument, "App-Drain", "Failed"}} {
		params := map[string][]string{"Operation": {"Install"}}
		if tc.hook != "" {
			params["PreInstallHookDocName"] = []string{tc.hook}
		}
		out, err := cl.SendCommand(context.Background(), &ssm.SendCommandInput{DocumentName: aws.String(tc.doc), InstanceIds: []string{id}, Parameters: params})
		if err != nil {
			t.Fatal(err)
		}
		c.Advance(2 * time.Hour)
		inv, err := cl.GetCommandInvocation(context.Background(), &ssm.GetCommandInvocationInput{CommandId: out.Command.CommandId, InstanceId: aws.String(id)})
		if err != nil || string(inv.Status) != tc.want {
			t.Errorf("%s %s: %v %s", tc.doc, tc.hook, err, inv.Status)
		}
	}
}

func TestDemoFailHealthFiresOneAlarmAnHourIn(t *testing.T) {
	for _, fail := range []bool{false, true} {
		_, ep, c := stepSim(t, DemoScenario(DemoOptions{FailHealth: fail}))
		c.Advance(time.Hour)
		for _, where := range []struct{ acct, region, want string }{
			{"111122223333", "us-east-1", map[bool]string{false: "OK", true: "ALARM"}[fail]},
			{"444455556666", "us-east-1", "OK"}, {"111122223333", "eu-west-1", "OK"},
		} {
			cw := cloudwatch.NewFromConfig(Config(ep, where.acct, where.region))
			out, err := cw.DescribeAlarms(context.Background(), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"web-5xx", "web-latency-p99"}})
			if err != nil || len(out.MetricAlarms) != 2 || string(out.MetricAlarms[0].StateValue) != where.want || out.MetricAlarms[1].StateValue != cwtypes.StateValueOk {
				t.Errorf("fail=%v %s/%s: %v %+v", fail, where.acct, where.region, err, out)
			}
		}
	}
}

func TestScenarioAlarmsAreChecked(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"alarms: [{region: us-east-1, name: a, changes: [{after: 1h, state: ALARM}]}]", ""},
		{"alarms: [{name: a}]", "needs a name and a region"},
		{"alarms: [{region: us-east-1, name: a, state: FIRING}]", "unknown state"},
		{"alarms: [{region: us-east-1, name: a, changes: [{after: 1h}]}]", "a change needs a state"},
	} {
		path := t.TempDir() + "/sc.yaml"
		if err := os.WriteFile(path, []byte("accounts: [\"111122223333\"]\n"+tc.yaml+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadScenario(path)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
