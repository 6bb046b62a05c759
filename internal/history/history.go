// Package history keeps every run's result in S3, one record per policy
// and run, and reads back the last runs of a policy for the trend. The
// records are point-in-time results; what they say over time is rendered
// by internal/report. The S3 interface is this package's own (the SDK
// client satisfies it), so tests and other stores can stand in.
package history

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/patchgate/patchgate/internal/result"
)

// SchemaVersion identifies an Entry document.
const SchemaVersion = "patchgate.history/v1"

// Entry is one policy's run in numbers: what the history table and chart
// show. The full result sits beside it (ResultKey).
type Entry struct {
	SchemaVersion string        `json:"schemaVersion"`
	Policy        string        `json:"policy"`
	RunID         string        `json:"runId"`
	RunURL        string        `json:"runUrl,omitempty"`
	StartedAt     time.Time     `json:"startedAt"`
	EndedAt       time.Time     `json:"endedAt,omitzero"`
	Status        result.Status `json:"status"`
	// CompliancePercent is compliant over every targeted instance, nil
	// when the run verified nothing (a refused or halted run is no 0%).
	CompliancePercent *float64 `json:"compliancePercent,omitempty"`
	Targeted          int      `json:"targeted"`
	Patched           int      `json:"patched"`       // instances whose patch command succeeded
	CVEsFixed         int      `json:"cvesFixed"`     // Inspector findings closed by the run
	CVEsRemaining     int      `json:"cvesRemaining"` // still ACTIVE with a fix at or above the policy's threshold
	// FixedNotListed: a phase listed only the findings its gate judges,
	// so CVEsFixed is unknown, not 0.
	FixedNotListed bool   `json:"fixedNotListed,omitempty"`
	ResultKey      string `json:"resultKey,omitempty"`
}

// S3 is what the store needs of Amazon S3.
type S3 interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// Store keeps records under s3://Bucket/Prefix/<policy>/.
type Store struct {
	S3     S3
	Bucket string
	Prefix string
}

// ParseURL reads "s3://bucket/prefix" (the prefix may be empty).
func ParseURL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("history store %q: use s3://BUCKET/PREFIX", s)
	}
	if !bucketPattern.MatchString(u.Host) {
		return "", "", fmt.Errorf("history store %q: %q is not an S3 bucket name", s, u.Host)
	}
	return u.Host, strings.Trim(u.Path, "/"), nil
}

var (
	bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	keyUnsafe     = regexp.MustCompile(`[^A-Za-z0-9._-]`)
)

// maxRecord bounds what is read back for one entry.
const maxRecord = 1 << 20

// stamp orders keys by time: the listing is then the history, oldest first.
const stamp = "20060102T150405Z"

func (s *Store) dir(policy string) string {
	return path.Join(s.Prefix, keyUnsafe.ReplaceAllString(policy, "_")) + "/"
}

// Record writes each entry and, beside it, its policy's share of the run
// (the full JSON result). A resumed run writes the same keys again, so a
// run is one record however often it is resumed.
func (s *Store) Record(ctx context.Context, r *result.Run, entries []Entry) error {
	var errs []error
	for _, e := range entries {
		stem := s.dir(e.Policy) + e.StartedAt.UTC().Format(stamp) + "-" + keyUnsafe.ReplaceAllString(e.RunID, "_")
		one := *r
		one.Policies = nil
		for _, p := range r.Policies {
			if p.Name == e.Policy {
				one.Policies = append(one.Policies, p)
			}
		}
		e.SchemaVersion = SchemaVersion
		e.ResultKey = stem + ".result.json"
		if err := s.put(ctx, e.ResultKey, &one); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.put(ctx, stem+".json", &e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Store) put(ctx context.Context, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = s.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key), Body: bytes.NewReader(data),
		ContentType: aws.String("application/json")})
	if err != nil {
		return fmt.Errorf("writing s3://%s/%s (needs s3:PutObject): %w", s.Bucket, key, err)
	}
	return nil
}

// Last returns up to n of the policy's entries, oldest first.
func (s *Store) Last(ctx context.Context, policy string, n int) ([]Entry, error) {
	var keys []string
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String(s.dir(policy))}
	for pages := 0; ; pages++ {
		if pages == 10000 {
			return nil, fmt.Errorf("listing s3://%s/%s: more than 10000 pages", s.Bucket, s.dir(policy))
		}
		out, err := s.S3.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing s3://%s/%s (needs s3:ListBucket): %w", s.Bucket, s.dir(policy), err)
		}
		for _, o := range out.Contents {
			if k := aws.ToString(o.Key); strings.HasSuffix(k, ".json") && !strings.HasSuffix(k, ".result.json") {
				keys = append(keys, k)
			}
		}
		if !aws.ToBool(out.IsTruncated) || aws.ToString(out.NextContinuationToken) == "" {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	sort.Strings(keys)
	var entries []Entry
	seen := map[string]bool{}
	// Newest first, so that a run recorded twice (resumed after its start
	// moved) counts once, as its latest record.
	for i := len(keys) - 1; i >= 0 && len(entries) < n; i-- {
		e, err := s.get(ctx, keys[i])
		if err != nil {
			return nil, err
		}
		if e.Policy != policy || seen[e.RunID] {
			continue
		}
		seen[e.RunID] = true
		entries = append(entries, e)
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].StartedAt.Before(entries[j].StartedAt) })
	return entries, nil
}

func (s *Store) get(ctx context.Context, key string) (Entry, error) {
	out, err := s.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		return Entry{}, fmt.Errorf("reading s3://%s/%s (needs s3:GetObject): %w", s.Bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxRecord+1))
	if err == nil && len(data) > maxRecord {
		err = fmt.Errorf("over %d bytes", maxRecord)
	}
	var e Entry
	if err == nil {
		err = json.Unmarshal(data, &e)
	}
	if err == nil && e.SchemaVersion != SchemaVersion {
		err = fmt.Errorf("schemaVersion %q, this patchgate reads %q", e.SchemaVersion, SchemaVersion)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("reading s3://%s/%s: %w", s.Bucket, key, err)
	}
	return e, nil
}
