//go:build integration

package health_test

// CloudWatch alarms against moto. The pinned SDK's CloudWatch client
// speaks Smithy RPC v2 CBOR, which moto does not serve (see
// internal/metrics' integration test): the gate must then fail loudly,
// naming cloudwatch:DescribeAlarms, never read "no alarm" as healthy.

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/patchgate/patchgate/internal/health"
	"github.com/patchgate/patchgate/internal/motoenv"
	"github.com/patchgate/patchgate/internal/policy"
)

func TestMotoDescribeAlarms(t *testing.T) {
	cfg, _ := motoenv.FreshAccount(t)
	r := &health.Reader{CW: cloudwatch.NewFromConfig(cfg)}
	g := policy.HealthGate{Names: []string{"web-5xx"}, Prefixes: []string{"web-"}}
	rd, err := r.Read(context.Background(), g)
	if err != nil {
		t.Logf("moto: %v", err)
		if !strings.Contains(err.Error(), "cloudwatch:DescribeAlarms") {
			t.Fatalf("the error must name the call: %v", err)
		}
		return
	}
	// moto answered: no such alarm exists in a fresh account, so the gate
	// refuses to start.
	if health.Start(g, "staging", rd) == nil {
		t.Fatal("missing alarms must refuse the phase")
	}
}
