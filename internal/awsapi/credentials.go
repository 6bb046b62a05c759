// Package awsapi builds AWS configurations for patchgate: the base
// credentials (the SDK default chain, or a role assumed through GitHub OIDC),
// per-account role chaining, and the allowed-account check. It is the edge
// where aws-sdk-go-v2 is configured; the packages that make API calls declare
// their own small interfaces and receive clients built from these configs.
package awsapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/sethvargo/go-githubactions"
)

// DefaultAudience is the audience AWS's GitHub OIDC provider expects.
const DefaultAudience = "sts.amazonaws.com"

// Masker hides a secret from the GitHub Actions log (githubactions.Action
// satisfies it). Outside Actions a no-op is used.
type Masker interface {
	AddMask(string)
}

type nopMasker struct{}

func (nopMasker) AddMask(string) {}

// Options says how to build the base configuration.
type Options struct {
	// Region is the default region; empty leaves it to AWS_REGION and the
	// shared config. Calls are made per region anyway.
	Region string
	// RoleToAssume, when set, is assumed with AssumeRoleWithWebIdentity using
	// the GitHub Actions OIDC token. Empty: the SDK default credential chain.
	RoleToAssume string
	// Audience of the OIDC token; default DefaultAudience.
	Audience string
	// SessionName for the assumed roles (sanitised to STS's pattern); default "patchgate".
	SessionName string
	// Duration of the web identity session; 0 lets STS choose (one hour).
	// Long runs do not depend on it: the credentials cache refreshes before expiry.
	Duration time.Duration
	// CredentialRetryAttempts bounds the attempts at assuming RoleToAssume
	// (configure-aws-credentials' retry-max-attempts); 0 keeps the retryer's.
	CredentialRetryAttempts int
	// TokenTimeout bounds each request for the OIDC token; default 10s.
	TokenTimeout time.Duration
	// TokenAttempts is how many times a transient OIDC token failure is tried; default 4.
	TokenAttempts int
	// Endpoint overrides every service endpoint (the simulator); empty keeps
	// the SDK's resolution, which honours AWS_ENDPOINT_URL[_<SERVICE>].
	Endpoint string
	// Getenv reads the environment (ACTIONS_ID_TOKEN_REQUEST_*); default none.
	Getenv func(string) string
	// HTTPClient is used for the OIDC token request; default http.DefaultClient.
	HTTPClient *http.Client
	// Masker hides tokens, keys and account ids in Action logs.
	Masker Masker
	// Logger receives retries and identity information; default slog.Default().
	Logger *slog.Logger
	// RetryMaxBackoff caps the SDK's retry backoff; default 20s. Tests
	// against the simulator shorten it.
	RetryMaxBackoff time.Duration
	// Extra load options (tests pass static credentials or an HTTP client).
	Extra []func(*config.LoadOptions) error
}

