package verify

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/result"
)

// Findings is the part of Amazon Inspector verification reads.
type Findings interface {
	ListFindings(ctx context.Context, in *inspector2.ListFindingsInput, optFns ...func(*inspector2.Options)) (*inspector2.ListFindingsOutput, error)
	ListCoverage(ctx context.Context, in *inspector2.ListCoverageInput, optFns ...func(*inspector2.Options)) (*inspector2.ListCoverageOutput, error)
}

// filterBatch is Inspector's limit on entries in one filter list.
const filterBatch = 10

// AtLeast reports whether severity is at or above threshold.
func AtLeast(severity, threshold string) bool {
	s, ok := result.SeverityRank(severity)
	if !ok {
		return true // an unknown severity is treated as serious, never ignored
	}
	t, _ := result.SeverityRank(threshold)
	return s >= t
}

func batches(ids []string) [][]string {
	var out [][]string
	for start := 0; start < len(ids); start += filterBatch {
		out = append(out, ids[start:min(start+filterBatch, len(ids))])
	}
	return out
}

func stringFilters(vals []string) []insptypes.StringFilter {
	fs := make([]insptypes.StringFilter, len(vals))
	for i, v := range vals {
		fs[i] = insptypes.StringFilter{Comparison: insptypes.StringComparisonEquals, Value: aws.String(v)}
	}
	return fs
}

// scope is how a listing finds a phase's instances. Inspector filters take
// at most 10 resource ids, so listing a large phase id by id costs a call
// per 10 instances per poll. A phase targeted by tags is listed instead by
// one of its tags (Inspector ORs the entries of one filter, so a single
// entry keeps the listing a superset) and cut to the phase's ids here.
type scope struct {
	ids []string
	in  map[string]bool
	tag [2]string // key, value; empty: list by id
}

