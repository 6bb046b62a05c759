//go:build integration

package awsapi_test

// Wire compatibility of patchgate's credential handling with moto's STS:
// GitHub OIDC -> AssumeRoleWithWebIdentity, role chaining with AssumeRole,
// and GetCallerIdentity, all through awsapi's real loaders.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/motoenv"
)

// tokenEndpoint stands in for GitHub's ACTIONS_ID_TOKEN_REQUEST_URL.
type tokenEndpoint struct {
	mu        sync.Mutex
	audiences []string
	issued    []string
}

func (e *tokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer request-token" {
		http.Error(w, "bad bearer", http.StatusUnauthorized)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tok := fmt.Sprintf("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUvZmxlZXQifQ.sig-%d", len(e.issued)+1)
	e.audiences = append(e.audiences, r.URL.Query().Get("audience"))
	e.issued = append(e.issued, tok)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"count":1,"value":%q}`, tok)
}

type masks struct {
	mu sync.Mutex
	m  map[string]bool
}

func (k *masks) AddMask(s string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]bool{}
	}
	k.m[s] = true
}

func (k *masks) has(s string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[s]
}

// noSharedFiles keeps the developer's ~/.aws out of the test.
var noSharedFiles = []func(*config.LoadOptions) error{config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{})}

// oidcSetup starts the token endpoint and a recorder in front of moto, and sets the
// two variables GitHub Actions gives a job with `id-token: write`.
func oidcSetup(t *testing.T) (*tokenEndpoint, *motoenv.Recorder) {
	t.Helper()
	tokens := &tokenEndpoint{}
	ts := httptest.NewServer(tokens)
	t.Cleanup(ts.Close)
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", ts.URL+"/_apis/token?api-version=2.0")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token")
	return tokens, motoenv.Record(t)
}

const (
	oidcAccount = "111122223333"
	oidcRole    = "arn:aws:iam::111122223333:role/patchgate-oidc"
)

func loadOIDC(t *testing.T, endpoint string, m awsapi.Masker) aws.Config {
	t.Helper()
	cfg, err := awsapi.LoadConfig(context.Background(), awsapi.Options{
		Region: motoenv.Region, RoleToAssume: oidcRole, Endpoint: endpoint, SessionName: "patchgate run/42",
		Getenv: os.Getenv, Masker: m, RetryMaxBackoff: 100 * time.Millisecond, Extra: noSharedFiles,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestMotoOIDCAssumeRoleWithWebIdentity(t *testing.T) {
	tokens, rec := oidcSetup(t)
	m := &masks{}
	cfg := loadOIDC(t, rec.URL, m)
	ctx := context.Background()

	id, err := awsapi.CallerIdentity(ctx, cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	if id.Account != oidcAccount || id.ARN != "arn:aws:sts::111122223333:assumed-role/patchgate-oidc/patchgate-run-42" {
		t.Fatalf("moto says the web identity session is %+v", id)
	}
	if len(tokens.issued) != 1 || tokens.audiences[0] != awsapi.DefaultAudience {
		t.Fatalf("want one OIDC token for audience %s, got %d (audiences %v)", awsapi.DefaultAudience, len(tokens.issued), tokens.audiences)
	}
	web := rec.Requests("AssumeRoleWithWebIdentity")
	if len(web) != 1 {
		t.Fatalf("want one AssumeRoleWithWebIdentity, got %d", len(web))
	}
	f := web[0].Form
	if f.Get("RoleArn") != oidcRole || f.Get("RoleSessionName") != "patchgate-run-42" || f.Get("WebIdentityToken") != tokens.issued[0] || f.Get("Version") != "2011-06-15" {
		t.Fatalf("AssumeRoleWithWebIdentity sent %v", f)
	}
	if web[0].AccessKey != "" {
		t.Fatalf("AssumeRoleWithWebIdentity must go unsigned, was signed with %s", web[0].AccessKey)
	}
	gci := rec.Requests("GetCallerIdentity")
	if len(gci) != 1 || gci[0].AccessKey == "" {
		t.Fatalf("GetCallerIdentity must be signed with the web identity credentials: %+v", gci)
	}
	for _, secret := range []string{tokens.issued[0], gci[0].AccessKey, oidcAccount} {
		if !m.has(secret) {
			t.Errorf("%q was not masked", secret)
		}
	}

	// The identity is cached: a second check costs GetCallerIdentity only.
	if _, err := awsapi.CheckAllowedAccount(ctx, cfg, []string{oidcAccount}, m); err != nil {
		t.Fatal(err)
	}
	if _, err := awsapi.CheckAllowedAccount(ctx, cfg, []string{"999999999999"}, m); err == nil || !strings.Contains(err.Error(), "not in allowed-account-ids") {
		t.Fatalf("want the allowed-account refusal, got %v", err)
	}
	if n := len(rec.Requests("AssumeRoleWithWebIdentity")); n != 1 {
		t.Fatalf("the web identity credentials must be cached; %d AssumeRoleWithWebIdentity calls", n)
	}
}

func TestMotoRoleChainingFromOIDC(t *testing.T) {
	_, rec := oidcSetup(t)
	base := loadOIDC(t, rec.URL, nil)
	ctx := context.Background()
	f := &awsapi.Factory{Base: base, SessionName: "patchgate-42"}

	const target, targetRole = "444455556666", "arn:aws:iam::444455556666:role/patchgate-target"
	for _, region := range []string{"eu-west-1", "us-east-1"} {
		cfg, acct, err := f.Config(ctx, target, targetRole, region)
		if err != nil {
			t.Fatalf("%s: %v", region, err)
		}
		if acct != target || cfg.Region != region {
			t.Fatalf("%s: account %s region %s", region, acct, cfg.Region)
		}
	}
	chained, _, err := f.Config(ctx, target, targetRole, motoenv.Region)
	if err != nil {
		t.Fatal(err)
	}
	id, err := awsapi.CallerIdentity(ctx, chained, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id.ARN != "arn:aws:sts::444455556666:assumed-role/patchgate-target/patchgate-42" {
		t.Fatalf("chained identity %+v", id)
	}
	ar := rec.Requests("AssumeRole")
	if len(ar) != 1 {
		t.Fatalf("the role must be assumed once for every region; %d AssumeRole calls", len(ar))
	}
	if ar[0].Form.Get("RoleArn") != targetRole || ar[0].Form.Get("RoleSessionName") != "patchgate-42" {
		t.Fatalf("AssumeRole sent %v", ar[0].Form)
	}

	// The base credentials' own account, and the policy mistakes Factory refuses.
	if _, acct, err := f.Config(ctx, "", "", "eu-west-1"); err != nil || acct != oidcAccount {
		t.Fatalf("own account: %q %v", acct, err)
	}
	// Role chaining: AssumeRole is signed with the web identity credentials
	// (those of the base account's GetCallerIdentity), not with nothing.
	gci := rec.Requests("GetCallerIdentity")
	if webKey := gci[len(gci)-1].AccessKey; webKey == "" || ar[0].AccessKey != webKey || gci[0].AccessKey == webKey {
		t.Fatalf("AssumeRole signed by %q; web identity key %q; chained key %q", ar[0].AccessKey, webKey, gci[0].AccessKey)
	}
	if _, _, err := f.Config(ctx, "555566667777", "", motoenv.Region); err == nil || !strings.Contains(err.Error(), "add roleArn") {
		t.Fatalf("want the missing-roleArn refusal, got %v", err)
	}
	if _, _, err := f.Config(ctx, "555566667777", targetRole, motoenv.Region); err == nil || !strings.Contains(err.Error(), "belongs to account 444455556666") {
		t.Fatalf("want the wrong-account refusal, got %v", err)
	}

	// The chained credentials act in the target account: a parameter written
	// with them is not in the base account.
	name := motoenv.Unique("/patchgate/it/chain-")
	if _, err := ssm.NewFromConfig(chained).PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString}); err != nil {
		t.Fatal(err)
	}
	if _, err := ssm.NewFromConfig(chained).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)}); err != nil {
		t.Fatalf("chained account cannot read its own parameter: %v", err)
	}
	own, _, _ := f.Config(ctx, "", "", motoenv.Region)
	var nf *ssmtypes.ParameterNotFound
	if _, err := ssm.NewFromConfig(own).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)}); !errors.As(err, &nf) {
		t.Fatalf("the base account must not see the target account's parameter, got %v", err)
	}
}

func TestMotoStaticCredentialsAndAssumeRole(t *testing.T) {
	ep := motoenv.Endpoint(t)
	ctx := context.Background()
	base, err := awsapi.LoadConfig(ctx, awsapi.Options{Region: motoenv.Region, Endpoint: ep, RetryMaxBackoff: 100 * time.Millisecond,
		Extra: motoenv.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	id, err := awsapi.CallerIdentity(ctx, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id.Account != motoenv.Account {
		t.Fatalf("static credentials belong to moto's default account %s, got %+v", motoenv.Account, id)
	}
	chained := awsapi.AssumeRole(base, "arn:aws:iam::777788889999:role/patchgate-target", "patchgate run/7", nil)
	id, err = awsapi.CallerIdentity(ctx, chained, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id.Account != "777788889999" || !strings.HasSuffix(id.ARN, ":assumed-role/patchgate-target/patchgate-run-7") {
		t.Fatalf("chained identity %+v", id)
	}
}