func (o *Options) defaults() {
	if o.Audience == "" {
		o.Audience = DefaultAudience
	}
	if o.SessionName == "" {
		o.SessionName = "patchgate"
	}
	o.SessionName = SessionName(o.SessionName)
	if o.TokenTimeout <= 0 {
		o.TokenTimeout = 10 * time.Second
	}
	if o.TokenAttempts <= 0 {
		o.TokenAttempts = 4
	}
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.Masker == nil {
		o.Masker = nopMasker{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// LoadConfig returns the base configuration. With RoleToAssume it needs the
// GitHub Actions OIDC environment (the workflow's `permissions: id-token: write`).
// The credentials sit in an aws.CredentialsCache, so a run longer than the
// session refreshes them by asking GitHub for a fresh token.
func LoadConfig(ctx context.Context, o Options) (aws.Config, error) {
	o.defaults()
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return newRetryer(o.RetryMaxBackoff) }),
		// A shorter dial timeout than the SDK's 30 s, so that an address
		// nothing answers on fails within seconds (see failFast).
		config.WithHTTPClient(awshttp.NewBuildableClient().WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout })),
	}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(o.Endpoint))
	}
	opts = append(opts, o.Extra...)
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if o.RoleToAssume == "" {
		if cfg.Credentials != nil {
			cfg.Credentials = aws.NewCredentialsCache(maskingProvider{cfg.Credentials, o.Masker})
		}
		return cfg, nil
	}
	if !arnPattern.MatchString(o.RoleToAssume) {
		return aws.Config{}, fmt.Errorf("role-to-assume %q is not an IAM role ARN (arn:aws:iam::123456789012:role/name)", o.RoleToAssume)
	}
	if o.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL") == "" || o.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN") == "" {
		return aws.Config{}, errors.New("role-to-assume needs a GitHub OIDC token, but ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are not set: " +
			"run inside GitHub Actions and give the job `permissions: id-token: write`")
	}
	tok := &oidcToken{
		action:   newAction(o),
		audience: o.Audience,
		timeout:  o.TokenTimeout,
		attempts: o.TokenAttempts,
		masker:   o.Masker,
		log:      o.Logger,
	}
	// The web identity call itself is unsigned, so it needs no base credentials.
	stsClient := sts.NewFromConfig(cfg, func(so *sts.Options) {
		if o.CredentialRetryAttempts > 0 {
			so.RetryMaxAttempts = o.CredentialRetryAttempts
		}
	})
	provider := stscreds.NewWebIdentityRoleProvider(stsClient, o.RoleToAssume, tok, func(w *stscreds.WebIdentityRoleOptions) {
		w.RoleSessionName = o.SessionName
		w.Duration = o.Duration
	})
	cfg.Credentials = aws.NewCredentialsCache(maskingProvider{provider, o.Masker})
	return cfg, nil
}

// AssumeRole returns a copy of base whose credentials come from assuming
// roleARN with base's credentials (role chaining for per-account roles).
// The credentials are cached and refreshed before they expire.
func AssumeRole(base aws.Config, roleARN, sessionName string, masker Masker) aws.Config {
	if masker == nil {
		masker = nopMasker{}
	}
	cfg := base.Copy()
	p := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = SessionName(sessionName)
		o.Duration = ChainedSessionMax
	})
	cfg.Credentials = aws.NewCredentialsCache(maskingProvider{p, masker})
	return cfg
}

// ChainedSessionMax is how long the per-account role sessions are asked
// for: the most STS grants a role assumed with a role session's
// credentials (the GitHub OIDC role's), and within every role's
// MaxSessionDuration (at least an hour). The SDK's default, 15 minutes,
// would have a day-long run assume each account's role four times an hour.
const ChainedSessionMax = time.Hour

// Identity is who the credentials are.
type Identity struct {
	Account string
	ARN     string
	UserID  string
}

// CallerIdentity asks STS who the credentials belong to and masks the account id.
func CallerIdentity(ctx context.Context, cfg aws.Config, masker Masker) (Identity, error) {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("checking AWS credentials with sts:GetCallerIdentity: %w", DescribeUnreachable("sts:GetCallerIdentity", err))
	}
	id := Identity{Account: aws.ToString(out.Account), ARN: aws.ToString(out.Arn), UserID: aws.ToString(out.UserId)}
	if masker != nil && id.Account != "" {
		masker.AddMask(id.Account)
	}
	return id, nil
}

// CheckAllowedAccount fails unless the credentials' account is in allowed
// (an empty list allows any). It runs before anything is sent, so a
// workflow pointed at the wrong account stops with nothing done.
func CheckAllowedAccount(ctx context.Context, cfg aws.Config, allowed []string, masker Masker) (Identity, error) {
	id, err := CallerIdentity(ctx, cfg, masker)
	if err != nil {
		return Identity{}, err
	}
	if len(allowed) > 0 && !slices.Contains(allowed, id.Account) {
		return id, fmt.Errorf("the AWS credentials belong to account %s, which is not in allowed-account-ids (%s): "+
			"check role-to-assume or add the account", id.Account, strings.Join(allowed, ", "))
	}
	return id, nil
}

var (
	arnPattern         = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
	sessionNameInvalid = regexp.MustCompile(`[^\w+=,.@-]`)
)

// SessionName sanitises s to STS's RoleSessionName pattern [\w+=,.@-]{2,64}.
func SessionName(s string) string {
	s = sessionNameInvalid.ReplaceAllString(s, "-")
	if len(s) > 64 {
		s = s[:64]
	}
	if len(s) < 2 {
		s = "patchgate"
	}
	return s
}

