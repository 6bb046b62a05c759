// Package motoenv connects patchgate's wire-compatibility tests to moto, a
// third-party AWS emulator, so that patchgate's request shapes are checked
// against an implementation that is not our own simulator (internal/awssim).
//
// The tests that use it carry the `integration` build tag and live in
// *_integration_test.go files; `make integration` (scripts/moto.sh) starts
// moto and exports PATCHGATE_MOTO_ENDPOINT. Without that variable the tests
// skip, unless PATCHGATE_REQUIRE_MOTO=1 or CI=true, where a missing server
// is an error: CI must never pass by skipping.
package motoenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

const (
	// EnvEndpoint names the moto server, e.g. http://127.0.0.1:5000.
	EnvEndpoint = "PATCHGATE_MOTO_ENDPOINT"
	// EnvRequire, set to 1, turns a missing endpoint into a failure.
	EnvRequire = "PATCHGATE_REQUIRE_MOTO"
	// Region is where the tests work.
	Region = "us-east-1"
	// Account is moto's default account: the one static credentials belong to.
	Account = "123456789012"
	// AccessKey and SecretKey are static test credentials (moto accepts any).
	AccessKey = "AKIAMOTOTESTING00000"
	SecretKey = "moto-secret"

	skipMessage = "set PATCHGATE_MOTO_ENDPOINT or run `make integration`"
)

// Lookup decides from the environment what a test does: run against
// endpoint, or (endpoint "") skip, or fail when required is true.
func Lookup(getenv func(string) string) (endpoint string, required bool) {
	endpoint = strings.TrimRight(strings.TrimSpace(getenv(EnvEndpoint)), "/")
	required = getenv(EnvRequire) == "1" || strings.EqualFold(getenv("CI"), "true")
	return endpoint, required
}

// Endpoint returns the moto endpoint, or skips (fails, when required) the
// test. It also fails fast when the endpoint does not accept connections,
// rather than letting every SDK call retry into a timeout.
func Endpoint(t testing.TB) string {
	t.Helper()
	ep, required := Lookup(os.Getenv)
	if ep == "" {
		if required {
			t.Fatalf("moto is required here (%s=1 or CI=true) but %s is not set: run `make integration`", EnvRequire, EnvEndpoint)
		}
		t.Skip(skipMessage)
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		t.Fatalf("%s=%q is not a URL like http://127.0.0.1:5000", EnvEndpoint, ep)
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		t.Fatalf("moto at %s does not answer (%v): start it with `make integration`", ep, err)
	}
	_ = c.Close()
	return ep
}

// Config returns an SDK configuration aimed at moto: static credentials,
// region us-east-1, BaseEndpoint set to the server (set on the aws.Config,
// not through a load option, so that a test can point a copy elsewhere, at a
// Recorder), and a retryer that gives up quickly.
func Config(t testing.TB) aws.Config {
	t.Helper()
	ep := Endpoint(t)
	opts := append(Credentials(), config.WithRegion(Region), config.WithRetryer(func() aws.Retryer {
		// One retry, soon: moto never throttles, and answers an operation
		// it lacks with HTTP 500, which the SDK would otherwise retry for seconds.
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 2; o.MaxBackoff = 50 * time.Millisecond })
	}))
	cfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseEndpoint = aws.String(ep)
	return cfg
}

// Credentials are load options for tests that build their configuration
// through patchgate's own loader (awsapi.LoadConfig's Extra): moto's static
// test credentials, and nothing from the developer's ~/.aws.
func Credentials() []func(*config.LoadOptions) error {
	return []func(*config.LoadOptions) error{
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	}
}

// Unique returns prefix plus a random suffix. Test packages run in
// parallel against one moto server that is never reset, so every test
// names its own resources.
func Unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// FreshAccount returns a configuration whose credentials belong to a new,
// random account: moto keeps every backend per account, and requests signed
// with a role's STS credentials run in that role's account. A test that
// needs an empty SSM, EC2 or Inspector works there, untouched by the test
// packages running alongside it and by earlier runs against the same server.
func FreshAccount(t testing.TB) (aws.Config, string) {
	t.Helper()
	base := Config(t)
	n, err := rand.Int(rand.Reader, big.NewInt(1e11))
	if err != nil {
		t.Fatal(err)
	}
	account := fmt.Sprintf("9%011d", n)
	role := "arn:aws:iam::" + account + ":role/patchgate-it"
	cfg := base.Copy()
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "patchgate-integration"
	}))
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("assuming %s in moto: %v", role, err)
	}
	if got := aws.ToString(out.Account); got != account {
		t.Fatalf("moto put the assumed role's credentials in account %s, not %s", got, account)
	}
	return cfg, account
}

// PostAPI sends body as JSON to one of moto's own endpoints (/moto-api/...)
// and fails the test unless moto answers 2xx.
func PostAPI(t testing.TB, path string, body any) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	ep := Endpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s: %s", path, resp.Status, msg)
	}
}

// Request is one request a Recorder passed on to moto.
type Request struct {
	// Op is the operation: X-Amz-Target's suffix (JSON protocols), the
	// Action form value (query protocol), or else the path (REST).
	Op        string
	Path      string
	Body      []byte
	Form      url.Values // the parsed body of a query-protocol request
	AccessKey string     // the SigV4 signer's access key; "" when unsigned
}

// Recorder is a reverse proxy in front of moto that keeps every request,
// so that a test can assert what patchgate put on the wire where moto does
// not look (moto ignores, for instance, ListCommands' filters and the
// WebIdentityToken).
type Recorder struct {
	URL   string
	mu    sync.Mutex
	reqs  []Request
	proxy *httputil.ReverseProxy
}

var credentialRe = regexp.MustCompile(`Credential=([A-Za-z0-9]+)/`)

// Record starts a Recorder for the test; point an SDK's BaseEndpoint at its URL.
func Record(t testing.TB) *Recorder {
	t.Helper()
	target, err := url.Parse(Endpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	r := &Recorder{proxy: httputil.NewSingleHostReverseProxy(target)}
	s := httptest.NewServer(r)
	t.Cleanup(s.Close)
	r.URL = s.URL
	return r
}

func (r *Recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	rec := Request{Path: req.URL.Path, Body: body}
	if m := credentialRe.FindStringSubmatch(req.Header.Get("Authorization")); m != nil {
		rec.AccessKey = m[1]
	}
	switch target := req.Header.Get("X-Amz-Target"); {
	case target != "":
		rec.Op = target[strings.LastIndexByte(target, '.')+1:]
	case strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		rec.Form, _ = url.ParseQuery(string(body))
		rec.Op = rec.Form.Get("Action")
	default:
		rec.Op = req.URL.Path
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	r.proxy.ServeHTTP(w, req)
}

// Requests returns the recorded requests for op, oldest first.
func (r *Recorder) Requests(op string) []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Request
	for _, q := range r.reqs {
		if q.Op == op {
			out = append(out, q)
		}
	}
	return out
}

// Version is moto's version as `make integration` pinned it (for logs).
func Version() string {
	if v := os.Getenv("PATCHGATE_MOTO_VERSION"); v != "" {
		return v
	}
	return "unknown"
}

// Describe is a one-line summary for test logs.
func Describe() string {
	ep, _ := Lookup(os.Getenv)
	return fmt.Sprintf("moto %s at %s", Version(), ep)
}