func newScope(ids []string, tags map[string]string, prefer string) scope {
	if len(ids) <= filterBatch || len(tags) == 0 {
		return scope{ids: ids}
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	key := keys[0]
	if _, ok := tags[prefer]; ok {
		key = prefer
	}
	return scope{tag: [2]string{key, tags[key]}}.sub(ids)
}

// sub narrows the scope to ids (a subset), keeping the way it lists.
func (sc scope) sub(ids []string) scope {
	if !sc.byTag() {
		return scope{ids: ids}
	}
	in := make(map[string]bool, len(ids))
	for _, id := range ids {
		in[id] = true
	}
	return scope{ids: ids, in: in, tag: sc.tag}
}

func (sc scope) byTag() bool { return sc.tag[0] != "" }

// keep reports whether a listed resource is one of the scope's instances.
func (sc scope) keep(id string) bool { return !sc.byTag() || sc.in[id] }

// finding is a listed finding with the time that classifies it.
type finding struct {
	result.Finding
	firstObserved time.Time
}

// findingFilter is what a findings listing asks Inspector for beyond its
// scope: each field narrows it (Inspector ANDs fields, ORs the entries of
// one), so the gate lists only what it judges.
type findingFilter struct {
	statuses   []string
	severities []string // empty: every severity
	fixable    bool     // only fixAvailable YES or PARTIAL
	cves       []string // at most filterBatch; empty: every CVE
}

func (ff findingFilter) criteria() *insptypes.FilterCriteria {
	fc := &insptypes.FilterCriteria{FindingStatus: stringFilters(ff.statuses),
		FindingType: stringFilters([]string{"PACKAGE_VULNERABILITY"})}
	if len(ff.severities) > 0 {
		fc.Severity = stringFilters(ff.severities)
	}
	if ff.fixable {
		fc.FixAvailable = stringFilters([]string{string(insptypes.FixAvailableYes), string(insptypes.FixAvailablePartial)})
	}
	if len(ff.cves) > 0 {
		fc.VulnerabilityId = stringFilters(ff.cves)
	}
	return fc
}

// severitiesFrom lists Inspector's severities at or above threshold, for a
// severity filter; nil (no filter) when every severity is, or the
// threshold is not one Inspector knows.
func severitiesFrom(threshold string) []string {
	floor, ok := result.SeverityRank(threshold)
	if !ok || floor == 0 {
		return nil
	}
	out := result.Severities()[floor:]
	sort.Strings(out)
	return out
}

// findings lists the package-vulnerability findings of the scope that ff
// asks for.
func (v *Verifier) findings(ctx context.Context, sc scope, ff findingFilter) ([]finding, error) {
	var out []finding
	err := v.eachFinding(ctx, sc, ff, func(f finding) { out = append(out, f) })
	return out, err
}

// eachFinding hands each package-vulnerability finding of the scope that ff
// asks for to fn, page by page.
func (v *Verifier) eachFinding(ctx context.Context, sc scope, ff findingFilter, fn func(finding)) error {
	strs := interner{}
	var lists []*insptypes.FilterCriteria
	if sc.byTag() {
		fc := ff.criteria()
		fc.ResourceType = stringFilters([]string{"AWS_EC2_INSTANCE"})
		fc.ResourceTags = []insptypes.MapFilter{{Comparison: insptypes.MapComparisonEquals, Key: aws.String(sc.tag[0]), Value: aws.String(sc.tag[1])}}
		lists = append(lists, fc)
	} else {
		for _, b := range batches(sc.ids) {
			fc := ff.criteria()
			fc.ResourceId = stringFilters(b)
			lists = append(lists, fc)
		}
	}
	for _, fc := range lists {
		p := inspector2.NewListFindingsPaginator(v.Inspector, &inspector2.ListFindingsInput{MaxResults: aws.Int32(100), FilterCriteria: fc})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("reading Amazon Inspector findings with inspector2:ListFindings: %w", err)
			}
			for _, f := range page.Findings {
				cve, pkg := "", ""
				if d := f.PackageVulnerabilityDetails; d != nil {
					cve = aws.ToString(d.VulnerabilityId)
					if len(d.VulnerablePackages) > 0 {
						pkg = aws.ToString(d.VulnerablePackages[0].Name)
					}
				}
				for _, r := range f.Resources {
					id := aws.ToString(r.Id)
					if !sc.keep(id) {
						continue
					}
					// Interned: the SDK's strings point into buffers as large
					// as the page, and a report keeps findings to its end.
					fn(finding{Finding: result.Finding{InstanceID: strs.of(id), CVE: strs.of(cve), Severity: strs.of(string(f.Severity)), Package: strs.of(pkg),
						FixAvailable: f.FixAvailable == insptypes.FixAvailableYes || f.FixAvailable == insptypes.FixAvailablePartial, Status: strs.of(string(f.Status))},
						firstObserved: aws.ToTime(f.FirstObservedAt)})
				}
			}
		}
	}
	return nil
}

// interner hands out one copy of each string.
type interner map[string]string

func (in interner) of(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	s = strings.Clone(s)
	in[s] = s
	return s
}

