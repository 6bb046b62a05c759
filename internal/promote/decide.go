package promote

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/patchgate/patchgate/internal/policy"
)

// Decision is whether a phase may run now, for the plan, the engine and
// the report.
type Decision struct {
	Phase string
	// From is the source phase; empty when the phase has no promotion.
	From   string
	Digest string
	// Eligible: the phase may run. When it may not, the run skips it with
	// status waiting and exit 0 (docs/policy.md, "Promotion").
	Eligible   bool
	Reason     string
	EligibleAt time.Time
	// Source is the newest record of From at Digest, nil without one.
	Source *Record
}

// Decide reads the newest record of the phase's source and judges it at
// now. A phase without a promotion is eligible without a read. An error
// (the store unreadable, a record refused) stops the run before anything
// is sent.
func (s *Store) Decide(ctx context.Context, p *policy.Policy, st *policy.Stage, now time.Time) (Decision, error) {
	d := Decision{Phase: st.Name, Eligible: true, Reason: "no promotion"}
	pr := st.Promotion
	if pr == nil {
		return d, nil
	}
	digest, err := Digest(p)
	if err != nil {
		return Decision{}, err
	}
	d.From, d.Digest = pr.From, digest
	// The newest record decides, unless it passed too recently: then an
	// older pass may be in its window (staging runs daily, production
	// promotes from the pass of three days ago). A failure newer than any
	// eligible pass blocks: something regressed since.
	var rec *Record
	err = s.walk(ctx, p.Metadata.Name, pr.From, digest, func(r *Record) bool {
		ok, _, _ := Eligible(r, pr.MinAge, pr.MaxAge, now, digest)
		if rec == nil || ok {
			rec = r
		}
		return !ok && r.Verdict == Passed && now.Sub(r.Time) < pr.MinAge
	})
	if err != nil {
		return Decision{}, err
	}
	if ok, _, _ := Eligible(rec, pr.MinAge, pr.MaxAge, now, digest); !ok && rec != nil {
		// Say why about the newest record, which is what a reader expects.
		if newest, lerr := s.Latest(ctx, p.Metadata.Name, pr.From, digest); lerr == nil && newest != nil {
			rec = newest
		}
	}
	d.Source = rec
	d.Eligible, d.Reason, d.EligibleAt = Eligible(rec, pr.MinAge, pr.MaxAge, now, digest)
	if rec == nil {
		// Say so when the source did run, at another revision: the
		// policy changed since, which is why nothing counts.
		others, err := s.revisions(ctx, p.Metadata.Name, pr.From)
		if err != nil {
			return Decision{}, err
		}
		if len(others) > 0 {
			d.Reason += fmt.Sprintf(" (%s has records at %d other revision(s) of the policy, which changed since)", pr.From, len(others))
		}
	}
	return d, nil
}

// revisions lists the digests (hex) a policy's phase has records at.
func (s *Store) revisions(ctx context.Context, policyName, phase string) ([]string, error) {
	dir := path.Join(s.Prefix, "records", policyName, phase) + "/"
	var out []string
	for p := s3.NewListObjectsV2Paginator(s.S3, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: &dir, Delimiter: aws.String("/")}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.wrap("s3:ListBucket", s.s3URL(dir), err)
		}
		for _, cp := range page.CommonPrefixes {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), dir), "/"))
		}
	}
	return out, nil
}