// maskingProvider masks every credential it hands out, so that a debug log
// or an SDK error echoing a key never shows it in the Action log.
type maskingProvider struct {
	inner  aws.CredentialsProvider
	masker Masker
}

func (m maskingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.inner.Retrieve(ctx)
	if err != nil {
		return c, err
	}
	for _, s := range []string{c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.AccountID} {
		if s != "" {
			m.masker.AddMask(s)
		}
	}
	return c, nil
}

// oidcToken fetches GitHub's OIDC token for stscreds. The SDK's interface
// carries no context, so each attempt gets its own timeout.
type oidcToken struct {
	action   *githubactions.Action
	audience string
	timeout  time.Duration
	attempts int
	masker   Masker
	log      *slog.Logger
	sleep    func(time.Duration) // tests shorten it
}

func (t *oidcToken) GetIdentityToken() ([]byte, error) {
	sleep := t.sleep
	if sleep == nil {
		sleep = time.Sleep
	}
	var err error
	for attempt := 1; attempt <= t.attempts; attempt++ {
		var tok string
		tok, err = t.fetch()
		if err == nil {
			t.masker.AddMask(tok)
			return []byte(tok), nil
		}
		if !transientTokenError(err) || attempt == t.attempts {
			break
		}
		// Full jitter on an exponential base: 0.5s, 1s, 2s ... capped at 8s.
		backoff := min(500*time.Millisecond<<(attempt-1), 8*time.Second)
		d := time.Duration(rand.Int64N(int64(backoff)) + 1)
		t.log.Warn("GitHub OIDC token request failed; retrying", "attempt", attempt, "in", d.Round(time.Millisecond), "err", err)
		sleep(d)
	}
	var rf *githubactions.RequestFailedError
	if errors.As(err, &rf) && (rf.StatusCode == http.StatusUnauthorized || rf.StatusCode == http.StatusForbidden) {
		return nil, fmt.Errorf("GitHub refused the OIDC token request (HTTP %d): give the job `permissions: id-token: write`: %w", rf.StatusCode, err)
	}
	return nil, fmt.Errorf("getting the GitHub OIDC token (audience %q): %w", t.audience, err)
}

func (t *oidcToken) fetch() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	tok, err := t.action.GetIDToken(ctx, t.audience)
	if err == nil && tok == "" {
		err = errors.New("the token endpoint answered without a token")
	}
	return tok, err
}

// transientTokenError reports whether another attempt may succeed: network
// errors, timeouts, throttling and server errors. 4xx answers are final.
func transientTokenError(err error) bool {
	var rf *githubactions.RequestFailedError
	if errors.As(err, &rf) {
		return rf.StatusCode == http.StatusTooManyRequests || rf.StatusCode >= 500
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// A connection refused/reset surfaces as *url.Error wrapping *net.OpError (a net.Error).
	return false
}

func newAction(o Options) *githubactions.Action {
	return githubactions.New(githubactions.WithGetenv(o.Getenv), githubactions.WithHTTPClient(o.HTTPClient))
}

// newRetryer is the SDK's standard retryer, with more attempts and without
// its client-side retry quota: a large fleet legitimately meets throttling
// for minutes, and the quota would turn that into hard failures mid-run;
// once throttled, a client spaces its attempts (paced).
// Calls that must not be retried (SendCommand) turn retries off per call.
// A response cut short (the connection closed cleanly mid-body) is
// retried too: the SDK leaves it alone, and a listing that fails hours
// into a run would otherwise end its phase in error; so is a body that does
// not parse (a 2xx cut short): every call patchgate lets the SDK retry is
// read-only or idempotent. An endpoint that cannot be reached at all fails
// fast instead (failFast).
func newRetryer(maxBackoff time.Duration) aws.Retryer {
	if maxBackoff <= 0 {
		maxBackoff = 20 * time.Second
	}
	return &paced{RetryerV2: failFast{retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 10
		o.MaxBackoff = maxBackoff
		o.RateLimiter = ratelimit.None
		o.Retryables = append(slices.Clone(o.Retryables), retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if CutShort(err) {
				return aws.TrueTernary
			}
			return aws.UnknownTernary
		}))
	})}}
}