// coverage reads Inspector's coverage of the scope; scannedSince, when set
// and the scope lists by tag, asks only for resources scanned since then.
// calls is how many ListCoverage calls it made.
func (v *Verifier) coverage(ctx context.Context, sc scope, scannedSince time.Time) (out map[string]insptypes.CoveredResource, calls int, err error) {
	out = map[string]insptypes.CoveredResource{}
	strs := interner{}
	var lists []*insptypes.CoverageFilterCriteria
	if sc.byTag() {
		fc := &insptypes.CoverageFilterCriteria{
			ResourceType:    []insptypes.CoverageStringFilter{{Comparison: insptypes.CoverageStringComparisonEquals, Value: aws.String("AWS_EC2_INSTANCE")}},
			Ec2InstanceTags: []insptypes.CoverageMapFilter{{Comparison: insptypes.CoverageMapComparisonEquals, Key: aws.String(sc.tag[0]), Value: aws.String(sc.tag[1])}},
		}
		if !scannedSince.IsZero() {
			fc.LastScannedAt = []insptypes.CoverageDateFilter{{StartInclusive: aws.Time(scannedSince)}}
		}
		lists = append(lists, fc)
	} else {
		for _, b := range batches(sc.ids) {
			fs := make([]insptypes.CoverageStringFilter, len(b))
			for i, id := range b {
				fs[i] = insptypes.CoverageStringFilter{Comparison: insptypes.CoverageStringComparisonEquals, Value: aws.String(id)}
			}
			lists = append(lists, &insptypes.CoverageFilterCriteria{ResourceId: fs})
		}
	}
	for _, fc := range lists {
		p := inspector2.NewListCoveragePaginator(v.Inspector, &inspector2.ListCoverageInput{MaxResults: aws.Int32(200), FilterCriteria: fc})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			calls++
			if err != nil {
				return nil, calls, fmt.Errorf("reading Amazon Inspector coverage with inspector2:ListCoverage: %w", err)
			}
			for _, c := range page.CoveredResources {
				if id := aws.ToString(c.ResourceId); sc.keep(id) {
					// Only what the gate reads, in strings of its own: a
					// wait holds one per instance.
					t := insptypes.CoveredResource{LastScannedAt: c.LastScannedAt}
					if c.ScanStatus != nil {
						t.ScanStatus = &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCode(strs.of(string(c.ScanStatus.StatusCode))),
							Reason: insptypes.ScanStatusReason(strs.of(string(c.ScanStatus.Reason)))}
					}
					out[strs.of(id)] = t
				}
			}
		}
	}
	return out, calls, nil
}

// Bounds of the wait between coverage polls.
const (
	rescanPollMin = time.Minute
	rescanPollMax = 15 * time.Minute
	// rescanPollTail is the spacing of looks at an instance while its
	// rescan is due: the last rescan of a phase is what the next phase
	// waits for, so it is seen within this.
	rescanPollTail = 2 * time.Minute
	// inventoryInterval is SSM inventory's default cadence, which
	// agent-based Inspector scans follow: the interval assumed until
	// scans seen one after the other on the same instances tell
	// another (a user can change it).
	inventoryInterval = 30 * time.Minute
	// listingLag is how far back a listing by tag asks for scans beyond
	// the previous look: Inspector's listings are eventually consistent.
	listingLag = 10 * time.Minute
)

// watch is what the wait knows of one instance still waiting for its
// rescan.
type watch struct {
	ended time.Time // the patch end: a scan after it is the rescan
	// prev is its last scan before the patch (lastScannedAt while it
	// waits): the next comes about an inventory interval later. Zero: not
	// known (never listed, or not scanned successfully).
	prev time.Time
	seen time.Time // when a poll last found it waiting
	look time.Time // when to look at it next
	// last is what it last reported, for the reason should it never be
	// rescanned; listed: it was listed at all.
	last   insptypes.CoveredResource
	listed bool
}

// due is when the instance's next scan is expected: an interval after its
// previous one, or a whole number of intervals if a window went by
// without it (missed: a pass was skipped or the cadence is not what it
// seems).
func (w *watch) due(interval, spread time.Duration) (due time.Time, missed bool) {
	due = w.prev.Add(interval)
	// Counted, not stepped: a last scan days old is many intervals back.
	if late := w.seen.Sub(due.Add(spread)); late > 0 {
		due, missed = due.Add(interval*((late+interval-1)/interval)), true
	}
	return due, missed
}

