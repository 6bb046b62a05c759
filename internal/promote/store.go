package promote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/patchgate/patchgate/internal/policy"
)

// S3API is the part of the S3 client the store uses.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// ParamAPI is the part of the SSM client the store uses.
type ParamAPI interface {
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Store keeps promotion records in the policy's home account and region.
//
// Layout, under the policy's prefix P (default "patchgate"):
//
//	s3://BUCKET/P/records/POLICY/PHASE/DIGEST/SEQ.json   the record (SEQ: 10 digits)
//	/P/records/POLICY/PHASE/DIGEST/SEQ                   its SHA-256, in Parameter Store
//	s3://BUCKET/P/override-lists/POLICY/PHASE/DIGEST/SEQ/OS.yaml   replay lists
//
// DIGEST is the hex of the policy digest. A record is created with
// If-None-Match: * and its parameter without Overwrite, so neither is ever
// replaced; a run that loses the race for a SEQ is told who won.
type Store struct {
	S3     S3API
	SSM    ParamAPI
	Bucket string
	Region string // the bucket's, for the URLs instances read lists from
	Prefix string
	Log    *slog.Logger
}

// NewStore is a store over the policy's spec.rings.store, with clients for
// its account and region.
func NewStore(s3c S3API, ssmc ParamAPI, st *policy.RingStore) *Store {
	return &Store{S3: s3c, SSM: ssmc, Bucket: st.Bucket, Region: st.Region, Prefix: st.RingPrefix(), Log: slog.Default()}
}

// AccessError is a call the store's credentials may not make. A run that
// meets one stops before sending anything (exit 2).
type AccessError struct {
	Action   string // the IAM action: s3:PutObject, ssm:GetParameter, ...
	Resource string // the bucket and key, or the parameter
	Err      error
}

func (e *AccessError) Error() string {
	return fmt.Sprintf("promotion store: %s denied on %s: grant %s on it to the role patchgate runs as in the store's account: %v", e.Action, e.Resource, e.Action, e.Err)
}

func (e *AccessError) Unwrap() error { return e.Err }

// RaceLostError is a Put that another run beat to the same record.
type RaceLostError struct {
	Key string
	// Winner is the record that was written, nil when it could not be read.
	Winner *Record
}

func (e *RaceLostError) Error() string {
	if e.Winner == nil {
		return fmt.Sprintf("promotion record %s was created by another run at the same moment; this run's record was not written", e.Key)
	}
	return fmt.Sprintf("promotion record %s was created first by run %q (%s, verdict %s); this run's record was not written",
		e.Key, e.Winner.RunID, e.Winner.RunURL, e.Winner.Verdict)
}

// CorruptError is a record that cannot be trusted: unreadable, not of this
// schema, not the record its key names, or not matching the digest kept
// in Parameter Store. Promotion stops; nothing is sent.
type CorruptError struct {
	Key    string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("promotion record %s is refused: %s; inspect or remove it (and its parameter) by hand, then re-run", e.Key, e.Reason)
}

func (s *Store) s3URL(key string) string { return "s3://" + s.Bucket + "/" + key }

func (s *Store) dir(policyName, phase, digest string) string {
	return path.Join(s.Prefix, "records", policyName, phase, strings.TrimPrefix(digest, "sha256:")) + "/"
}

// Key is the object key of a record.
func (s *Store) Key(policyName, phase, digest string, seq int) string {
	return s.dir(policyName, phase, digest) + fmt.Sprintf("%010d.json", seq)
}

// Parameter is the Parameter Store name holding the digest of the record at key.
func (s *Store) Parameter(key string) string { return "/" + strings.TrimSuffix(key, ".json") }

// wrap names the bucket or parameter and the IAM action of a failed call.
func (s *Store) wrap(action, resource string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		// The codes the rollout treats as denied (rollout/apierr.go), and S3's own.
		case "AccessDenied", "AccessDeniedException", "AllAccessDisabled", "InvalidAccessKeyId", "UnauthorizedOperation",
			"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException", "ExpiredToken", "SignatureDoesNotMatch", "AuthFailure":
			return &AccessError{Action: action, Resource: resource, Err: err}
		case "NoSuchBucket":
			return fmt.Errorf("promotion store: bucket %s does not exist (in the store's account and region?): create it or fix spec.rings.store: %w", s.Bucket, err)
		}
	}
	return fmt.Errorf("promotion store: %s on %s: %w", action, resource, err)
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Check proves the store can be read and written before a run sends
// anything: it creates a marker object and parameter if absent (an answer
// that they already exist proves the permission too, as AWS authorizes a
// call before it checks its condition) and reads them back and lists the
// records. An AccessError names the missing action.
func (s *Store) Check(ctx context.Context) error {
	key := path.Join(s.Prefix, "access-check")
	marker := []byte("patchgate promotion store\n")
	if _, err := s.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key, Body: bytes.NewReader(marker), IfNoneMatch: aws.String("*")}); err != nil && code(err) != "PreconditionFailed" {
		return s.wrap("s3:PutObject", s.s3URL(key), err)
	}
	out, err := s.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		return s.wrap("s3:GetObject", s.s3URL(key), err)
	}
	_ = out.Body.Close()
	prefix := path.Join(s.Prefix, "records") + "/"
	if _, err := s.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: &prefix, MaxKeys: aws.Int32(1)}); err != nil {
		return s.wrap("s3:ListBucket", s.s3URL(prefix), err)
	}
	name := "/" + key
	if _, err := s.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: &name, Value: aws.String("patchgate promotion store"), Type: ssmtypes.ParameterTypeString}); err != nil && code(err) != "ParameterAlreadyExists" {
		return s.wrap("ssm:PutParameter", name, err)
	}
	if _, err := s.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: &name}); err != nil {
		return s.wrap("ssm:GetParameter", name, err)
	}
	return nil
}

