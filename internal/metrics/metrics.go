// Package metrics publishes a run's outcome to CloudWatch, for policies that
// set reporting.cloudwatchNamespace: one set of metrics per policy, phase,
// account and region, so dashboards and alarms can follow patching.
package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/patchgate/patchgate/internal/result"
)

// PutMetricData is the CloudWatch call this package makes.
type PutMetricData interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// MaxPerCall is PutMetricData's limit on MetricData entries per request.
const MaxPerCall = 1000

// Datums returns the metric data for one policy's target, by phase.
func Datums(policy string, t result.Target, fallback time.Time) []cwtypes.MetricDatum {
	var out []cwtypes.MetricDatum
	for _, ph := range t.Phases {
		if ph.Status == result.StatusHalted && ph.Counts.Targeted == 0 {
			continue // never started: nothing measured
		}
		ts := ph.EndedAt
		if ts.IsZero() {
			ts = fallback
		}
		dims := []cwtypes.Dimension{
			{Name: aws.String("Policy"), Value: aws.String(policy)},
			{Name: aws.String("Phase"), Value: aws.String(ph.Name)},
			{Name: aws.String("AccountId"), Value: aws.String(t.AccountID)},
			{Name: aws.String("Region"), Value: aws.String(t.Region)},
		}
		add := func(name string, v float64, unit cwtypes.StandardUnit) {
			out = append(out, cwtypes.MetricDatum{MetricName: aws.String(name), Dimensions: dims, Value: aws.Float64(v), Unit: unit, Timestamp: aws.Time(ts)})
		}
		c := ph.Counts
		add("InstancesTargeted", float64(c.Targeted), cwtypes.StandardUnitCount)
		add("InstancesSucceeded", float64(c.Succeeded), cwtypes.StandardUnitCount)
		add("InstancesFailed", float64(c.Failed+c.TimedOut+c.Offline), cwtypes.StandardUnitCount)
		add("InstancesInconclusive", float64(c.Inconclusive), cwtypes.StandardUnitCount)
		if v := ph.Verification; v != nil {
			if v.Compliance != nil {
				add("CompliancePercent", v.Compliance.Percent, cwtypes.StandardUnitPercent)
			}
			if v.Inspector != nil {
				// A severity below what the gate listed was not counted: no datum, not 0.
				if v.Inspector.Counted("CRITICAL") {
					add("OpenFindingsCritical", float64(v.Inspector.RemainingBySeverity["CRITICAL"]), cwtypes.StandardUnitCount)
				}
				if v.Inspector.Counted("HIGH") {
					add("OpenFindingsHigh", float64(v.Inspector.RemainingBySeverity["HIGH"]), cwtypes.StandardUnitCount)
				}
			}
		}
		if !ph.StartedAt.IsZero() && !ph.EndedAt.IsZero() {
			add("DurationSeconds", ph.EndedAt.Sub(ph.StartedAt).Seconds(), cwtypes.StandardUnitSeconds)
		}
	}
	return out
}

// Publisher returns the CloudWatch client for an account and region.
type Publisher func(ctx context.Context, accountID, region string) (PutMetricData, error)

// Publish sends the metrics of every policy that has a namespace (policy
// name -> namespace), batched within PutMetricData's limit, to the account
// and region each target ran in. It returns every error, not the first.
func Publish(ctx context.Context, run *result.Run, namespaces map[string]string, client Publisher) []error {
	var errs []error
	for _, p := range run.Policies {
		ns := namespaces[p.Name]
		if ns == "" {
			continue
		}
		for _, t := range p.Targets {
			data := Datums(p.Name, t, run.EndedAt)
			if len(data) == 0 {
				continue
			}
			cw, err := client(ctx, t.AccountID, t.Region)
			if err != nil {
				errs = append(errs, fmt.Errorf("metrics for %s in %s/%s: %w", p.Name, t.AccountID, t.Region, err))
				continue
			}
			for start := 0; start < len(data); start += MaxPerCall {
				end := min(start+MaxPerCall, len(data))
				if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: data[start:end]}); err != nil {
					errs = append(errs, fmt.Errorf("publishing metrics for %s in %s/%s with cloudwatch:PutMetricData: %w", p.Name, t.AccountID, t.Region, err))
					break
				}
			}
		}
	}
	return errs
}
