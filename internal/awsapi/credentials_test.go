package awsapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// fakeSTS speaks STS's awsQuery protocol for the three calls patchgate makes.
type fakeSTS struct {
	mu        sync.Mutex
	calls     []string // Action names
	tokens    []string // WebIdentityToken values seen
	roles     []string // RoleArn values seen
	durations []string // DurationSeconds of each AssumeRole
	signedBy  []string // access key of each GetCallerIdentity
	n         int
	expiredAt time.Time // Expiration handed out; zero: in an hour
	deny      bool
}

var accessKeyRe = regexp.MustCompile(`Credential=([A-Z0-9]+)/`)

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	action := r.Form.Get("Action")
	f.calls = append(f.calls, action)
	w.Header().Set("Content-Type", "text/xml")
	if f.deny {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error><RequestId>x</RequestId></ErrorResponse>`)
		return
	}
	exp := time.Now().Add(time.Hour)
	if !f.expiredAt.IsZero() {
		exp = f.expiredAt
	}
	if strings.HasPrefix(action, "Assume") {
		f.n++
	}
	key := fmt.Sprintf("ASIAFAKE%04d", f.n)
	creds := fmt.Sprintf(`<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>secret%d</SecretAccessKey><SessionToken>session%d</SessionToken><Expiration>%s</Expiration></Credentials>`,
		key, f.n, f.n, exp.UTC().Format(time.RFC3339))
	switch action {
	case "AssumeRoleWithWebIdentity":
		f.tokens = append(f.tokens, r.Form.Get("WebIdentityToken"))
		f.roles = append(f.roles, r.Form.Get("RoleArn"))
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>%s<AssumedRoleUser><Arn>%s/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`, creds, r.Form.Get("RoleArn"))
	case "AssumeRole":
		f.roles = append(f.roles, r.Form.Get("RoleArn"))
		f.durations = append(f.durations, r.Form.Get("DurationSeconds"))
		fmt.Fprintf(w, `<AssumeRoleResponse><AssumeRoleResult>%s<AssumedRoleUser><Arn>%s/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>`, creds, r.Form.Get("RoleArn"))
	case "GetCallerIdentity":
		m := accessKeyRe.FindStringSubmatch(r.Header.Get("Authorization"))
		key := ""
		if m != nil {
			key = m[1]
		}
		f.signedBy = append(f.signedBy, key)
		account := "111122223333"
		if strings.HasPrefix(key, "ASIAFAKE") && len(f.roles) > 0 {
			account = strings.Split(f.roles[len(f.roles)-1], ":")[4]
		}
		fmt.Fprintf(w, `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:sts::%s:assumed-role/r/s</Arn><UserId>AROA:s</UserId><Account>%s</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, account, account)
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>%s</Message></Error></ErrorResponse>`, action)
	}
}

// fakeTokenEndpoint is GitHub's ACTIONS_ID_TOKEN_REQUEST_URL.
type fakeTokenEndpoint struct {
	mu        sync.Mutex
	requests  int
	audiences []string
	failFirst int // answer 503 this many times
	status    int // non-zero: always answer this
}

func (f *fakeTokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.audiences = append(f.audiences, r.URL.Query().Get("audience"))
	if r.Header.Get("Authorization") != "Bearer request-token" {
		http.Error(w, "bad bearer", http.StatusUnauthorized)
		return
	}
	if f.status != 0 {
		http.Error(w, "nope", f.status)
		return
	}
	if f.failFirst > 0 {
		f.failFirst--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, `{"value":"jwt-%d"}`, f.requests)
}

type recMasker struct {
	mu sync.Mutex
	m  []string
}

func (r *recMasker) AddMask(s string) { r.mu.Lock(); r.m = append(r.m, s); r.mu.Unlock() }
func (r *recMasker) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.m {
		if v == s {
			return true
		}
	}
	return false
}

func oidcEnv(tokenURL string) func(string) string {
	return func(k string) string {
		switch k {
		case "ACTIONS_ID_TOKEN_REQUEST_URL":
			return tokenURL + "/token?api-version=2.0"
		case "ACTIONS_ID_TOKEN_REQUEST_TOKEN":
			return "request-token"
		}
		return ""
	}
}

