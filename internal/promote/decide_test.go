package promote

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/policy"
)

// TestDecideAcrossRuns follows production over a week of scheduled runs:
// waiting without a record, waiting while staging's pass is young,
// eligible in the window, and back to waiting when the policy changes.
func TestDecideAcrossRuns(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	p := ringsPolicy(t, nil)
	r, err := policy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	prod, stg := r.Stage("production"), r.Stage("staging")
	if d, err := e.store.Decide(ctx, p, stg, start); err != nil || !d.Eligible || d.From != "" {
		t.Fatalf("staging has no promotion: %+v, %v", d, err)
	}
	d, err := e.store.Decide(ctx, p, prod, start)
	if err != nil || d.Eligible || d.Source != nil || !d.EligibleAt.Equal(start.Add(72*time.Hour)) || !strings.Contains(d.Reason, "no record") {
		t.Fatalf("before staging passed: %+v, %v", d, err)
	}
	digest, _ := Digest(p)
	rec := record(Passed, start)
	rec.Digest = digest
	if _, err := e.store.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		after    time.Duration
		eligible bool
	}{{24 * time.Hour, false}, {71 * time.Hour, false}, {72 * time.Hour, true}, {200 * time.Hour, true}, {337 * time.Hour, false}} {
		d, err := e.store.Decide(ctx, p, prod, start.Add(c.after))
		if err != nil || d.Eligible != c.eligible || d.Source == nil || d.Source.RunID != "run-1" {
			t.Errorf("%s after staging: %+v, %v; want eligible %v", c.after, d, err, c.eligible)
		}
	}
	// The policy changes: staging's record is for another revision.
	changed := ringsPolicy(t, map[string]string{"approveAfterDays: 3": "approveAfterDays: 5"})
	if d, err := e.store.Decide(ctx, changed, prod, start.Add(100*time.Hour)); err != nil || d.Eligible || d.Source != nil ||
		!strings.Contains(d.Reason, "records at 1 other revision(s)") {
		t.Errorf("a changed policy must not be promoted from the old revision's record, and must say why: %+v, %v", d, err)
	}
	// A refused record stops the decision with an error.
	key := e.store.Key("payments-rings", "staging", digest, 1)
	e.sim.SetObject(bucket, key, []byte("{}"))
	var ce *CorruptError
	if _, err := e.store.Decide(ctx, p, prod, start.Add(100*time.Hour)); !errors.As(err, &ce) {
		t.Errorf("a tampered record = %v, want a *CorruptError", err)
	}
}

// TestDecidePicksTheNewestPassInItsWindow: staging passes daily; production
// promotes from the newest pass old enough, not only from the newest
// record. A failure newer than that pass blocks promotion.
func TestDecidePicksTheNewestPassInItsWindow(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	p := ringsPolicy(t, nil)
	r, err := policy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	prod := r.Stage("production")
	digest, _ := Digest(p)
	put := func(runID, verdict string, at time.Time) {
		rec := record(verdict, at)
		rec.Digest, rec.RunID = digest, runID
		if verdict == Failed {
			rec.Patches = nil
		}
		if _, err := e.store.Put(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	put("run-1", Passed, start)
	put("run-2", Passed, start.Add(24*time.Hour))
	put("run-3", Passed, start.Add(48*time.Hour))
	d, err := e.store.Decide(ctx, p, prod, start.Add(80*time.Hour))
	if err != nil || !d.Eligible || d.Source.RunID != "run-1" {
		t.Fatalf("at 80h: %+v, %v; want eligible from run-1", d, err)
	}
	d, err = e.store.Decide(ctx, p, prod, start.Add(100*time.Hour))
	if err != nil || !d.Eligible || d.Source.RunID != "run-2" {
		t.Fatalf("at 100h: %+v, %v; want eligible from run-2, the newest old enough", d, err)
	}
	put("run-4", Failed, start.Add(90*time.Hour))
	d, err = e.store.Decide(ctx, p, prod, start.Add(100*time.Hour))
	if err != nil || d.Eligible || d.Source.RunID != "run-4" || !strings.Contains(d.Reason, "failed") {
		t.Fatalf("after a newer failure: %+v, %v; want not eligible, naming run-4", d, err)
	}
}