// seqs lists the sequence numbers of the records of a policy, phase and
// digest, highest first. Keys that are not SEQ.json are ignored.
func (s *Store) seqs(ctx context.Context, dir string) ([]int, error) {
	var out []int
	var token *string
	for {
		page, err := s.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: &dir, ContinuationToken: token})
		if err != nil {
			return nil, s.wrap("s3:ListBucket", s.s3URL(dir), err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), dir)
			num, ok := strings.CutSuffix(name, ".json")
			if !ok || len(num) != 10 {
				continue
			}
			if n, err := strconv.Atoi(num); err == nil && n > 0 {
				out = append(out, n)
			}
		}
		if !aws.ToBool(page.IsTruncated) || page.NextContinuationToken == nil {
			break
		}
		token = page.NextContinuationToken
	}
	sort.Sort(sort.Reverse(sort.IntSlice(out)))
	return out, nil
}

// Put writes rec as the next record of its policy, phase and digest, and
// its digest to Parameter Store. It sets rec.Seq and returns the key.
// Nothing is overwritten: when another run created the same record first,
// Put returns a *RaceLostError naming it.
func (s *Store) Put(ctx context.Context, rec *Record) (string, error) {
	if rec.Schema == "" {
		rec.Schema = Schema
	}
	seqs, err := s.seqs(ctx, s.dir(rec.Policy, rec.Phase, rec.Digest))
	if err != nil {
		return "", err
	}
	rec.Seq = 1
	if len(seqs) > 0 {
		rec.Seq = seqs[0] + 1
	}
	data, err := rec.Encode()
	if err != nil {
		return "", err
	}
	key := s.Key(rec.Policy, rec.Phase, rec.Digest, rec.Seq)
	_, err = s.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key, Body: bytes.NewReader(data),
		IfNoneMatch: aws.String("*"), ContentType: aws.String("application/json")})
	switch code(err) {
	case "":
	case "PreconditionFailed", "ConditionalRequestConflict":
		// Another run created this SEQ first (412), or is creating it
		// (409) - or this very write landed and the SDK retried it after
		// its response was lost: then the object holds our bytes.
		b, gerr := s.get(ctx, key)
		if gerr != nil || !bytes.Equal(b, data) {
			lost := &RaceLostError{Key: s.s3URL(key)}
			if gerr == nil {
				lost.Winner, _ = Decode(b)
			}
			return "", lost
		}
	default:
		return "", s.wrap("s3:PutObject", s.s3URL(key), err)
	}
	name := s.Parameter(key)
	sum := sha(data)
	if _, err := s.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: &name, Value: &sum, Type: ssmtypes.ParameterTypeString,
		Description: aws.String("SHA-256 of " + s.s3URL(key))}); err != nil {
		if code(err) == "ParameterAlreadyExists" {
			// Left by an earlier try of this very write? Only the same digest will do.
			got, gerr := s.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: &name})
			if gerr == nil && aws.ToString(got.Parameter.Value) == sum {
				return key, nil
			}
			return "", fmt.Errorf("promotion store: parameter %s already exists with another digest; record %s is written but unverifiable and will be ignored: %w", name, s.s3URL(key), err)
		}
		return "", fmt.Errorf("record %s is written but its digest is not (it will be ignored): %w", s.s3URL(key), s.wrap("ssm:PutParameter", name, err))
	}
	return key, nil
}

