package promote

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/policy"
)

const (
	homeAccount = "999988887777"
	homeRegion  = "us-east-1"
	bucket      = "acme-patchgate-records"
	digestA     = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB     = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

var start = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

type env struct {
	sim   *awssim.Sim
	clock *clock.Step
	url   string
	store *Store
}

// newEnv serves a simulator with the home account's bucket and returns a
// store over real SDK clients (S3 path-style, as patchgate configures it).
func newEnv(t *testing.T, sc *awssim.Scenario) *env {
	t.Helper()
	if sc == nil {
		sc = &awssim.Scenario{Accounts: []string{homeAccount}}
	}
	sc.Buckets = append(sc.Buckets, awssim.Bucket{Name: bucket, Account: homeAccount, Region: homeRegion})
	c := clock.NewStep(start)
	sim := awssim.New(sc, c)
	url := serveHTTP(t, sim)
	cfg := awssim.Config(url, homeAccount, homeRegion)
	// Retries back off by milliseconds, not seconds: what is retried is
	// asserted, never how long it took.
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 5; o.MaxBackoff = 5 * time.Millisecond })
	}
	st := NewStore(S3Client(cfg), ssm.NewFromConfig(cfg),
		&policy.RingStore{Bucket: bucket, Account: homeAccount, Region: homeRegion})
	st.Log = nil
	return &env{sim: sim, clock: c, url: url, store: st}
}

func record(verdict string, at time.Time) *Record {
	return &Record{Policy: "payments-rings", Phase: "staging", Digest: digestA, Commit: "0123abc", RunID: "run-1",
		RunURL: "https://github.com/acme/infra/actions/runs/1", SnapshotID: "6f1b1c4e-0000-4000-8000-000000000001",
		Started: at.Add(-time.Hour), Time: at, Verdict: verdict,
		Patches: []OSPatches{{OS: "AMAZON_LINUX_2023", Patches: []Patch{{ID: "openssh-server.x86_64", Title: "openssh-server.x86_64:0:1.0.1-1.amzn2023", Name: "openssh-server.x86_64", Version: "0:1.0.1-1.amzn2023", Classification: "Security", Severity: "Critical"}}}}}
}

func TestPutLatestRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if rec, err := e.store.Latest(ctx, "payments-rings", "staging", digestA); err != nil || rec != nil {
		t.Fatalf("empty store: Latest = %v, %v; want nil, nil", rec, err)
	}
	key, err := e.store.Put(ctx, record(Passed, start))
	if err != nil {
		t.Fatal(err)
	}
	if want := "patchgate/records/payments-rings/staging/" + strings.TrimPrefix(digestA, "sha256:") + "/0000000001.json"; key != want {
		t.Errorf("key = %s, want %s", key, want)
	}
	second := record(Failed, start.Add(time.Hour))
	second.RunID = "run-2"
	if _, err := e.store.Put(ctx, second); err != nil {
		t.Fatal(err)
	}
	if second.Seq != 2 {
		t.Errorf("second record seq = %d, want 2", second.Seq)
	}
	got, err := e.store.Latest(ctx, "payments-rings", "staging", digestA)
	if err != nil || got == nil || got.RunID != "run-2" || got.Verdict != Failed || got.Seq != 2 {
		t.Fatalf("Latest = %+v, %v; want run-2's failed record", got, err)
	}
	// Another revision has no records; the first record is still there.
	if rec, err := e.store.Latest(ctx, "payments-rings", "staging", digestB); err != nil || rec != nil {
		t.Errorf("another digest: Latest = %v, %v; want none", rec, err)
	}
	if keys := e.sim.Objects(bucket, "patchgate/records/"); len(keys) != 2 {
		t.Errorf("objects = %v, want both records kept", keys)
	}
}

// racingS3 lets a competitor write between a Put's listing and its create.
type racingS3 struct {
	S3API
	once sync.Once
	race func()
}

func (r *racingS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	out, err := r.S3API.ListObjectsV2(ctx, in, optFns...)
	r.once.Do(r.race)
	return out, err
}

func TestPutRaceOneWins(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	other := *e.store
	winner := record(Passed, start)
	winner.RunID = "run-winner"
	slow := *e.store
	slow.S3 = &racingS3{S3API: e.store.S3, race: func() {
		if _, err := other.Put(ctx, winner); err != nil {
			t.Errorf("the first writer must win: %v", err)
		}
	}}
	loser := record(Passed, start)
	loser.RunID = "run-loser"
	_, err := slow.Put(ctx, loser)
	var lost *RaceLostError
	if !errors.As(err, &lost) {
		t.Fatalf("Put = %v, want a *RaceLostError", err)
	}
	if lost.Winner == nil || lost.Winner.RunID != "run-winner" || !strings.Contains(err.Error(), "run-winner") {
		t.Errorf("the loser must be told who won: %v", err)
	}
	got, err := e.store.Latest(ctx, "payments-rings", "staging", digestA)
	if err != nil || got.RunID != "run-winner" {
		t.Fatalf("Latest = %+v, %v; want the winner's record, unchanged", got, err)
	}
	if keys := e.sim.Objects(bucket, "patchgate/records/"); len(keys) != 1 {
		t.Errorf("objects = %v, want exactly one record", keys)
	}
}

