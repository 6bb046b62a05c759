package promote

import (
	"fmt"
	"time"
)

// Eligible decides whether a phase may be promoted from rec, the newest
// record of its source phase at the policy's current digest: rec passed,
// is for digest, and is at least minAge and at most maxAge old at now.
// reason says why in words; eligibleAt is when it becomes (or became)
// eligible, zero when waiting cannot make it so (failed, too old, another
// revision: the source phase must pass again). With no record, eligibleAt
// is the earliest it could be: now plus minAge, if the source phase passed
// now.
func Eligible(rec *Record, minAge, maxAge time.Duration, now time.Time, digest string) (ok bool, reason string, eligibleAt time.Time) {
	if rec == nil {
		return false, fmt.Sprintf("no record of the source phase at this policy revision (%s): it must pass first, then wait %s", short(digest), minAge), now.Add(minAge)
	}
	from := fmt.Sprintf("%s (run %q, %s)", rec.Phase, rec.RunID, rec.Time.UTC().Format(time.RFC3339))
	switch {
	case rec.Digest != digest:
		return false, fmt.Sprintf("the record of %s is for policy revision %s, not %s", from, short(rec.Digest), short(digest)), time.Time{}
	case rec.Verdict != Passed:
		return false, fmt.Sprintf("the last run of %s failed: it must pass again", from), time.Time{}
	}
	age := now.Sub(rec.Time)
	switch {
	case age < 0:
		return false, fmt.Sprintf("the record of %s is dated in the future (clock skew?): refusing to count its age", from), time.Time{}
	case age < minAge:
		return false, fmt.Sprintf("%s passed %s ago; promotion needs at least %s", from, round(age), minAge), rec.Time.Add(minAge)
	case age > maxAge:
		return false, fmt.Sprintf("%s passed %s ago, more than the %s allowed: it must pass again", from, round(age), maxAge), time.Time{}
	}
	return true, fmt.Sprintf("%s passed %s ago, within %s to %s", from, round(age), minAge, maxAge), rec.Time.Add(minAge)
}

func round(d time.Duration) time.Duration { return d.Round(time.Minute) }

// short is a digest as people read it: algorithm and 12 hex digits.
func short(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}