func (s *Store) get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		return nil, s.wrap("s3:GetObject", s.s3URL(key), err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, MaxRecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("promotion store: reading %s: %w", s.s3URL(key), err)
	}
	return data, nil
}

// Latest returns the newest record of a policy's phase at digest, nil when
// there is none. A record whose digest never reached Parameter Store (its
// run stopped between the two writes) is skipped with a warning; one that
// does not match its digest, is not valid JSON of the schema, has unknown
// fields or is not the record its key names is refused with a
// *CorruptError.
func (s *Store) Latest(ctx context.Context, policyName, phase, digest string) (*Record, error) {
	var newest *Record
	err := s.walk(ctx, policyName, phase, digest, func(rec *Record) bool { newest = rec; return false })
	return newest, err
}

// walk reads the records of a policy, phase and digest newest first, each
// checked as Latest checks it, and hands each to fn until fn returns false.
// A record that cannot be trusted stops the walk with a *CorruptError.
func (s *Store) walk(ctx context.Context, policyName, phase, digest string, fn func(*Record) bool) error {
	seqs, err := s.seqs(ctx, s.dir(policyName, phase, digest))
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		key := s.Key(policyName, phase, digest, seq)
		data, err := s.get(ctx, key)
		if err != nil {
			return err
		}
		name := s.Parameter(key)
		p, err := s.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: &name})
		if code(err) == "ParameterNotFound" {
			if s.Log != nil {
				s.Log.Warn("promotion record has no digest in Parameter Store; ignoring it", "record", s.s3URL(key), "parameter", name)
			}
			continue
		}
		if err != nil {
			return s.wrap("ssm:GetParameter", name, err)
		}
		if got, want := sha(data), aws.ToString(p.Parameter.Value); got != want {
			return &CorruptError{Key: s.s3URL(key), Reason: fmt.Sprintf("its SHA-256 is %s but parameter %s says %s (changed after it was written)", short(got), name, short(want))}
		}
		if len(data) > MaxRecordSize {
			return &CorruptError{Key: s.s3URL(key), Reason: "larger than a record can be"}
		}
		rec, err := Decode(data)
		if err != nil {
			return &CorruptError{Key: s.s3URL(key), Reason: err.Error()}
		}
		if rec.Policy != policyName || rec.Phase != phase || rec.Digest != digest || rec.Seq != seq {
			return &CorruptError{Key: s.s3URL(key), Reason: fmt.Sprintf("it is the record of %s/%s seq %d at %s, not of the key it is stored at", rec.Policy, rec.Phase, rec.Seq, short(rec.Digest))}
		}
		if !fn(rec) {
			return nil
		}
	}
	return nil
}
