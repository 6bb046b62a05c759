package awssim

import (
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// Config returns an SDK configuration whose calls reach the simulator at
// endpoint as account in region, with static credentials the simulator maps
// to that account.
func Config(endpoint, account, region string) aws.Config {
	return aws.Config{
		Region:           region,
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(AccessKeyFor(account), "simsecret", ""),
		RetryMaxAttempts: 5,
	}
}

// Start serves a new simulator on a loopback httptest server for the
// duration of the test.
func Start(tb testing.TB, s *Sim) string {
	tb.Helper()
	srv := httptest.NewServer(s)
	tb.Cleanup(srv.Close)
	return srv.URL
}

func staticFrom(c *ststypes.Credentials) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
}
