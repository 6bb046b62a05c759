package awssim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"github.com/patchgate/patchgate/internal/clock"
)

func s3Client(url, account, region string) *s3.Client {
	return s3.NewFromConfig(Config(url, account, region), func(o *s3.Options) { o.UsePathStyle = true })
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestS3ConditionalPutGetList(t *testing.T) {
	sc := &Scenario{Accounts: []string{"111122223333", "444455556666"}, Buckets: []Bucket{{Name: "records", Account: "111122223333", Region: "eu-west-1"}}}
	s := New(sc, clock.NewStep(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)))
	url := serveHTTP(t, s)
	ctx := context.Background()
	c := s3Client(url, "111122223333", "eu-west-1")
	put := func(key, body string, opts func(*s3.PutObjectInput)) error {
		in := &s3.PutObjectInput{Bucket: aws.String("records"), Key: aws.String(key), Body: strings.NewReader(body)}
		if opts != nil {
			opts(in)
		}
		_, err := c.PutObject(ctx, in)
		return err
	}
	ifNone := func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") }
	if err := put("a/1.json", "first", ifNone); err != nil {
		t.Fatal(err)
	}
	if err := put("a/1.json", "second", ifNone); apiCode(err) != "PreconditionFailed" {
		t.Fatalf("a second create = %v, want PreconditionFailed", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("records"), Key: aws.String("a/1.json")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	if string(body) != "first" {
		t.Fatalf("object = %q, want the first write kept", body)
	}
	if err := put("a/1.json", "third", func(in *s3.PutObjectInput) { in.IfMatch = aws.String(`"stale"`) }); apiCode(err) != "PreconditionFailed" {
		t.Errorf("If-Match with a stale ETag = %v, want PreconditionFailed", err)
	}
	if err := put("a/1.json", "third", func(in *s3.PutObjectInput) { in.IfMatch = out.ETag }); err != nil {
		t.Errorf("If-Match with the current ETag: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("records"), Key: aws.String("a/none")}); apiCode(err) != "NoSuchKey" {
		t.Errorf("a missing key = %v, want NoSuchKey", err)
	}
	for i := 2; i <= 5; i++ {
		if err := put(fmt.Sprintf("a/%d.json", i), "x", ifNone); err != nil {
			t.Fatal(err)
		}
	}
	_ = put("b/1.json", "x", nil)
	var keys []string
	pages := 0
	for p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("records"), Prefix: aws.String("a/"), MaxKeys: aws.Int32(2)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	if strings.Join(keys, ",") != "a/1.json,a/2.json,a/3.json,a/4.json,a/5.json" || pages != 3 {
		t.Errorf("listing = %v in %d pages, want a/1..5 in 3 pages of 2", keys, pages)
	}
	// A delimiter rolls keys up into common prefixes, paged with the keys.
	_ = put("a/x/1.json", "x", nil)
	_ = put("a/x/2.json", "x", nil)
	_ = put("a/y/1.json", "x", nil)
	var items []string
	for p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("records"), Prefix: aws.String("a/"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(3)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			items = append(items, aws.ToString(o.Key))
		}
		for _, cp := range page.CommonPrefixes {
			items = append(items, aws.ToString(cp.Prefix))
		}
	}
	sort.Strings(items)
	if strings.Join(items, ",") != "a/1.json,a/2.json,a/3.json,a/4.json,a/5.json,a/x/,a/y/" {
		t.Errorf("listing with a delimiter = %v", items)
	}
	// Only the owner, and only in the bucket's region.
	if _, err := s3Client(url, "444455556666", "eu-west-1").GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("records"), Key: aws.String("a/1.json")}); apiCode(err) != "AccessDenied" {
		t.Errorf("another account = %v, want AccessDenied", err)
	}
	if _, err := s3Client(url, "111122223333", "us-east-1").GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("records"), Key: aws.String("a/1.json")}); apiCode(err) != "AuthorizationHeaderMalformed" {
		t.Errorf("the wrong region = %v, want AuthorizationHeaderMalformed", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nope"), Key: aws.String("k")}); apiCode(err) != "NoSuchBucket" {
		t.Errorf("a missing bucket = %v, want NoSuchBucket", err)
	}
	s.Deny("s3:GetObject")
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("records"), Key: aws.String("a/1.json")}); apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "s3:GetObject") {
		t.Errorf("a denied action = %v, want AccessDenied naming s3:GetObject", err)
	}
	if s.Calls()["s3:PutObject"] != 12 {
		t.Errorf("s3:PutObject calls = %d, want 12", s.Calls()["s3:PutObject"])
	}
}

