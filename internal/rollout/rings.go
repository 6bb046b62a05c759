package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/promote"
	"github.com/patchgate/patchgate/internal/result"
)

// StoreConnect builds the promotion store of a policy's spec.rings.store
// (its account, role and region).
type StoreConnect func(ctx context.Context, rs *policy.RingStore) (*promote.Store, error)

// openStore connects the policy's promotion store and, unless this is a
// dry run, proves it can be read and written before anything is sent.
func (pr *policyRun) openStore(ctx context.Context) error {
	rings := pr.plan.Rings
	if rings == nil || rings.Store == nil {
		return nil
	}
	if pr.e.opt.Store == nil {
		return fmt.Errorf("promotion store s3://%s: this run has no way to reach it", rings.Store.Bucket)
	}
	st, err := pr.e.opt.Store(ctx, rings.Store)
	if err != nil {
		return fmt.Errorf("promotion store s3://%s in %s/%s: %w", rings.Store.Bucket, orSelf(rings.Store.Account), rings.Store.Region, err)
	}
	if !pr.e.opt.DryRun {
		if err := st.Check(ctx); err != nil {
			return err
		}
	}
	pr.store = st
	return nil
}

// decideAll decides, before anything is sent, whether each promoted phase
// may run in this run: when its source phase has an eligible record. A
// record that cannot be trusted, or a store that cannot be read, stops
// the policy here.
func (pr *policyRun) decideAll(ctx context.Context) error {
	pr.decisions = map[int]promote.Decision{}
	for i := range pr.plan.Stages {
		st := &pr.plan.Stages[i]
		if st.Promotion == nil {
			continue
		}
		if pr.store == nil {
			return fmt.Errorf("phase %s is promoted from %s, but the policy has no spec.rings.store", st.Name, st.Promotion.From)
		}
		d, err := pr.store.Decide(ctx, pr.p, st, pr.e.opt.Clock.Now())
		if err != nil {
			return fmt.Errorf("promotion of phase %s: %w", st.Name, err)
		}
		pr.decisions[i] = d
	}
	return nil
}

// replay prepares a promoted phase: which record it is promoted from and,
// with replay, the AWS-RunPatchBaseline parameter that installs exactly the
// source's patch set (InstallOverrideList) or, where an operating system
// cannot be replayed patch by patch, a baseline cut off at the source's
// time (BaselineOverride).
func (pr *policyRun) replay(ctx context.Context, st *policy.Stage, dec promote.Decision) (*result.Promotion, map[string][]string, error) {
	src := dec.Source
	if src == nil {
		return nil, nil, nil
	}
	promo := &result.Promotion{From: dec.From, Record: pr.store.Key(src.Policy, src.Phase, src.Digest, src.Seq), SourceRun: src.RunID,
		SourceURL: src.RunURL, SourceTime: src.Time}
	if !st.Promotion.Replay {
		promo.Note = "replay is off: the baseline as it is today decides what installs"
		return promo, nil, nil
	}
	for _, ps := range src.Patches {
		if ps.OS == pr.p.Spec.OperatingSystem {
			promo.Patches = len(ps.Patches)
		}
	}
	if pr.e.opt.DryRun {
		promo.Note = "dry run: the replay list is written when the phase is sent"
		return promo, nil, nil
	}
	replays, err := pr.store.OverrideList(ctx, src, pr.p)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range replays {
		if r.OS != pr.p.Spec.OperatingSystem {
			continue
		}
		promo.Mechanism, promo.Exact, promo.Note = r.Mechanism, r.Exact, r.Note
		if r.Parameter == "" {
			return promo, nil, nil
		}
		if pr.plan.Hooks.Set() && r.Parameter == "InstallOverrideList" {
			// AWS-RunPatchBaselineWithHooks takes no InstallOverrideList.
			return nil, nil, fmt.Errorf("phase %s replays %s's patch set with InstallOverrideList, which AWS-RunPatchBaselineWithHooks (install.hooks) does not take: drop the hooks or set promotion.replay: false", st.Name, dec.From)
		}
		return promo, map[string][]string{r.Parameter: {r.URL}}, nil
	}
	return nil, nil, fmt.Errorf("promotion record %s has no replay for %s", promo.Record, pr.p.Spec.OperatingSystem)
}

