package metrics

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/result"
)

func TestPublishThroughCloudWatchWire(t *testing.T) {
	sim := awssim.New(&awssim.Scenario{Accounts: []string{"111122223333", "444455556666"}}, nil)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	ep := srv.URL
	end := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	var phases []result.Phase
	for i := 0; i < 150; i++ { // 150 phases x 8 metrics: more than one PutMetricData
		phases = append(phases, result.Phase{Name: fmt.Sprintf("p%d", i), Status: result.StatusPassed, StartedAt: end.Add(-time.Hour), EndedAt: end,
			Counts: result.Counts{Targeted: 10, Succeeded: 9, Failed: 1},
			Verification: &result.Verification{Compliance: &result.Compliance{Percent: 90},
				Inspector: &result.Inspector{RemainingBySeverity: map[string]int{"CRITICAL": 1}}}})
	}
	run := &result.Run{EndedAt: end, Policies: []result.Policy{
		{Name: "web", Targets: []result.Target{{AccountID: "444455556666", Region: "eu-west-1", Phases: phases}}},
		{Name: "quiet", Targets: []result.Target{{AccountID: "111122223333", Region: "us-east-1", Phases: phases[:1]}}},
	}}
	errs := Publish(context.Background(), run, map[string]string{"web": "Patchgate"}, func(_ context.Context, account, region string) (PutMetricData, error) {
		return cloudwatch.NewFromConfig(awssim.Config(ep, account, region)), nil
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := sim.Metrics()
	if len(got) != 150*8 {
		t.Fatalf("%d datums, want %d", len(got), 150*8)
	}
	if n := sim.Calls()["cloudwatch:PutMetricData"]; n != 2 {
		t.Fatalf("%d PutMetricData calls, want 2 (1,000 per call)", n)
	}
	m := got[0]
	if m.Namespace != "Patchgate" || m.Account != "444455556666" || m.Region != "eu-west-1" || m.Dimensions["Policy"] != "web" ||
		m.Dimensions["Phase"] != "p0" || m.Dimensions["AccountId"] != "444455556666" || m.Dimensions["Region"] != "eu-west-1" || !m.Timestamp.Equal(end) {
		t.Fatalf("datum %+v", m)
	}
	byName := map[string]float64{}
	for _, d := range got[:8] {
		byName[d.Name] = d.Value
	}
	want := map[string]float64{"InstancesTargeted": 10, "InstancesSucceeded": 9, "InstancesFailed": 1, "InstancesInconclusive": 0,
		"CompliancePercent": 90, "OpenFindingsCritical": 1, "OpenFindingsHigh": 0, "DurationSeconds": 3600}
	for k, v := range want {
		if byName[k] != v {
			t.Errorf("%s = %v, want %v", k, byName[k], v)
		}
	}
}
