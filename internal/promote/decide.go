package promote

import (
	"context"
	"time"

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
	rec, err := s.Latest(ctx, p.Metadata.Name, pr.From, digest)
	if err != nil {
		return Decision{}, err
	}
	d.Source = rec
	d.Eligible, d.Reason, d.EligibleAt = Eligible(rec, pr.MinAge, pr.MaxAge, now, digest)
	return d, nil
}