// nextLook is when to look at the instance again, given when a poll last
// found it waiting (w.seen). Each instance is rescanned at its own
// inventory pass, some time in the interval after its patch, so what other
// instances did predicts nothing for it; its own previous scan does: its
// rescan is due in the window due ± spread.
//
// Only the last rescan of a phase delays the gate, and none comes before
// the latest window opens (latest): an instance is looked at
// rescanPollTail after the later of its window's opening and latest, then
// every rescanPollTail through its window. Without a previous scan, or
// once a window has passed without the rescan (a prediction that failed),
// it is polled regularly instead: every rescanPollTail until an interval
// and spread have passed since the patch, when its rescan was due at the
// latest, then ever less often (up to rescanPollMax); ever less often from
// its patch on if Inspector says it does not scan it.
//
// A prediction can also be late: Inspector scans off the inventory cadence
// too (when new CVEs are published), and such a scan just before the
// patch puts the predicted window up to an interval after the real pass.
// So no instance goes unlooked at for more than rescanPollMax.
func nextLook(w *watch, interval, spread time.Duration, latest time.Time, tail time.Duration) time.Time {
	seen := w.seen
	// Regular polling, for an instance whose rescan cannot be predicted:
	// steadily while it can come, then ever less often.
	regular := func() time.Time {
		end := w.ended.Add(interval + spread)
		if inactive := w.listed && !rescanned(w.last, time.Time{}); inactive {
			// Inspector says it does not scan it (INACTIVE, or never
			// scanned): a rescan may yet come, but no more often.
			end = w.ended
		}
		if seen.Before(end) {
			return seen.Add(tail)
		}
		return seen.Add(min(max(seen.Sub(end), tail), rescanPollMax))
	}
	if w.prev.IsZero() {
		return regular()
	}
	due, missed := w.due(interval, spread)
	if missed { // the prediction failed: the scans do not follow it
		return regular()
	}
	// Looks before the latest window opens tell nothing that one then
	// would not, and a look as a window opens finds nothing: a look
	// tail later sees a rescan in between just as promptly.
	from := due.Add(-spread)
	if from.Before(latest) {
		from = latest
	}
	if from.Before(seen) {
		from = seen // in its window
	}
	return earlier(from.Add(tail), seen.Add(rescanPollMax))
}

// tailSpacing is how far apart an instance is looked at through its
// rescan window: rescanPollTail, sqrt(1/chance) times that when another
// account-region may end the phase last instead (at one chance in four,
// every 4 minutes), at most rescanPollMax.
func tailSpacing(s Settings) time.Duration {
	if s.LastChance == nil {
		return rescanPollTail
	}
	c := s.LastChance()
	if c >= 1 {
		return rescanPollTail
	}
	if c <= 0 {
		return rescanPollMax
	}
	return min(time.Duration(float64(rescanPollTail)/math.Sqrt(c)), rescanPollMax)
}

// cadence is Inspector's scan interval, learnt from the previous scan and
// the rescan of the same instances.
type cadence struct{ gaps []time.Duration }

// add records an instance's rescan at scan after its previous scan prev,
// when a poll at seen found it still waiting: past the midpoint, so no
// other pass of a regular cadence fits between the two.
func (c *cadence) add(prev, seen, scan time.Time) {
	if prev.IsZero() {
		return
	}
	if g := scan.Sub(prev); g >= rescanPollMin && seen.Sub(prev) > g/2 {
		c.gaps = append(c.gaps, g)
	}
}

// minGaps is how many intervals seen replace the default.
const minGaps = 3

// interval is the median gap seen, or the inventory default.
func (c *cadence) interval() time.Duration {
	if len(c.gaps) < minGaps {
		return inventoryInterval
	}
	g := slices.Clone(c.gaps)
	slices.Sort(g)
	return g[len(g)/2]
}

