package awssim

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/patchgate/patchgate/internal/memnet"
)

// Config returns an SDK configuration whose calls reach the simulator at
// endpoint as account in region, with static credentials the simulator maps
// to that account. An endpoint served by memnet (tests on synctest's fake
// clock) is reached over its in-memory network, any other over TCP.
func Config(endpoint, account, region string) aws.Config {
	cfg := aws.Config{
		Region:           region,
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(AccessKeyFor(account), "simsecret", ""),
		RetryMaxAttempts: 5,
	}
	if c := memnet.ClientFor(endpoint); c != nil {
		cfg.HTTPClient = c
	}
	return cfg
}

func staticFrom(c *ststypes.Credentials) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
}
