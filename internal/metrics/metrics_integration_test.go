//go:build integration

package metrics_test

// CloudWatch metrics against moto. The pinned aws-sdk-go-v2 CloudWatch
// client speaks Smithy RPC v2 CBOR (POST /service/GraniteServiceVersion20100801/operation/<Op>,
// Content-Type application/cbor); moto serves CloudWatch over the query and
// JSON protocols only and answers that path with HTTP 404. So today this
// test asserts that Publish reports the failure for the target, naming the
// operation, promptly and without a silent drop. Should moto learn RPC v2
// CBOR, the published datums are read back with GetMetricData instead.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/metrics"
	"github.com/patchgate/patchgate/internal/motoenv"
	"github.com/patchgate/patchgate/internal/result"
)

func TestMotoPublishAndGetMetricData(t *testing.T) {
	ep := motoenv.Endpoint(t)
	ctx := context.Background()
	base, err := awsapi.LoadConfig(ctx, awsapi.Options{Region: motoenv.Region, Endpoint: ep, RetryMaxBackoff: 50 * time.Millisecond, Extra: motoenv.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	f := &awsapi.Factory{Base: base, SessionName: "patchgate-it"}
	// As `patchgate run` publishes: a client per account and region from the factory.
	publisher := func(ctx context.Context, account, region string) (metrics.PutMetricData, error) {
		cfg, _, err := f.Config(ctx, account, "", region)
		if err != nil {
			return nil, err
		}
		return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.RetryMaxAttempts = 3 }), nil
	}

	end := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	namespace := motoenv.Unique("Patchgate/IT-")
	run := &result.Run{EndedAt: end, Policies: []result.Policy{{Name: "web", Targets: []result.Target{{
		AccountID: motoenv.Account, Region: motoenv.Region,
		Phases: []result.Phase{{Name: "staging", Status: result.StatusPassed, StartedAt: end.Add(-10 * time.Minute), EndedAt: end,
			Counts: result.Counts{Targeted: 4, Succeeded: 3, Failed: 1}}},
	}}}}}

	start := time.Now()
	errs := metrics.Publish(ctx, run, map[string]string{"web": namespace}, publisher)
	took := time.Since(start)

	cw := cloudwatch.NewFromConfig(motoenv.Config(t))
	q := func(name string) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(strings.ToLower(name[len("Instances"):])), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String(namespace), MetricName: aws.String(name), Dimensions: []cwtypes.Dimension{
				{Name: aws.String("Policy"), Value: aws.String("web")}, {Name: aws.String("Phase"), Value: aws.String("staging")},
				{Name: aws.String("AccountId"), Value: aws.String(motoenv.Account)}, {Name: aws.String("Region"), Value: aws.String(motoenv.Region)},
			}},
			Period: aws.Int32(60), Stat: aws.String("Sum")}}
	}
	out, getErr := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(end.Add(-time.Hour)), EndTime: aws.Time(end.Add(time.Hour)),
		MetricDataQueries: []cwtypes.MetricDataQuery{q("InstancesTargeted"), q("InstancesSucceeded"), q("InstancesFailed")}})

	if len(errs) == 0 {
		// moto speaks RPC v2 CBOR: the datums must be there.
		if getErr != nil {
			t.Fatalf("PutMetricData went through but GetMetricData failed: %v", getErr)
		}
		got := map[string]float64{}
		for _, r := range out.MetricDataResults {
			if len(r.Values) > 0 {
				got[aws.ToString(r.Id)] = r.Values[0]
			}
		}
		if got["targeted"] != 4 || got["succeeded"] != 3 || got["failed"] != 1 {
			t.Fatalf("GetMetricData read back %v, want targeted 4, succeeded 3, failed 1", got)
		}
		return
	}

	// moto does not speak RPC v2 CBOR: the failure must be reported, per
	// target, naming the call, and must not be retried into a long stall.
	t.Logf("moto gap: %v", errs[0])
	if len(errs) != 1 {
		t.Fatalf("want one error for the one target, got %v", errs)
	}
	msg := errs[0].Error()
	for _, want := range []string{"publishing metrics for web in " + motoenv.Account + "/" + motoenv.Region, "cloudwatch:PutMetricData", "StatusCode: 404"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("the error must say %q: %s", want, msg)
		}
	}
	if took > 10*time.Second {
		t.Fatalf("Publish took %s to report a 404", took)
	}
	if getErr == nil || !strings.Contains(getErr.Error(), "GetMetricData") || !strings.Contains(getErr.Error(), "404") {
		t.Fatalf("GetMetricData over RPC v2 CBOR: want moto's 404, got %v", getErr)
	}
}
