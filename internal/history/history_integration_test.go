//go:build integration

package history_test

// The history store against moto's S3: the real client, path-style, over
// CreateBucket, PutObject, ListObjectsV2 (paged) and GetObject.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/patchgate/patchgate/internal/history"
	"github.com/patchgate/patchgate/internal/motoenv"
	"github.com/patchgate/patchgate/internal/result"
)

func TestMotoHistoryRoundTrip(t *testing.T) {
	cfg := motoenv.Config(t)
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	ctx := context.Background()
	bucket := motoenv.Unique("history-")
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	st := &history.Store{S3: client, Bucket: bucket, Prefix: "patchgate"}
	base := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	for i := range 14 {
		pct := 90 + float64(i)/2
		r := &result.Run{RunID: fmt.Sprint(500 + i), StartedAt: base.AddDate(0, 0, i), Policies: []result.Policy{{Name: "web-fleet"}}}
		if err := st.Record(ctx, r, []history.Entry{{Policy: "web-fleet", RunID: r.RunID, StartedAt: r.StartedAt, Status: result.StatusPassed, CompliancePercent: &pct}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Last(ctx, "web-fleet", 12)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 12 || got[0].RunID != "502" || got[11].RunID != "513" || *got[11].CompliancePercent != 96.5 {
		t.Fatalf("%d entries: first %+v", len(got), got)
	}
}