func TestDecodeAWSChunked(t *testing.T) {
	body := []byte("5;chunk-signature=abc\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n")
	r, _ := newRequest("aws-chunked")
	got, err := decodeS3Body(r, body)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("decoded %q, %v", got, err)
	}
	if _, err := decodeS3Body(r, []byte("zz\r\n")); err == nil {
		t.Error("a bad chunk size must be refused")
	}
}

// TestInstallOverrideListAndReleases: an Install with an override list
// installs only the listed patches, with the Install's end as their
// InstalledTime; patches released later are approved but missing; an
// unreadable list fails the invocation.
func TestInstallOverrideListAndReleases(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	sc := &Scenario{Accounts: []string{"111122223333"}, PatchDuration: 30 * time.Minute,
		Buckets:  []Bucket{{Name: "lists", Account: "111122223333", Region: "us-east-1"}},
		Releases: []Release{{After: 2 * time.Hour, Platform: "Linux", Count: 1}},
		Groups:   []Group{{Region: "us-east-1", Count: 3, Name: "web", Platform: "Amazon Linux", Missing: 3}}}
	clk := clock.NewStep(t0)
	s := New(sc, clk)
	url := serveHTTP(t, s)
	ctx := context.Background()
	s.SetObject("lists", "l.yaml", []byte("patches:\n  - id: sim-pkg01.x86_64\n    title: sim-pkg01.x86_64:0:1.0.1-1.amzn2023\n  - id: sim-pkg02.x86_64\n"))
	c := ssm.NewFromConfig(Config(url, "111122223333", "us-east-1"))
	ids := []string{}
	for _, in := range s.Instances("111122223333", "us-east-1") {
		ids = append(ids, in.ID)
	}
	send := func(id, list string) {
		t.Helper()
		p := map[string][]string{"Operation": {"Install"}}
		if list != "" {
			p["InstallOverrideList"] = []string{list}
		}
		if _, err := c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPatchBaseline"), InstanceIds: []string{id}, Parameters: p}); err != nil {
			t.Fatal(err)
		}
	}
	send(ids[0], "s3://lists/l.yaml")
	send(ids[1], "https://s3.us-east-1.amazonaws.com/lists/missing.yaml")
	clk.Advance(3 * time.Hour) // the release (at 2h) comes after the installs started
	send(ids[2], "")
	clk.Advance(time.Hour)
	states := func(id string) map[string]string {
		out, err := c.DescribeInstancePatches(ctx, &ssm.DescribeInstancePatchesInput{InstanceId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, p := range out.Patches {
			m[aws.ToString(p.KBId)] = string(p.State)
			if p.State == ssmtypes.PatchComplianceDataStateInstalled && !aws.ToTime(p.InstalledTime).Equal(t0.Add(30*time.Minute)) && id == ids[0] {
				t.Errorf("%s InstalledTime = %v, want the Install's end", aws.ToString(p.KBId), aws.ToTime(p.InstalledTime))
			}
		}
		return m
	}
	want := map[string]string{"sim-pkg01.x86_64": "Installed", "sim-pkg02.x86_64": "Installed", "sim-pkg03.x86_64": "Missing", "sim-update001.x86_64": "Missing"}
	if got := states(ids[0]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("with the list: %v, want %v", got, want)
	}
	if got := states(ids[1]); got["sim-pkg01.x86_64"] != "Failed" || got["sim-pkg02.x86_64"] != "Missing" {
		t.Errorf("with an unreadable list nothing installs and the Install fails: %v", got)
	}
	all := map[string]string{"sim-pkg01.x86_64": "Installed", "sim-pkg02.x86_64": "Installed", "sim-pkg03.x86_64": "Installed", "sim-update001.x86_64": "Installed"}
	if got := states(ids[2]); fmt.Sprint(got) != fmt.Sprint(all) {
		t.Errorf("without a list after the release: %v, want %v", got, all)
	}
	st, err := c.DescribeInstancePatchStates(ctx, &ssm.DescribeInstancePatchStatesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string][2]int32{}
	for _, p := range st.InstancePatchStates {
		counts[aws.ToString(p.InstanceId)] = [2]int32{p.InstalledCount, p.MissingCount}
		if aws.ToString(p.InstanceId) == ids[0] && aws.ToString(p.InstallOverrideList) != "s3://lists/l.yaml" {
			t.Errorf("the patch state names the override list: %q", aws.ToString(p.InstallOverrideList))
		}
	}
	if counts[ids[0]] != [2]int32{102, 2} || counts[ids[2]] != [2]int32{104, 0} {
		t.Errorf("counts (installed, missing) = %v, want the per-patch states' counts", counts)
	}
	// The filter keys SSM knows, and no others.
	if _, err := c.DescribeInstancePatches(ctx, &ssm.DescribeInstancePatchesInput{InstanceId: aws.String(ids[0]),
		Filters: []ssmtypes.PatchOrchestratorFilter{{Key: aws.String("Status"), Values: []string{"Installed"}}}}); apiCode(err) != "InvalidFilter" {
		t.Errorf("an unknown filter key = %v, want InvalidFilter", err)
	}
}

func newRequest(encoding string) (*http.Request, error) {
	r := httptest.NewRequest(http.MethodPut, "/b/k", nil)
	r.Header.Set("Content-Encoding", encoding)
	return r, nil
}

func TestScenarioBucketsAndReleases(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `accounts: ["111122223333"]
buckets:
  - {name: records, account: "111122223333", region: us-east-1}
releases:
  - {after: 24h, platform: Windows, count: 2}
groups:
  - {region: us-east-1, count: 1, name: win, platform: Microsoft Windows Server 2022, missing: 1}
`)
	sc, err := LoadScenario(good)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	clk := clock.NewStep(t0)
	s := New(sc, clk)
	in := s.Instances("111122223333", "us-east-1")[0]
	if n := len(in.approved(clk.Now())); n != 1 {
		t.Errorf("before the release: %d approved patches, want 1", n)
	}
	clk.Advance(24 * time.Hour)
	ps := in.approved(clk.Now())
	if len(ps) != 3 || !strings.HasPrefix(ps[2].kb, "KB") {
		t.Errorf("after the release: %+v, want 3 patches named by KB", ps)
	}
	s.SetObject("records", "k", []byte("v"))
	if got, ok := s.Object("records", "k"); !ok || string(got) != "v" {
		t.Error("the scenario's bucket must exist")
	}
	for name, text := range map[string]string{
		"bucket without region": "accounts: [\"1\"]\nbuckets: [{name: b, account: \"1\"}]\n",
		"bucket twice":          "accounts: [\"1\"]\nbuckets: [{name: b, account: \"1\", region: r}, {name: b, account: \"2\", region: r}]\n",
		"release without count": "accounts: [\"1\"]\nreleases: [{after: 1h}]\n",
	} {
		if _, err := LoadScenario(write("bad.yaml", text)); err == nil {
			t.Errorf("%s: want an error", name)
		}
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