func newServers(t *testing.T) (*fakeSTS, *fakeTokenEndpoint, *httptest.Server, *httptest.Server) {
	t.Helper()
	s, g := &fakeSTS{}, &fakeTokenEndpoint{}
	ss, gs := httptest.NewServer(s), httptest.NewServer(g)
	t.Cleanup(ss.Close)
	t.Cleanup(gs.Close)
	return s, g, ss, gs
}

func TestOIDCAssumeAndRefresh(t *testing.T) {
	s, g, ss, gs := newServers(t)
	// Credentials that are already expired force the cache to refresh on the
	// next use: the path a run longer than the STS session takes.
	s.expiredAt = time.Now().Add(-time.Minute)
	m := &recMasker{}
	cfg, err := LoadConfig(context.Background(), Options{
		Region: "us-east-1", RoleToAssume: "arn:aws:iam::111122223333:role/patchgate", Endpoint: ss.URL,
		Getenv: oidcEnv(gs.URL), Masker: m, SessionName: "patchgate run/42",
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		id, err := CheckAllowedAccount(context.Background(), cfg, []string{"111122223333"}, m)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if id.Account != "111122223333" {
			t.Fatalf("account %q", id.Account)
		}
	}
	if g.requests != 2 || s.tokens[0] != "jwt-1" || s.tokens[1] != "jwt-2" {
		t.Fatalf("want a fresh OIDC token per refresh; github requests %d, sts saw %v", g.requests, s.tokens)
	}
	if s.signedBy[0] != "ASIAFAKE0001" || s.signedBy[1] != "ASIAFAKE0002" {
		t.Fatalf("second call must be signed with refreshed credentials: %v", s.signedBy)
	}
	if g.audiences[0] != DefaultAudience {
		t.Fatalf("audience %q", g.audiences[0])
	}
	for _, secret := range []string{"jwt-1", "ASIAFAKE0001", "secret1", "session1", "111122223333"} {
		if !m.has(secret) {
			t.Errorf("%q was not masked", secret)
		}
	}
}

func TestOIDCRetriesTransientAndFailsFastOnDenied(t *testing.T) {
	tests := []struct {
		name      string
		failFirst int
		status    int
		wantReqs  int
		wantErr   string
	}{
		{"two 503s then a token", 2, 0, 3, ""},
		{"403 is final", 0, http.StatusForbidden, 1, "id-token: write"},
		{"always 503 gives up after the attempts", 0, http.StatusServiceUnavailable, 4, "getting the GitHub OIDC token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, g, ss, gs := newServers(t)
			g.failFirst, g.status = tt.failFirst, tt.status
			tok := &oidcToken{audience: "aud", timeout: time.Second, attempts: 4, masker: nopMasker{}, log: discardLogger(), sleep: func(time.Duration) {}}
			o := Options{Getenv: oidcEnv(gs.URL)}
			o.defaults()
			tok.action = newAction(o)
			_, err := tok.GetIdentityToken()
			_ = ss
			if g.requests != tt.wantReqs {
				t.Errorf("requests %d want %d", g.requests, tt.wantReqs)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err %v want %q", err, tt.wantErr)
			}
		})
	}
}

func TestSTSAccessDeniedIsNotRetried(t *testing.T) {
	s, _, ss, gs := newServers(t)
	s.deny = true
	cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1", RoleToAssume: "arn:aws:iam::111122223333:role/patchgate", Endpoint: ss.URL, Getenv: oidcEnv(gs.URL)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = CallerIdentity(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("err %v", err)
	}
	if len(s.calls) != 1 {
		t.Fatalf("AccessDenied must not be retried; STS calls %v", s.calls)
	}
}

