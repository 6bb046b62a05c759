package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/history"
	"github.com/patchgate/patchgate/internal/history/historytest"
	"github.com/patchgate/patchgate/internal/result"
)

// historyEndpoint is the simulator with an S3 bucket beside it on one
// endpoint (S3 path-style requests start with the bucket's name).
func historyEndpoint(t *testing.T) (string, *historytest.S3) {
	t.Helper()
	sim := awssim.New(awssim.DemoScenario(awssim.DemoOptions{}), nil)
	fake := &historytest.S3{Objects: map[string][]byte{}, PageSize: 5}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/patch-history") {
			fake.ServeHTTP(w, r)
			return
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	simCredentials(t)
	return srv.URL, fake
}

func TestReportHistory(t *testing.T) {
	ep, fake := historyEndpoint(t)
	st := &history.Store{Bucket: "patch-history", Prefix: "pg", S3: s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(ep), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(awssim.AccessKeyFor("111122223333"), "x", "")})}
	base := time.Date(2026, 10, 4, 3, 0, 0, 0, time.UTC)
	for i := range 14 {
		pct := 90 + float64(i)/2
		r := &result.Run{RunID: "r" + string(rune('a'+i)), StartedAt: base.AddDate(0, 0, 7*i), Policies: []result.Policy{{Name: "web-fleet"}}}
		if err := st.Record(context.Background(), r, []history.Entry{{Policy: "web-fleet", RunID: r.RunID, StartedAt: r.StartedAt, Status: result.StatusPassed, CompliancePercent: &pct, Patched: 200 + i}}); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "history.md")
	code, _, errs := runIn(t, "../..", nil, "report", "--history", "12", "--history-store", "s3://patch-history/pg", "--policy", "web-fleet", "--endpoint-url", ep, "--out", out)
	data, _ := os.ReadFile(out)
	if code != ExitOK || !strings.Contains(string(data), "### web-fleet: the last 12 runs") || !strings.Contains(string(data), "xychart-beta") ||
		!strings.Contains(string(data), "| rn |") || strings.Contains(string(data), "| rb |") {
		t.Fatalf("exit %d %s\n%s", code, errs, data)
	}
	if fake.Lists < 2 {
		t.Errorf("the listing was not paged: %d calls", fake.Lists)
	}

	// Usage errors name what is missing.
	for _, args := range [][]string{
		{"report", "--history", "12"},
		{"report", "--history-store", "s3://patch-history/pg"},
		{"report", "--history", "12", "--history-store", "s3://patch-history/pg"},
		{"report", "--history", "12", "--history-store", "https://x", "--policy", "a"},
	} {
		if code, _, errs := runIn(t, "../..", nil, append(args, "--endpoint-url", ep)...); code != ExitUsage || !strings.HasPrefix(errs, "patchgate report: ") {
			t.Errorf("%v: exit %d %q", args, code, errs)
		}
	}
}

// TestRunKeepsHistory: a run is recorded whatever its outcome — here a
// policy refused by a freeze covering every date — while a bad store URL
// is refused before anything starts.
func TestRunKeepsHistory(t *testing.T) {
	ep, fake := historyEndpoint(t)
	dir := t.TempDir()
	data, err := os.ReadFile("../../policies/windows-fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	frozen := strings.Replace(string(data), "    changeCalendars: [prod-change-calendar]\n",
		"    changeCalendars: [prod-change-calendar]\n    freezes:\n      - {from: \"2000-01-01\", to: \"2099-12-31\", reason: test}\n", 1)
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policies", "windows-fleet.yaml"), []byte(frozen), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runIn(t, dir, nil, "run", "--endpoint-url", ep, "--history-store", "s3://patch-history/pg", "--policy", "windows-fleet", "--run-id", "42")
	if code != 5 || len(fake.Objects) != 2 {
		t.Fatalf("exit %d, %d objects\n%s", code, len(fake.Objects), errs)
	}
	var entry string
	for k, v := range fake.Objects {
		if strings.HasSuffix(k, "-42.json") && strings.HasPrefix(k, "patch-history/pg/windows-fleet/") {
			entry = string(v)
		}
	}
	if !strings.Contains(entry, `"status":"refused"`) || strings.Contains(entry, "compliancePercent") {
		t.Errorf("entry: %s", entry)
	}
	if code, _, errs := runIn(t, "../..", nil, "run", "--endpoint-url", ep, "--history-store", "bucket/x"); code != ExitUsage || !strings.Contains(errs, "--history-store") {
		t.Fatalf("exit %d %s", code, errs)
	}
}
