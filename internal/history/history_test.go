package history

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/patchgate/patchgate/internal/history/historytest"
	"github.com/patchgate/patchgate/internal/result"
)

// NewTestStore is a Store on a fake S3 behind the real SDK client.
func newTestStore(t *testing.T, pageSize int) (*Store, *historytest.S3) {
	t.Helper()
	f := &historytest.S3{Objects: map[string][]byte{}, PageSize: pageSize}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
	return &Store{S3: client, Bucket: "patch-history", Prefix: "patchgate/history"}, f
}

func TestRecordAndLast(t *testing.T) {
	st, f := newTestStore(t, 3)
	ctx := context.Background()
	base := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	pct := func(v float64) *float64 { return &v }
	for i := range 15 {
		r := &result.Run{SchemaVersion: result.SchemaVersion, RunID: fmt.Sprint(100 + i), StartedAt: base.Add(time.Duration(i) * 24 * time.Hour),
			Policies: []result.Policy{{Name: "web-fleet", Status: result.StatusPassed}, {Name: "db", Status: result.StatusFailed}}}
		entries := []Entry{
			{Policy: "web-fleet", RunID: r.RunID, StartedAt: r.StartedAt, Status: result.StatusPassed, CompliancePercent: pct(float64(80 + i))},
			{Policy: "db", RunID: r.RunID, StartedAt: r.StartedAt, Status: result.StatusFailed},
		}
		if err := st.Record(ctx, r, entries); err != nil {
			t.Fatal(err)
		}
	}
	// A resumed run records itself again: still one entry.
	r := &result.Run{RunID: "114", StartedAt: base.Add(14 * 24 * time.Hour), Policies: []result.Policy{{Name: "web-fleet"}}}
	if err := st.Record(ctx, r, []Entry{{Policy: "web-fleet", RunID: "114", StartedAt: r.StartedAt, Status: result.StatusPassed, CompliancePercent: pct(99)}}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Last(ctx, "web-fleet", 12)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 12 || got[0].RunID != "103" || got[11].RunID != "114" || *got[11].CompliancePercent != 99 {
		ids := []string{}
		for _, e := range got {
			ids = append(ids, e.RunID)
		}
		t.Fatalf("last 12 of web-fleet: %v", ids)
	}
	if f.Lists < 2 {
		t.Errorf("the listing was never paged (%d calls)", f.Lists)
	}
	// Each entry points at its policy's share of the full result.
	raw := f.Objects["patch-history/"+got[11].ResultKey]
	if !strings.Contains(string(raw), `"web-fleet"`) || strings.Contains(string(raw), `"db"`) {
		t.Errorf("result %s: %.200s", got[11].ResultKey, raw)
	}
	if db, _ := st.Last(ctx, "db", 12); len(db) != 12 || db[0].Status != result.StatusFailed {
		t.Errorf("db history: %d entries", len(db))
	}
	if none, err := st.Last(ctx, "nothing-yet", 12); err != nil || len(none) != 0 {
		t.Errorf("a policy without history: %v %v", none, err)
	}
}

func TestLastRefusesAForeignRecord(t *testing.T) {
	st, f := newTestStore(t, 100)
	f.Objects["patch-history/patchgate/history/web-fleet/20261101T030000Z-1.json"] = []byte(`{"schemaVersion":"other/v9","policy":"web-fleet"}`)
	if _, err := st.Last(context.Background(), "web-fleet", 12); err == nil || !strings.Contains(err.Error(), "schemaVersion") {
		t.Fatalf("err %v", err)
	}
}

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		in, bucket, prefix string
		ok                 bool
	}{
		{"s3://patch-history/patchgate/runs", "patch-history", "patchgate/runs", true},
		{"s3://patch-history", "patch-history", "", true},
		{"s3://patch-history/", "patch-history", "", true},
		{"https://patch-history/x", "", "", false},
		{"s3://Bad_Bucket/x", "", "", false},
		{"s3:///x", "", "", false},
		{"s3://b/x?versionId=1", "", "", false},
	} {
		b, p, err := ParseURL(tt.in)
		if (err == nil) != tt.ok || b != tt.bucket || p != tt.prefix {
			t.Errorf("ParseURL(%q) = %q, %q, %v", tt.in, b, p, err)
		}
	}
}