// record writes the phase's promotion record to the store once the phase
// has ended everywhere it ran: its verdict, and for a pass the exact patch
// set it installed (read back from each instance's installed patches in
// the phase's window). A promoted phase that installed a patch outside its
// source's set fails. A record another run wrote first is reported, never
// overwritten.
func (pr *policyRun) record(ctx context.Context, here []*slot, st *policy.Stage, dec promote.Decision, promo *result.Promotion) {
	if pr.store == nil || pr.e.opt.DryRun || ctx.Err() != nil {
		return
	}
	var started time.Time
	var sets [][]promote.OSPatches
	ran := false
	for _, s := range here {
		rp := &s.res.Phases[len(s.res.Phases)-1]
		if rp.Status == result.StatusSkipped || rp.Counts.Targeted == rp.Counts.Skipped {
			continue
		}
		ran = true
		if started.IsZero() || rp.StartedAt.Before(started) {
			started = rp.StartedAt
		}
		if rp.Status != result.StatusPassed {
			continue
		}
		var targets []promote.Target
		for _, w := range rp.Waves {
			for _, in := range w.Instances {
				if in.Outcome == result.OutcomeSucceeded {
					targets = append(targets, promote.Target{InstanceID: in.ID, OS: pr.p.Spec.OperatingSystem})
				}
			}
		}
		if s.t.c.Patches == nil {
			pr.locked(func() {
				fail(rp, result.StatusError, "record", "cannot read the installed patches here (no ssm:DescribeInstancePatches client)")
			})
			continue
		}
		got, err := promote.PatchSet(ctx, s.t.c.Patches, targets, rp.StartedAt, pr.e.opt.Clock.Now())
		if err != nil {
			pr.locked(func() { fail(rp, result.StatusError, apiErrorCode(err, "record"), err.Error()) })
			continue
		}
		if promo != nil && promo.Exact && dec.Source != nil {
			if extra := promote.Outside(dec.Source.Patches, got); len(extra) > 0 {
				pr.locked(func() {
					fail(rp, result.StatusFailed, "replay-outside", fmt.Sprintf("installed %s outside the patch set of %s, e.g. %s",
						countPatches(extra), promo.Record, extra[0].Patches[0].Title))
				})
				continue
			}
		}
		sets = append(sets, got)
	}
	if !ran {
		return
	}
	verdict, reason := promote.Passed, ""
	for _, s := range here {
		rp := s.res.Phases[len(s.res.Phases)-1]
		if rp.Status != result.StatusPassed && rp.Status != result.StatusSkipped {
			verdict = promote.Failed
			if reason == "" && len(rp.Reasons) > 0 {
				reason = fmt.Sprintf("%s/%s: %s", s.res.AccountID, s.region, rp.Reasons[0].Message)
			}
		}
	}
	digest, err := promote.Digest(pr.p)
	if err != nil {
		pr.locked(func() { pr.failAll(here, "record", err.Error()) })
		return
	}
	rec := &promote.Record{Policy: pr.p.Metadata.Name, Phase: st.Name, Digest: digest, Commit: pr.e.opt.Commit, RunID: pr.e.opt.RunID,
		RunURL: pr.e.opt.RunURL, SnapshotID: pr.e.snapshot(), Started: started.UTC(), Time: pr.e.opt.Clock.Now().UTC(), Verdict: verdict,
		Reason: reason, Patches: promote.Merge(sets...)}
	if verdict == promote.Failed {
		rec.Patches = nil
	}
	if promo != nil {
		rec.ReplayOf = promo.Record
	}
	key, err := pr.store.Put(ctx, rec)
	var lost *promote.RaceLostError
	pr.e.mu.Lock()
	defer pr.e.mu.Unlock()
	switch {
	case errors.As(err, &lost):
		for _, s := range here {
			rp := &s.res.Phases[len(s.res.Phases)-1]
			rp.Reasons = append(rp.Reasons, result.Reason{Code: "record-race", Message: lost.Error()})
		}
	case err != nil:
		pr.failAll(here, "record", "the promotion record was not written: "+err.Error())
	default:
		for _, s := range here {
			s.res.Phases[len(s.res.Phases)-1].Record = key
		}
	}
}

// failAll turns the phase's verdict into status error in every slot: a
// record not written breaks the promotion chain, and the run must say so.
// The caller holds e.mu.
func (pr *policyRun) failAll(here []*slot, code, msg string) {
	for _, s := range here {
		fail(&s.res.Phases[len(s.res.Phases)-1], result.StatusError, code, msg)
	}
}

// locked runs fn holding the engine's lock: the phases it changes are
// shared with the copies OnProgress readers hold.
func (pr *policyRun) locked(fn func()) {
	pr.e.mu.Lock()
	defer pr.e.mu.Unlock()
	fn()
}

func fail(rp *result.Phase, s result.Status, code, msg string) {
	if s.Severity() > rp.Status.Severity() || rp.Status == result.StatusPassed {
		rp.Status = s
	}
	rp.Reasons = append([]result.Reason{{Code: code, Message: msg}}, rp.Reasons...)
}

func countPatches(sets []promote.OSPatches) string {
	n := 0
	for _, s := range sets {
		n += len(s.Patches)
	}
	if n == 1 {
		return "1 patch"
	}
	return fmt.Sprintf("%d patches", n)
}
