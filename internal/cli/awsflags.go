package cli

import (
	"context"
	"flag"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/patchgate/patchgate/internal/awsapi"
)

// awsFlags are the credential flags shared by the commands that call AWS.
type awsFlags struct {
	region       string
	roleToAssume string
	audience     string
	endpoint     string
	allowed      string
}

func (a *awsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.region, "region", "", "default AWS region for credential calls (policies name their own regions); default AWS_REGION")
	fs.StringVar(&a.roleToAssume, "role-to-assume", "", "IAM role `ARN` assumed through GitHub OIDC (the job needs permissions id-token: write); default: the SDK credential chain")
	fs.StringVar(&a.audience, "audience", awsapi.DefaultAudience, "audience of the GitHub OIDC token")
	fs.StringVar(&a.endpoint, "endpoint-url", "", "send every AWS call to this endpoint (the simulator); default AWS_ENDPOINT_URL or AWS")
	fs.StringVar(&a.allowed, "allowed-account-ids", "", "comma-separated account ids the credentials may belong to; checked before anything is sent")
}

func (a *awsFlags) allowedIDs() []string {
	var out []string
	for _, s := range strings.Split(a.allowed, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// load builds the base AWS configuration.
func (a *awsFlags) load(ctx context.Context, env Env, session string, masker awsapi.Masker) (aws.Config, error) {
	region := a.region
	if region == "" {
		region = env.Getenv("AWS_REGION")
	}
	if region == "" {
		region = env.Getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		region = "us-east-1" // STS is global; policies carry the regions that matter
	}
	return awsapi.LoadConfig(ctx, awsapi.Options{
		Region: region, RoleToAssume: a.roleToAssume, Audience: a.audience, Endpoint: a.endpoint,
		SessionName: session, Getenv: env.Getenv, Masker: masker,
	})
}