func TestLatestRefusesUntrustedRecords(t *testing.T) {
	cases := []struct {
		name    string
		tamper  func(e *env, key string)
		refused string // substring of the *CorruptError; "" for a skipped record
	}{
		{"changed after written", func(e *env, key string) {
			data, _ := e.sim.Object(bucket, key)
			e.sim.SetObject(bucket, key, []byte(strings.Replace(string(data), `"failed"`, `"passed"`, 1)))
		}, "changed after it was written"},
		{"not JSON", func(e *env, key string) { forge(t, e, key, []byte("{not json")) }, "not valid JSON"},
		{"unknown field", func(e *env, key string) {
			data, _ := e.sim.Object(bucket, key)
			forge(t, e, key, []byte(strings.Replace(string(data), `"schema"`, `"approvedBy": "mallory", "schema"`, 1)))
		}, `unknown field "approvedBy"`},
		{"another schema", func(e *env, key string) {
			data, _ := e.sim.Object(bucket, key)
			forge(t, e, key, []byte(strings.Replace(string(data), Schema, "patchgate.dev/promotion-record/v9", 1)))
		}, "is not"},
		{"foreign record", func(e *env, key string) {
			data, _ := e.sim.Object(bucket, key)
			forge(t, e, key, []byte(strings.Replace(string(data), `"policy": "payments-rings"`, `"policy": "other-policy"`, 1)))
		}, "not of the key it is stored at"},
		{"trailing data", func(e *env, key string) {
			data, _ := e.sim.Object(bucket, key)
			forge(t, e, key, append(data, []byte(` {}`)...))
		}, "data after"},
		{"digest never written", func(e *env, key string) { e.sim.DeleteParameter(homeAccount, homeRegion, e.store.Parameter(key)) }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			ctx := context.Background()
			if _, err := e.store.Put(ctx, record(Passed, start)); err != nil {
				t.Fatal(err)
			}
			key, err := e.store.Put(ctx, record(Failed, start.Add(time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			tc.tamper(e, key)
			got, err := e.store.Latest(ctx, "payments-rings", "staging", digestA)
			if tc.refused == "" {
				// An incomplete write is never trusted; the record before it stands.
				if err != nil || got == nil || got.Seq != 1 {
					t.Fatalf("Latest = %+v, %v; want the earlier record", got, err)
				}
				return
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.refused) || got != nil {
				t.Fatalf("Latest = %+v, %v; want a *CorruptError containing %q", got, err, tc.refused)
			}
			if !strings.Contains(err.Error(), "s3://"+bucket+"/"+key) {
				t.Errorf("the error must name the object: %v", err)
			}
		})
	}
}

// forge replaces a record and its parameter, as someone with write access
// to both could: the digest matches, so only the decoding can refuse it.
func forge(t *testing.T, e *env, key string, data []byte) {
	t.Helper()
	e.sim.SetObject(bucket, key, data)
	e.sim.SetParameter(homeAccount, homeRegion, e.store.Parameter(key), sha(data))
}

func TestStoreAccessDenied(t *testing.T) {
	for _, action := range []string{"s3:PutObject", "s3:GetObject", "s3:ListBucket", "ssm:PutParameter", "ssm:GetParameter"} {
		t.Run(action, func(t *testing.T) {
			e := newEnv(t, nil)
			e.sim.Deny(action)
			err := e.store.Check(context.Background())
			var ae *AccessError
			if !errors.As(err, &ae) || ae.Action != action {
				t.Fatalf("Check = %v, want an *AccessError for %s", err, action)
			}
			want := bucket
			if strings.HasPrefix(action, "ssm:") {
				want = "/patchgate/access-check"
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "grant "+action) {
				t.Errorf("the error must name %s and the action: %v", want, err)
			}
		})
	}
	e := newEnv(t, nil)
	if err := e.store.Check(context.Background()); err != nil {
		t.Fatalf("a store with every permission: %v", err)
	}
	// The second check finds the markers present: still allowed.
	if err := e.store.Check(context.Background()); err != nil {
		t.Fatalf("second check: %v", err)
	}
	e.sim.Deny("s3:PutObject")
	if _, err := e.store.Put(context.Background(), record(Passed, start)); err == nil || !strings.Contains(err.Error(), "s3:PutObject") {
		t.Errorf("Put without s3:PutObject = %v, want the action named", err)
	}
}

func TestMissingBucketNamed(t *testing.T) {
	e := newEnv(t, nil)
	e.store.Bucket = "no-such-bucket"
	err := e.store.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Fatalf("Check = %v, want the missing bucket named", err)
	}
}

// TestPutRetriedAfterLostResponse: a create that landed but whose response
// was lost is retried by the SDK and meets 412 on its own record; that is
// this run's write, not a lost race. Throttling is retried too.
func TestPutRetriedAfterLostResponse(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.sim.DropResponse("s3:PutObject", 1)
	e.sim.DropResponse("ssm:PutParameter", 1)
	e.sim.Throttle("s3:ListBucket", 2)
	key, err := e.store.Put(ctx, record(Passed, start))
	if err != nil {
		t.Fatalf("Put after a lost response = %v, want this run's record kept", err)
	}
	if calls := e.sim.Calls(); calls["s3:PutObject"] != 2 || calls["ssm:PutParameter"] != 2 || calls["s3:ListBucket"] != 3 {
		t.Errorf("calls = %v, want each write retried once and the listing twice", calls)
	}
	got, err := e.store.Latest(ctx, "payments-rings", "staging", digestA)
	if err != nil || got == nil || got.RunID != "run-1" || e.store.Key(got.Policy, got.Phase, got.Digest, got.Seq) != key {
		t.Fatalf("Latest = %+v, %v; want the record, verified", got, err)
	}
}

// serveHTTP serves the simulator on a loopback httptest server for the
// test: these tests run on a manual clock and need no synctest bubble.
func serveHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