// spread is how far from its due time a scan may come: the widest
// deviation from the interval seen, at least a fifth of the default
// interval (jitter is a matter of minutes, whatever the interval), at most
// half the interval.
func (c *cadence) spread() time.Duration {
	t := c.interval()
	e := inventoryInterval / 5
	if len(c.gaps) >= minGaps {
		for _, g := range c.gaps {
			e = max(e, g-t, t-g)
		}
	}
	return min(e, t/2)
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// rescanned reports whether Inspector scanned the instance successfully after its patch.
func rescanned(c insptypes.CoveredResource, patchEnded time.Time) bool {
	return c.ScanStatus != nil && c.ScanStatus.StatusCode == insptypes.ScanStatusCodeActive &&
		c.LastScannedAt != nil && c.LastScannedAt.After(patchEnded)
}

// waitRescans polls Inspector's coverage until every instance of ended
// (its patch end) was scanned after its patch, or until rescanTimeout. It
// returns the rescanned instances' coverage and, for the rest, what they
// last reported.
//
// Cost: a poll by id costs a call per 10 instances; a poll by tag costs a
// page per 200 instances scanned since its date, and Inspector scans every
// instance at each inventory pass, not only after a patch, so however few
// instances still wait a listing by tag costs about a full pass per
// inventory interval of its date range. The first poll of a phase
// targeted by tags lists by tag (a pass, the least any wait costs, and
// each instance's previous scan with it); each later poll looks only at
// the instances whose look is due, by id, or by tag when that is cheaper.
func (v *Verifier) waitRescans(ctx context.Context, clk clock.Clock, s Settings, ids []string, ended map[string]time.Time) (covered, left map[string]insptypes.CoveredResource, err error) {
	sc := newScope(ids, s.Tags, s.TagKey)
	start := clk.Now()
	deadline := start.Add(s.RescanTimeout)
	watches := make(map[string]*watch, len(ids))
	earliest := ended[ids[0]]
	for _, id := range ids {
		watches[id] = &watch{ended: ended[id], look: start}
		earliest = earlier(earliest, ended[id])
	}
	covered = map[string]insptypes.CoveredResource{}
	var cad cadence
	// What a listing by tag costs: calls per minute of its date range (up
	// to an interval), from the first one.
	var tagCalls int
	var tagRange time.Duration
	polls := 0
	for {
		now := clk.Now()
		final := !now.Before(deadline)
		interval, spread := cad.interval(), cad.spread()
		waiting := make([]string, 0, len(watches))
		var due []string
		for id, w := range watches {
			waiting = append(waiting, id)
			// Looks a minute apart are merged into one poll.
			if final || !w.look.After(now.Add(rescanPollMin)) {
				due = append(due, id)
			}
		}
		sort.Strings(waiting)
		sort.Strings(due)
		byID := (len(due) + filterBatch - 1) / filterBatch
		poll, since := scope{ids: due}, time.Time{}
		switch {
		case !sc.byTag():
		case polls == 0 && !final:
			// Scans since an interval (and spread) before the earliest
			// patch: each instance's rescan, or the scan before its patch.
			poll, since = sc.sub(waiting), earliest.Add(-interval-spread)
		default:
			// Every waiting instance, scanned since it was last seen less
			// the listing lag, but not before the earliest waiting patch
			// (an earlier scan is no rescan); the final poll asks for any
			// scan, for the reasons.
			if !final {
				first := now
				since = now
				for _, id := range waiting {
					since, first = earlier(since, watches[id].seen), earlier(first, watches[id].ended)
				}
				since = since.Add(-listingLag)
				if since.Before(first) {
					since = first
				}
			}
			r := now.Sub(since)
			if final || r > interval {
				r = interval
			}
			if cost := max(1, int(math.Ceil(float64(tagCalls)*float64(r)/float64(max(tagRange, time.Minute))))); cost < byID {
				poll = sc.sub(waiting)
			} else {
				since = time.Time{}
			}
		}
		cov, calls, err := v.coverage(ctx, poll, since)
		if err != nil {
			return nil, nil, err
		}
		if polls == 0 && poll.byTag() {
			tagCalls, tagRange = calls, min(now.Sub(since), interval)
		}
		polls++
		for _, id := range poll.ids {
			w := watches[id]
			c, ok := cov[id]
			if ok && rescanned(c, w.ended) {
				covered[id] = c
				cad.add(w.prev, w.seen, aws.ToTime(c.LastScannedAt))
				delete(watches, id)
				continue
			}
			if ok {
				w.last, w.listed = c, true
				if at := aws.ToTime(c.LastScannedAt); rescanned(c, time.Time{}) && at.After(w.prev) {
					w.prev = at // not after the patch: the scan before it
				}
			}
			w.seen = now
		}
		if len(watches) == 0 || final {
			break
		}
		interval, spread = cad.interval(), cad.spread()
		var latest time.Time
		for _, w := range watches {
			if !w.prev.IsZero() {
				// A prediction that failed once says nothing of the rest.
				if due, missed := w.due(interval, spread); !missed && due.Add(-spread).After(latest) {
					latest = due.Add(-spread)
				}
			}
		}
		tail := tailSpacing(s)
		next := deadline
		for _, w := range watches {
			w.look = nextLook(w, interval, spread, latest, tail)
			next = earlier(next, w.look)
		}
		if floor := now.Add(rescanPollMin); next.Before(floor) {
			next = floor
		}
		if s.Slack != nil {
			// Another account-region is expected to end the phase later:
			// a look that much later costs the run nothing.
			if later := now.Add(min(s.Slack(), rescanPollMax)); next.Before(later) {
				next = later
			}
		}
		if err := clk.Sleep(ctx, earlier(next, deadline).Sub(now)); err != nil {
			return nil, nil, err
		}
	}
	left = make(map[string]insptypes.CoveredResource, len(watches))
	for id, w := range watches {
		if w.listed {
			left[id] = w.last
		}
	}
	return covered, left, nil
}

// inspector waits for rescans of the patched instances and judges their findings.
// ended holds the patch end of each succeeded instance.
func (v *Verifier) inspector(ctx context.Context, s Settings, before *Snapshot, ended map[string]time.Time, res *result.Verification) error {
	clk := v.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	ids := make([]string, 0, len(ended))
	for id := range ended {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	insp := &result.Inspector{FixedBySeverity: map[string]int{}, RemainingBySeverity: map[string]int{}}
	res.Inspector = insp
	if len(ids) == 0 {
		return nil
	}
	covered, cov, err := v.waitRescans(ctx, clk, s, ids, ended)
	if err != nil {
		return err
	}
	for _, id := range ids {
		c, ok := covered[id]
		if !ok {
			c = cov[id]
		}
		e := result.Coverage{InstanceID: id, PatchEndedAt: ended[id], LastScannedAt: aws.ToTime(c.LastScannedAt)}
		if c.ScanStatus != nil {
			e.ScanStatus, e.Reason = string(c.ScanStatus.StatusCode), string(c.ScanStatus.Reason)
		}
		if !ok {
			if e.ScanStatus == "" {
				e.ScanStatus, e.Reason = "NOT_COVERED", "Inspector does not cover this instance"
			} else if e.Reason == "" || e.Reason == string(insptypes.ScanStatusReasonSuccessful) {
				e.Reason = fmt.Sprintf("no scan newer than the patch within rescanTimeout %s", s.RescanTimeout)
			}
			insp.Uncovered = append(insp.Uncovered, e)
		}
		insp.Evidence = append(insp.Evidence, e)
	}
	if len(insp.Uncovered) > 0 {
		names := make([]string, len(insp.Uncovered))
		for i, u := range insp.Uncovered {
			names[i] = u.InstanceID
		}
		res.Reasons = append(res.Reasons, result.Reason{Code: "no-rescan", Instances: names,
			Message: fmt.Sprintf("%d patched instances have no Inspector scan newer than their patch (%s): no evidence their vulnerabilities are closed", len(names), insp.Uncovered[0].Reason)})
		if res.Verdict == result.StatusPassed {
			res.Verdict = result.StatusInconclusive
		}
	}
	var scanned []string
	for _, id := range ids {
		if _, ok := covered[id]; ok {
			scanned = append(scanned, id)
		}
	}
	// The gate judges two kinds of findings, and only those are listed:
	// ACTIVE with a fix at or above failOnSeverity (each blocks), and
	// ACTIVE of a requireFixed CVE (each blocks, whatever its severity or
	// fix). Listing every finding, fixed and unfixable ones too, cost a
	// call per 100 findings: ~30 an instance on a real fleet, ten times
	// the rest of the run. What is not listed is not counted either
	// (insp.Listed says so), so no report shows a made-up zero.
	// Inspector's timestamps tell what was there before the phase: a
	// finding first observed before it was ACTIVE then. Each is judged as
	// it is listed: a large phase's findings are never held twice.
	taken := before.taken()
	insp.Listed = &result.FindingsListed{MinSeverity: s.FailOnSeverity, RequiredCVEs: slices.Clone(s.RequireFixed)}
	var blocking, unfixedRequired []result.Finding
	gated := func(f result.Finding) bool { return f.FixAvailable && AtLeast(f.Severity, s.FailOnSeverity) }
	judge := func(lf finding) {
		f := lf.Finding
		if f.Status != "ACTIVE" {
			return // the filter asks for ACTIVE only; a stray is not evidence
		}
		switch {
		case lf.firstObserved.Before(taken) && f.FixAvailable:
			insp.Remaining = append(insp.Remaining, f)
		case lf.firstObserved.Before(taken):
			insp.NoFix = append(insp.NoFix, f)
		default:
			insp.New = append(insp.New, f)
		}
		if gated(f) {
			insp.RemainingBySeverity[f.Severity]++
			blocking = append(blocking, f)
		}
		if slices.Contains(s.RequireFixed, f.CVE) {
			unfixedRequired = append(unfixedRequired, f)
		}
	}
	scanScope := newScope(scanned, s.Tags, s.TagKey)
	err = v.eachFinding(ctx, scanScope, findingFilter{statuses: []string{"ACTIVE"}, severities: severitiesFrom(s.FailOnSeverity), fixable: true}, func(lf finding) {
		if gated(lf.Finding) {
			judge(lf)
		}
	})
	if err != nil {
		return err
	}
	for _, cves := range batches(s.RequireFixed) {
		err = v.eachFinding(ctx, scanScope, findingFilter{statuses: []string{"ACTIVE"}, cves: cves}, func(lf finding) {
			// Gated ones came with the listing above.
			if !gated(lf.Finding) && slices.Contains(cves, lf.CVE) {
				judge(lf)
			}
		})
		if err != nil {
			return err
		}
	}
	if len(insp.NoFix) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d ACTIVE findings of requireFixed CVEs have no fix available, e.g. %s on %s",
			len(insp.NoFix), insp.NoFix[0].CVE, insp.NoFix[0].InstanceID))
	}
	if len(blocking) > 0 {
		res.Verdict = result.StatusFailed
		res.Reasons = append(res.Reasons, result.Reason{Code: "inspector-severity", Instances: instancesOf(blocking), CVEs: cvesOf(blocking),
			Message: fmt.Sprintf("%d ACTIVE findings at or above %s with a fix available remain after patching, e.g. %s (%s) on %s",
				len(blocking), s.FailOnSeverity, blocking[0].CVE, blocking[0].Severity, blocking[0].InstanceID)})
	}
	if len(unfixedRequired) > 0 {
		res.Verdict = result.StatusFailed
		res.Reasons = append(res.Reasons, result.Reason{Code: "require-fixed", Instances: instancesOf(unfixedRequired), CVEs: cvesOf(unfixedRequired),
			Message: fmt.Sprintf("%s is still ACTIVE on %s: requireFixed demands it CLOSED on every patched instance", unfixedRequired[0].CVE, unfixedRequired[0].InstanceID)})
	}
	return nil
}

func instancesOf(fs []result.Finding) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range fs {
		if !seen[f.InstanceID] {
			seen[f.InstanceID] = true
			out = append(out, f.InstanceID)
		}
	}
	return out
}

func cvesOf(fs []result.Finding) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range fs {
		if !seen[f.CVE] {
			seen[f.CVE] = true
			out = append(out, f.CVE)
		}
	}
	sort.Strings(out)
	return out
}