func TestRoleChainingAndAllowedAccounts(t *testing.T) {
	s, _, ss, _ := newServers(t)
	base, err := LoadConfig(context.Background(), Options{Region: "eu-west-1", Endpoint: ss.URL,
		Extra: []func(*config.LoadOptions) error{config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIABASE", "s", ""))}})
	if err != nil {
		t.Fatal(err)
	}
	chained := AssumeRole(base, "arn:aws:iam::444455556666:role/patchgate-target", "patchgate", nil)
	id, err := CallerIdentity(context.Background(), chained, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id.Account != "444455556666" || s.roles[0] != "arn:aws:iam::444455556666:role/patchgate-target" {
		t.Fatalf("chained identity %+v, roles %v", id, s.roles)
	}
	// An hour, the most a chained role session gets: the SDK's default
	// 15 minutes would assume the role four times an hour.
	if len(s.durations) != 1 || s.durations[0] != "3600" {
		t.Errorf("AssumeRole DurationSeconds %v, want [3600]", s.durations)
	}
	if _, err := CheckAllowedAccount(context.Background(), chained, []string{"111122223333"}, nil); err == nil || !strings.Contains(err.Error(), "not in allowed-account-ids") {
		t.Fatalf("want allowed-account error, got %v", err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{RoleToAssume: "patchgate"}, "not an IAM role ARN"},
		{Options{RoleToAssume: "arn:aws:iam::111122223333:role/x"}, "id-token: write"},
	} {
		_, err := LoadConfig(context.Background(), tt.o)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err %v want %q", tt.o, err, tt.want)
		}
	}
}

func TestSessionName(t *testing.T) {
	for in, want := range map[string]string{
		"patchgate run/42":      "patchgate-run-42",
		"x":                     "patchgate",
		strings.Repeat("a", 80): strings.Repeat("a", 64),
	} {
		if got := SessionName(in); got != want {
			t.Errorf("SessionName(%q)=%q want %q", in, got, want)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestFactory(t *testing.T) {
	s, _, ss, _ := newServers(t)
	base, err := LoadConfig(context.Background(), Options{Region: "us-east-1", Endpoint: ss.URL,
		Extra: []func(*config.LoadOptions) error{config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIABASE", "s", ""))}})
	if err != nil {
		t.Fatal(err)
	}
	f := &Factory{Base: base, SessionName: "patchgate"}
	ctx := context.Background()
	cfg, acct, err := f.Config(ctx, "", "", "eu-west-1")
	if err != nil || acct != "111122223333" || cfg.Region != "eu-west-1" {
		t.Fatalf("self: %v %q %q", err, acct, cfg.Region)
	}
	for _, r := range []string{"us-east-1", "eu-west-1"} {
		if _, acct, err = f.Config(ctx, "444455556666", "arn:aws:iam::444455556666:role/t", r); err != nil || acct != "444455556666" {
			t.Fatalf("chained %s: %v %q", r, err, acct)
		}
	}
	if n := len(s.roles); n != 1 {
		t.Fatalf("the role must be assumed once for both regions, got %d AssumeRole calls", n)
	}
	if _, _, err := f.Config(ctx, "999999999999", "", "us-east-1"); err == nil || !strings.Contains(err.Error(), "add roleArn") {
		t.Fatalf("want a missing-roleArn error, got %v", err)
	}
}

// A response whose body ends early is retried: a read-only listing must
// not end a phase in error because one connection dropped mid-body.
func TestTruncatedResponseIsRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"Commands":[{"CommandId":"c-1","Status":"Success"}]}`
		if calls.Add(1) == 1 {
			// Promise the whole body, send half, and hang up.
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(body[:len(body)/2]))
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1", Endpoint: srv.URL, RetryMaxBackoff: time.Millisecond,
		Extra: []func(*config.LoadOptions) error{config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKID", "s", ""))}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ssm.NewFromConfig(cfg).ListCommands(context.Background(), &ssm.ListCommandsInput{})
	if err != nil {
		t.Fatalf("ListCommands after a truncated response: %v", err)
	}
	if n := calls.Load(); n != 2 || len(out.Commands) != 1 {
		t.Fatalf("%d calls, %d commands; want a retry and the command", n, len(out.Commands))
	}
}
