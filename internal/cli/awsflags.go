package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
	"github.com/sethvargo/go-githubactions"

	"github.com/patchgate/patchgate/internal/awsapi"
)

// awsFlags are the credential flags shared by the commands that call AWS.
// Where aws-actions/configure-aws-credentials has the same option, the name
// and default are its own, so a workflow moves over without surprises.
type awsFlags struct {
	region          string
	roleToAssume    string
	audience        string
	endpoint        string
	allowed         string
	sessionName     string
	durationSeconds int
	maskAccountID   bool
	retryMax        int
}

// Defaults shared with configure-aws-credentials.
const (
	defaultRoleDuration = 3600
	defaultRetryMax     = 12
)

func (a *awsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.region, "region", "", "default AWS region for credential calls (policies name their own regions); default AWS_REGION, then AWS_DEFAULT_REGION")
	fs.StringVar(&a.roleToAssume, "role-to-assume", "", "IAM role `ARN` assumed through GitHub OIDC (the job needs permissions id-token: write); default: the SDK credential chain")
	fs.StringVar(&a.audience, "audience", awsapi.DefaultAudience, "audience of the GitHub OIDC token")
	fs.StringVar(&a.endpoint, "endpoint-url", "", "send every AWS call to this endpoint (the simulator); default AWS_ENDPOINT_URL or AWS")
	fs.StringVar(&a.allowed, "allowed-account-ids", "", "comma-separated account ids the credentials may belong to; checked before anything is sent")
	fs.StringVar(&a.sessionName, "role-session-name", "", "role session name in CloudTrail, for role-to-assume and the policies' roles (default patchgate-<run id>)")
	fs.IntVar(&a.durationSeconds, "role-duration-seconds", defaultRoleDuration, "lifetime of the role-to-assume session, 900-43200; a longer run refreshes it")
	fs.BoolVar(&a.maskAccountID, "mask-aws-account-id", false, "hide AWS account ids in the GitHub Actions log")
	fs.IntVar(&a.retryMax, "retry-max-attempts", defaultRetryMax, "attempts at assuming role-to-assume when STS throttles or fails transiently")
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

// session is the role session name: --role-session-name, else def.
func (a *awsFlags) session(def string) string {
	if a.sessionName != "" {
		return awsapi.SessionName(a.sessionName)
	}
	return def
}

var sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// check refuses option values STS would refuse later, naming the option.
func (a *awsFlags) check() error {
	var errs []error
	if a.sessionName != "" && !sessionNamePattern.MatchString(a.sessionName) {
		errs = append(errs, fmt.Errorf("--role-session-name %q: use 2-64 letters, digits and + = , . @ - _", a.sessionName))
	}
	if a.durationSeconds < 900 || a.durationSeconds > 43200 {
		errs = append(errs, fmt.Errorf("--role-duration-seconds %d: STS takes 900 (15 minutes) to 43200 (12 hours), within the role's maximum session duration", a.durationSeconds))
	}
	if a.retryMax < 1 {
		errs = append(errs, fmt.Errorf("--retry-max-attempts %d: use 1 or more", a.retryMax))
	}
	return errors.Join(errs...)
}

// load builds the base AWS configuration.
func (a *awsFlags) load(ctx context.Context, env Env, session string, masker awsapi.Masker) (aws.Config, error) {
	if err := a.check(); err != nil {
		return aws.Config{}, err
	}
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
		SessionName: a.session(session), Duration: time.Duration(a.durationSeconds) * time.Second,
		CredentialRetryAttempts: a.retryMax,
		Getenv:                  env.Getenv, Masker: a.masker(masker),
		// The SDK's own warnings (an IMDS fallback, an undrained body) say
		// nothing a user can act on; they go to the debug log.
		Extra: []func(*config.LoadOptions) error{config.WithLogger(sdkLogger{})},
	})
}

// connect loads the base configuration and asks STS who it is before
// anything else: missing or refused credentials are one line with the
// remedy (not an SDK chain per account-region), the account is the
// aws-account-id step output, and allowed-account-ids is enforced.
func (a *awsFlags) connect(ctx context.Context, env Env, session string, masker awsapi.Masker) (aws.Config, awsapi.Identity, error) {
	cfg, err := a.load(ctx, env, session, masker)
	if err != nil {
		return aws.Config{}, awsapi.Identity{}, err
	}
	if cfg.Credentials == nil {
		return aws.Config{}, awsapi.Identity{}, errNoCredentials
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		slog.Debug("retrieving AWS credentials", "err", err)
		if a.roleToAssume == "" {
			return aws.Config{}, awsapi.Identity{}, errNoCredentials
		}
		return aws.Config{}, awsapi.Identity{}, fmt.Errorf("assuming %s: %w", a.roleToAssume, err)
	}
	id, err := awsapi.CheckAllowedAccount(ctx, cfg, a.allowedIDs(), a.masker(masker))
	if err != nil {
		return aws.Config{}, id, err
	}
	if env.Getenv("GITHUB_OUTPUT") != "" {
		githubactions.New(githubactions.WithGetenv(env.Getenv), githubactions.WithWriter(env.Stdout)).SetOutput("aws-account-id", id.Account)
	}
	return cfg, id, nil
}

var errNoCredentials = errors.New("no AWS credentials found: in GitHub Actions pass --role-to-assume (role-to-assume, with permissions id-token: write); " +
	"elsewhere set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or try the simulator with --endpoint-url (patchgate sim serve)")

// masker drops account ids from masking unless --mask-aws-account-id:
// account ids are not secrets (configure-aws-credentials leaves them
// visible by default too), and a masked id makes every report line "***".
func (a *awsFlags) masker(m awsapi.Masker) awsapi.Masker {
	if m == nil || a.maskAccountID {
		return m
	}
	return accountIDFilter{m}
}

type accountIDFilter struct{ awsapi.Masker }

var accountIDPattern = regexp.MustCompile(`^\d{12}$`)

func (f accountIDFilter) AddMask(s string) {
	if !accountIDPattern.MatchString(s) {
		f.Masker.AddMask(s)
	}
}

// sdkLogger sends the SDK's log lines to slog's debug level.
type sdkLogger struct{}

func (sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	slog.Debug("aws sdk: "+fmt.Sprintf(format, v...), "level", string(c))
}
