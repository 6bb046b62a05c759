//go:build integration

package promote_test

// The promotion store against moto's S3 and SSM: records created with
// If-None-Match: * (exactly one of several racing runs creates a record),
// their digests in Parameter Store, strict reading, and the replay list.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/motoenv"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/promote"
)

func motoStore(t *testing.T) (*promote.Store, *s3.Client, *ssm.Client) {
	t.Helper()
	cfg, account := motoenv.FreshAccount(t)
	s3c := promote.S3Client(cfg)
	name := motoenv.Unique("pg-records-")
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("creating bucket %s in moto: %v", name, err)
	}
	ssmc := ssm.NewFromConfig(cfg)
	st := promote.NewStore(s3c, ssmc, &policy.RingStore{Bucket: name, Account: account, Region: motoenv.Region, Prefix: "patchgate"})
	st.Log = nil
	return st, s3c, ssmc
}

func motoRecord(run string) *promote.Record {
	now := time.Now().UTC().Truncate(time.Second)
	return &promote.Record{Policy: "payments-rings", Phase: "staging", Digest: "sha256:" + strings.Repeat("c", 64), Commit: "abc123",
		RunID: run, RunURL: "https://github.com/acme/infra/actions/runs/" + run, SnapshotID: "6f1b1c4e-0000-4000-8000-000000000001",
		Started: now.Add(-time.Hour), Time: now, Verdict: promote.Passed,
		Patches: []promote.OSPatches{{OS: "WINDOWS", Patches: []promote.Patch{{ID: "KB5034441", Title: "2024-01 Security Update (KB5034441)", KB: "KB5034441"}}}}}
}

func windowsPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, probs := policy.Parse("p.yaml", []byte(`apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: payments-rings}
spec:
  operatingSystem: WINDOWS
  baseline:
    approvalRules: [{classifications: [SecurityUpdates], approveAfterDays: 3}]
  regions: [us-east-1]
  phases: [{name: staging, targets: {tags: {App: payments}}}]
`))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return p
}

func TestMotoStoreRoundTrip(t *testing.T) {
	st, s3c, ssmc := motoStore(t)
	ctx := context.Background()
	if err := st.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := st.Check(ctx); err != nil {
		t.Fatalf("Check with the markers present (412 / ParameterAlreadyExists): %v", err)
	}
	first := motoRecord("1")
	key, err := st.Put(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	second := motoRecord("2")
	second.Verdict, second.Reason = promote.Failed, "wave 1 over maxErrors"
	if _, err := st.Put(ctx, second); err != nil {
		t.Fatal(err)
	}
	got, err := st.Latest(ctx, first.Policy, first.Phase, first.Digest)
	if err != nil || got == nil || got.RunID != "2" || got.Seq != 2 || got.Verdict != promote.Failed {
		t.Fatalf("Latest = %+v, %v; want run 2's failed record", got, err)
	}
	p, err := ssmc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(st.Parameter(key))})
	if err != nil || !strings.HasPrefix(aws.ToString(p.Parameter.Value), "sha256:") {
		t.Fatalf("the record's digest parameter: %v, %v", p, err)
	}
	// A record rewritten behind the store's back no longer matches its digest.
	newest := st.Key(first.Policy, first.Phase, first.Digest, 2)
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: &st.Bucket, Key: &newest, Body: strings.NewReader(`{"schema":"` + promote.Schema + `"}`)}); err != nil {
		t.Fatal(err)
	}
	var ce *promote.CorruptError
	if _, err := st.Latest(ctx, first.Policy, first.Phase, first.Digest); !errors.As(err, &ce) {
		t.Fatalf("Latest after tampering = %v, want a *CorruptError", err)
	}
	// The replay list is created once and found identical on a second write.
	first.Seq = 1
	for i := 0; i < 2; i++ {
		replays, err := st.OverrideList(ctx, first, windowsPolicy(t))
		if err != nil || len(replays) != 1 || replays[0].Mechanism != promote.MechanismOverrideList {
			t.Fatalf("OverrideList #%d = %+v, %v", i+1, replays, err)
		}
	}
}

