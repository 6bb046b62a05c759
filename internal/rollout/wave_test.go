package rollout

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func TestAllSucceeded(t *testing.T) {
	ok := ssmtypes.Command{Status: ssmtypes.CommandStatusSuccess, StatusDetails: aws.String("Success"), TargetCount: 50, CompletedCount: 50}
	for i, tc := range []struct {
		mod  func(*ssmtypes.Command)
		n    int
		want bool
	}{
		{func(*ssmtypes.Command) {}, 50, true},
		// Success in Status, Incomplete in StatusDetails: some did not succeed.
		{func(c *ssmtypes.Command) { c.StatusDetails = aws.String("Incomplete") }, 50, false},
		{func(c *ssmtypes.Command) { c.ErrorCount = 1 }, 50, false},
		{func(c *ssmtypes.Command) { c.DeliveryTimedOutCount = 1 }, 50, false},
		{func(c *ssmtypes.Command) { c.CompletedCount = 49 }, 50, false},
		// SSM targeted fewer instances than were sent.
		{func(c *ssmtypes.Command) { c.TargetCount, c.CompletedCount = 49, 49 }, 50, false},
		{func(c *ssmtypes.Command) { c.Status = ssmtypes.CommandStatusCancelled }, 50, false},
		{func(c *ssmtypes.Command) {}, 51, false},
	} {
		c := ok
		tc.mod(&c)
		if got := allSucceeded(c, tc.n); got != tc.want {
			t.Errorf("%d: allSucceeded = %v, want %v", i, got, tc.want)
		}
	}
}
