package rollout

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// The typical invocation is the median of the successful ones' plugin
// times (the upper middle of an even count); failed invocations and
// plugins without a start are left out.
func TestMeasureTypicalIsTheMedian(t *testing.T) {
	inv := func(status ssmtypes.CommandInvocationStatus, took time.Duration, started bool) ssmtypes.CommandInvocation {
		pl := ssmtypes.CommandPlugin{ResponseFinishDateTime: aws.Time(mutStart.Add(took))}
		if started {
			pl.ResponseStartDateTime = aws.Time(mutStart)
		}
		return ssmtypes.CommandInvocation{Status: status, CommandPlugins: []ssmtypes.CommandPlugin{pl}}
	}
	ok := ssmtypes.CommandInvocationStatusSuccess
	f, _ := newScripted(nil)
	f.invs = func(*ssm.ListCommandInvocationsInput) (*ssm.ListCommandInvocationsOutput, error) {
		return &ssm.ListCommandInvocationsOutput{CommandInvocations: []ssmtypes.CommandInvocation{
			inv(ok, 4*time.Minute, true), inv(ok, time.Minute, true), inv(ssmtypes.CommandInvocationStatusFailed, time.Hour, true),
			inv(ok, 3*time.Minute, true), inv(ok, 2*time.Minute, true), inv(ok, 9*time.Hour, false)}}, nil
	}
	d, err := measureTypical(context.Background(), f, "c-1")
	if err != nil || d != 3*time.Minute {
		t.Fatalf("typical %s (%v), want 3m0s, the upper middle of 1, 2, 3 and 4 minutes", d, err)
	}
}
