package verify

import (
	"context"
	"fmt"
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
	// rescanPollTail is the wait between polls for the last few instances
	// while their rescan is due: such a poll is one call (by id), and the
	// last rescan of a phase is what the next phase waits for.
	rescanPollTail = 2 * time.Minute
	// inventoryPass is how long after a patch a rescan is due at the
	// latest: SSM inventory passes 30 minutes apart by default, and a
	// margin for Inspector to process one.
	inventoryPass = 35 * time.Minute
)

// rescanPace is how long to wait before the next coverage poll. Inspector
// rescans an instance some time after its patch (after the next SSM
// inventory, 30 minutes apart by default), about the same time for the
// instances of one fleet: the delay seen on those already rescanned
// predicts when the rest are due, and the poll comes a minute after the
// first of them is, then less and less often while it is late. Before any
// delay is seen the wait doubles from a minute. last is the previous wait.
// covered holds only rescans whose delay is known (see inspector): the
// lastScannedAt of an instance rescanned long ago has moved on with later
// inventory passes and says nothing of when its first rescan came.
//
// tail: the next poll is one call by id. Then, until the latest waiting
// patch is an inventory pass old (or as old as the longest delay seen),
// the polls come every rescanPollTail: the rescan is due at any moment and
// a poll costs little, while a late look delays the next phase.
func rescanPace(now time.Time, ended map[string]time.Time, covered map[string]insptypes.CoveredResource, waiting []string, last time.Duration, tail bool) time.Duration {
	var delays []time.Duration
	for id, c := range covered {
		if d := aws.ToTime(c.LastScannedAt).Sub(ended[id]); d > 0 {
			delays = append(delays, d)
		}
	}
	if len(waiting) == 0 {
		return min(max(last*2, rescanPollMin), rescanPollMax)
	}
	first, latest := ended[waiting[0]], ended[waiting[0]]
	for _, id := range waiting {
		if ended[id].Before(first) {
			first = ended[id]
		}
		if ended[id].After(latest) {
			latest = ended[id]
		}
	}
	slices.Sort(delays)
	var due time.Time
	if len(delays) > 0 {
		due = first.Add(delays[len(delays)/2])
		if wait := due.Sub(now); wait > 0 {
			return min(wait+rescanPollMin, rescanPollMax)
		}
	}
	window := inventoryPass
	if len(delays) > 0 {
		window = max(window, delays[len(delays)-1])
	}
	if tail && now.Before(latest.Add(window)) {
		return rescanPollTail
	}
	if len(delays) == 0 {
		return min(max(last*2, rescanPollMin), rescanPollMax)
	}
	return min(max(now.Sub(due), rescanPollMin), rescanPollMax) // late: less and less often
}

// rescanned reports whether Inspector scanned the instance successfully after its patch.
func rescanned(c insptypes.CoveredResource, patchEnded time.Time) bool {
	return c.ScanStatus != nil && c.ScanStatus.StatusCode == insptypes.ScanStatusCodeActive &&
		c.LastScannedAt != nil && c.LastScannedAt.After(patchEnded)
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
	// Wait for a scan newer than each patch: agent-based scans follow SSM
	// inventory, every 30 minutes by default, so they arrive at any minute;
	// a poll a minute notices them promptly. Listed by tag, each poll asks
	// only for scans since the previous one (less a margin for Inspector's
	// eventual consistency), so a poll costs about a call, not one per
	// instance.
	sc := newScope(ids, s.Tags, s.TagKey)
	deadline := clk.Now().Add(s.RescanTimeout)
	const margin = 10 * time.Minute
	var lastPoll time.Time
	var slept time.Duration
	waiting := ids
	covered := map[string]insptypes.CoveredResource{}
	// timed: the rescans whose delay after the patch is known (rescanPace).
	timed := map[string]insptypes.CoveredResource{}
	polls := 0
	// Inspector rescans an instance at each inventory pass (every 30
	// minutes), not only after a patch, so "scanned since" a few minutes
	// ago still holds most of the fleet: a poll by tag costs about a full
	// pass however few instances remain. Once fewer remain than the last
	// poll by tag cost in calls (ten ids a call), they are polled by id.
	tagCalls := 0
	scopeOf := func(waiting []string) scope {
		if sc.byTag() && tagCalls > 0 && (len(waiting)+filterBatch-1)/filterBatch <= tagCalls {
			return scope{ids: waiting}
		}
		return sc.sub(waiting)
	}
	for {
		since := time.Time{}
		if sc.byTag() {
			since = ended[waiting[0]]
			for _, id := range waiting {
				if ended[id].Before(since) {
					since = ended[id]
				}
			}
			if !lastPoll.IsZero() && lastPoll.Add(-margin).After(since) {
				since = lastPoll.Add(-margin)
			}
		}
		lastPoll = clk.Now()
		poll := scopeOf(waiting)
		cov, calls, err := v.coverage(ctx, poll, since)
		if err != nil {
			return err
		}
		if poll.byTag() {
			tagCalls = calls
		}
		var still []string
		for _, id := range waiting {
			if c, ok := cov[id]; ok && rescanned(c, ended[id]) {
				covered[id] = c
				if polls > 0 {
					// Waiting at the previous poll, minutes ago: this scan is
					// its first after the patch, so its delay is known.
					timed[id] = c
				}
			} else {
				still = append(still, id)
			}
		}
		polls++
		waiting = still
		if len(waiting) == 0 || !clk.Now().Before(deadline) {
			break
		}
		next := scopeOf(waiting)
		slept = rescanPace(clk.Now(), ended, timed, waiting, slept, !next.byTag() && len(waiting) <= filterBatch)
		if err := clk.Sleep(ctx, min(slept, deadline.Sub(clk.Now()))); err != nil {
			return err
		}
	}
	// What the instances never rescanned last reported, for the reason.
	var cov map[string]insptypes.CoveredResource
	if len(waiting) > 0 {
		var err error
		if cov, _, err = v.coverage(ctx, scopeOf(waiting), time.Time{}); err != nil {
			return err
		}
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
	err := v.eachFinding(ctx, scanScope, findingFilter{statuses: []string{"ACTIVE"}, severities: severitiesFrom(s.FailOnSeverity), fixable: true}, func(lf finding) {
		if gated(lf.Finding) {
			judge(lf)
		}
	})
	if err != nil {
		return err
	}
	for _, cves := range batches(s.RequireFixed) {
		err := v.eachFinding(ctx, scanScope, findingFilter{statuses: []string{"ACTIVE"}, cves: cves}, func(lf finding) {
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