// barrierS3 holds every Put after its listing until all racers have listed,
// so they all try to create the same record at once.
type barrierS3 struct {
	promote.S3API
	wg *sync.WaitGroup
}

func (b *barrierS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	out, err := b.S3API.ListObjectsV2(ctx, in, optFns...)
	b.wg.Done()
	b.wg.Wait()
	return out, err
}

func TestMotoStoreRaceOneWins(t *testing.T) {
	st, _, _ := motoStore(t)
	ctx := context.Background()
	const runners = 6
	var listed sync.WaitGroup
	listed.Add(runners)
	var wg sync.WaitGroup
	errs := make([]error, runners)
	for i := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			racer := *st
			racer.S3 = &barrierS3{S3API: st.S3, wg: &listed}
			_, errs[i] = racer.Put(ctx, motoRecord(string(rune('a'+i))))
		}()
	}
	wg.Wait()
	winners := 0
	for _, err := range errs {
		var lost *promote.RaceLostError
		switch {
		case err == nil:
			winners++
		case errors.As(err, &lost):
			if lost.Winner == nil {
				t.Errorf("a loser must be told who won: %v", err)
			}
		default:
			t.Errorf("Put: %v", err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d runs created the record, want exactly 1: %v", winners, errs)
	}
	rec, err := st.Latest(ctx, "payments-rings", "staging", "sha256:"+strings.Repeat("c", 64))
	if err != nil || rec == nil || rec.Seq != 1 {
		t.Fatalf("Latest = %+v, %v; want the one winner's record", rec, err)
	}
	for _, err := range errs {
		var lost *promote.RaceLostError
		if errors.As(err, &lost) && lost.Winner.RunID != rec.RunID {
			t.Errorf("a loser was told run %s won, but the record is run %s's", lost.Winner.RunID, rec.RunID)
		}
	}
}

// TestMotoDecide: production waits for a staging record at this revision,
// and says when staging only ran at another one (a delimiter listing).
func TestMotoDecide(t *testing.T) {
	st, _, _ := motoStore(t)
	ctx := context.Background()
	src := func(minAge string) *policy.Policy {
		p, probs := policy.Parse("p.yaml", []byte(`apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: payments-rings}
spec:
  operatingSystem: WINDOWS
  baseline:
    approvalRules: [{classifications: [SecurityUpdates], approveAfterDays: 3}]
  regions: [us-east-1]
  rings: {store: {bucket: `+st.Bucket+`, account: "123456789012", region: us-east-1}}
  phases:
    - {name: staging, targets: {tags: {App: payments}}}
    - {name: production, targets: {tags: {App: payments}}, promotion: {from: staging, minAge: `+minAge+`, maxAge: 336h}}
`))
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		return p
	}
	p := src("1h")
	r, err := policy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if d, err := st.Decide(ctx, p, r.Stage("production"), now); err != nil || d.Eligible || d.Source != nil {
		t.Fatalf("without a record: %+v, %v", d, err)
	}
	digest, _ := promote.Digest(p)
	rec := motoRecord("1")
	rec.Digest = digest
	if _, err := st.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if d, err := st.Decide(ctx, p, r.Stage("production"), rec.Time.Add(2*time.Hour)); err != nil || !d.Eligible || d.Source.RunID != "1" {
		t.Fatalf("two hours after staging passed: %+v, %v", d, err)
	}
	changed := src("2h")
	d, err := st.Decide(ctx, changed, r.Stage("production"), rec.Time.Add(3*time.Hour))
	if err != nil || d.Eligible || !strings.Contains(d.Reason, "1 other revision") {
		t.Fatalf("after the policy changed: %+v, %v", d, err)
	}
}
