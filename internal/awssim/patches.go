package awssim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

func init() { extraSSM = append(extraSSM, describeInstancePatches) }

// Release publishes Count new approved patches to every instance whose
// platform contains Platform (all when empty), After the scenario starts:
// what a vendor releasing updates between two runs looks like.
type Release struct {
	After    time.Duration `yaml:"after"`
	Platform string        `yaml:"platform"`
	Count    int           `yaml:"count"`
}

// release is a Release on the clock; its patches are numbered from first.
type release struct {
	at       time.Time
	platform string
	first, n int
}

func releasesOf(sc *Scenario, start time.Time) []release {
	var out []release
	next := 1
	for _, r := range sc.Releases {
		out = append(out, release{at: start.Add(r.After), platform: r.Platform, first: next, n: r.Count})
		next += r.Count
	}
	return out
}

// ReleasePatches publishes count new approved patches at clock time at to
// the instances whose platform contains platform ("" for all).
func (s *Sim) ReleasePatches(at time.Time, platform string, count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := 1
	if n := len(s.releases); n > 0 {
		first = s.releases[n-1].first + s.releases[n-1].n
	}
	s.releases = append(s.releases, release{at: at, platform: platform, first: first, n: count})
}

// simPatch is one approved patch of an instance, named as
// DescribeInstancePatches names it: on Linux KBId is name.arch and Title
// name.arch:epoch:version-release; on Windows KBId is the KB number.
type simPatch struct {
	kb, title, classification, severity, cves string
	released                                  time.Time // zero: before the scenario
	initial                                   int       // 1-based index among the initial patches; 0 for released ones
}

func (in *Instance) windows() bool { return strings.Contains(in.Platform, "Windows") }

// approved is every approved patch of the instance at now: the scenario's
// Missing ones, then those released since.
func (in *Instance) approved(now time.Time) []simPatch {
	var out []simPatch
	for i := 0; i < in.Missing; i++ {
		p := simPatch{classification: "Security", severity: "Important", initial: i + 1}
		pkg := fmt.Sprintf("sim-pkg%02d", i+1)
		if i < len(in.Findings) {
			f := in.Findings[i]
			if f.Package != "" {
				pkg = f.Package
			}
			p.cves = f.CVE
			p.severity = strings.ToUpper(f.Severity[:1]) + strings.ToLower(f.Severity[1:])
		}
		if in.windows() {
			p.kb = fmt.Sprintf("KB50%05d", 34000+i+1)
			p.title = fmt.Sprintf("2026-10 Security Update for Microsoft server operating system (%s)", p.kb)
			p.classification, p.severity = "SecurityUpdates", "Critical"
		} else {
			p.kb = pkg + ".x86_64"
			p.title = fmt.Sprintf("%s:0:1.0.%d-1.amzn2023", p.kb, i+1)
		}
		out = append(out, p)
	}
	if in.sim == nil {
		return out
	}
	for _, r := range in.sim.releases {
		if r.at.After(now) || !strings.Contains(in.Platform, r.platform) {
			continue
		}
		for j := r.first; j < r.first+r.n; j++ {
			p := simPatch{classification: "Security", severity: "Important", released: r.at}
			if in.windows() {
				p.kb = fmt.Sprintf("KB59%05d", j)
				p.title = fmt.Sprintf("2026-11 Cumulative Update for Microsoft server operating system (%s)", p.kb)
				p.classification, p.severity = "SecurityUpdates", "Critical"
			} else {
				p.kb = fmt.Sprintf("sim-update%03d.x86_64", j)
				p.title = fmt.Sprintf("%s:0:2.0.%d-1.amzn2023", p.kb, j)
			}
			out = append(out, p)
		}
	}
	return out
}

// patchRow is a patch's state on the instance at now.
type patchRow struct {
	simPatch
	state     string
	installed time.Time
}

// succeeded are the instance's Install invocations that finished with
// Success by now and were not cancelled first, in the order they ended.
func (in *Instance) succeeded(now time.Time) []*invocation {
	var out []*invocation
	for _, inv := range in.installs {
		if inv.notStarted || inv.final != "Success" || inv.end.IsZero() || inv.end.After(now) ||
			(!inv.cancelledAt.IsZero() && inv.cancelledAt.Before(inv.end)) {
			continue
		}
		i := len(out)
		for i > 0 && out[i-1].end.After(inv.end) {
			i--
		}
		out = append(out[:i], append([]*invocation{inv}, out[i:]...)...)
	}
	return out
}

// rows is each approved patch's state at now. An Install installs the
// patches released by the time it started, only those of its
// InstallOverrideList when it has one; of the initial patches it installed,
// the first StillMissing stay missing and the next FailedAfter fail; when
// the last Install failed, the first patch not installed is Failed.
func (in *Instance) rows(now time.Time, last *invocation) []patchRow {
	done := in.succeeded(now)
	noReboot := in.NoRebootHappens
	if n := len(done); n > 0 {
		rb := done[n-1].cmd.params["RebootOption"]
		noReboot = noReboot || len(rb) > 0 && rb[0] == "NoReboot"
	}
	var out []patchRow
	failedMarked := false
	for _, p := range in.approved(now) {
		row := patchRow{simPatch: p, state: "Missing"}
		for _, inv := range done {
			if p.released.After(inv.start) || !inv.cmd.override.covers(p, in, inv.start) {
				continue
			}
			row.state, row.installed = "Installed", inv.end
			if noReboot {
				row.state = "InstalledPendingReboot"
			}
			switch {
			case p.initial > 0 && p.initial <= in.StillMissing:
				row.state, row.installed = "Missing", time.Time{}
			case p.initial > 0 && p.initial <= in.StillMissing+in.FailedAfter:
				row.state, row.installed = "Failed", time.Time{}
			}
			break
		}
		if last != nil && last.final == "Failed" && row.state == "Missing" && !failedMarked {
			row.state, failedMarked = "Failed", true
		}
		out = append(out, row)
	}
	return out
}

// recount makes DescribeInstancePatchStates' counts those of the patch rows
// once patches were released or an override list was used; otherwise the
// counts stand as patchState made them (the same numbers, without a pass
// over the patches).
func (in *Instance) recount(st map[string]any, now time.Time, last *invocation) {
	special := false
	if in.sim != nil {
		for _, r := range in.sim.releases {
			special = special || (!r.at.After(now) && strings.Contains(in.Platform, r.platform) && r.n > 0)
		}
	}
	for _, inv := range in.installs {
		special = special || inv.cmd.override != nil
	}
	if last != nil && last.cmd.override != nil {
		st["InstallOverrideList"] = last.cmd.override.url
	}
	if !special {
		return
	}
	counts := map[string]int{}
	for _, r := range in.rows(now, last) {
		counts[r.state]++
	}
	st["InstalledCount"] = 100 + counts["Installed"]
	st["InstalledPendingRebootCount"] = counts["InstalledPendingReboot"]
	st["MissingCount"] = counts["Missing"]
	st["FailedCount"] = max(counts["Failed"], boolInt(last != nil && last.final == "Failed"))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// lastInstall is the Install that decides the instance's patch state at
// now: the last to finish, not cancelled first and not timed out.
func (in *Instance) lastInstall(now time.Time) *invocation {
	var last *invocation
	for _, inv := range in.installs {
		if inv.notStarted || inv.end.IsZero() || inv.end.After(now) || inv.final == "TimedOut" ||
			(!inv.cancelledAt.IsZero() && inv.cancelledAt.Before(inv.end)) {
			continue // cancelled before it finished: no patch operation recorded
		}
		if last == nil || inv.end.After(last.end) {
			last = inv
		}
	}
	return last
}

// patchList is DescribeInstancePatches' view of the instance at now.
func (in *Instance) patchList(now time.Time) []map[string]any {
	var out []map[string]any
	for _, r := range in.rows(now, in.lastInstall(now)) {
		p := map[string]any{"Title": r.title, "KBId": r.kb, "Classification": r.classification, "Severity": r.severity, "State": r.state}
		if !r.installed.IsZero() {
			p["InstalledTime"] = epoch(r.installed)
		}
		if r.cves != "" {
			p["CVEIds"] = r.cves
		}
		out = append(out, p)
	}
	return out
}

// overrideList is what an Install was told to install instead of its
// baseline's approved patches: an InstallOverrideList (a YAML document
// {patches: [{id, title}]}; an entry matches a patch by id (KBId) and, when
// it has a title, by title too), or a BaselineOverride (a JSON list of
// baselines; the one for the instance's operating system approves a patch
// when one of its rules does by ApproveUntilDate or ApproveAfterDays: the
// simulator reads release times, not filters). A list wins over a baseline.
type overrideList struct {
	url       string
	patches   []overrideEntry
	baselines map[string][]overrideRule // OperatingSystem -> rules
}

type overrideEntry struct {
	ID    string `yaml:"id"`
	Title string `yaml:"title"`
}

type overrideRule struct {
	ApproveUntilDate string
	ApproveAfterDays *int
}

// covers reports whether an Install of in started at start with the
// override installs p; without one, every approved patch.
func (l *overrideList) covers(p simPatch, in *Instance, start time.Time) bool {
	switch {
	case l == nil:
		return true
	case l.patches != nil:
		for _, e := range l.patches {
			if e.ID == p.kb && (e.Title == "" || e.Title == p.title) {
				return true
			}
		}
		return false
	}
	var rules []overrideRule
	found := false
	for os, rs := range l.baselines {
		if (os == "WINDOWS") == in.windows() && (os == "MACOS") == strings.Contains(in.Platform, "mac") {
			rules, found = rs, true
		}
	}
	if !found {
		return true // no baseline for this system: its own applies
	}
	for _, r := range rules {
		if d, err := time.Parse("2006-01-02", r.ApproveUntilDate); err == nil && p.released.Before(d.Add(24*time.Hour)) {
			return true
		}
		if r.ApproveAfterDays != nil && !p.released.After(start.Add(-time.Duration(*r.ApproveAfterDays)*24*time.Hour)) {
			return true
		}
	}
	return false
}

// readOverride reads the command's InstallOverrideList or BaselineOverride
// from the simulated S3 (s3://bucket/key or a path-style or virtual-hosted
// https URL). The caller holds s.mu. An override that cannot be read fails
// the command's invocations.
func (s *Sim) readOverride(params map[string][]string) (*overrideList, string) {
	if op := params["Operation"]; len(op) > 0 && op[0] != "Install" {
		return nil, "" // overrides apply to Install only
	}
	read := func(name string) ([]byte, string, string) {
		v := params[name]
		if len(v) == 0 || v[0] == "" {
			return nil, "", ""
		}
		bucket, key, err := parseS3URL(v[0])
		if err != nil {
			return nil, v[0], name + ": " + err.Error()
		}
		b := s.storage().buckets[bucket]
		if b == nil || b.objects[key] == nil {
			return nil, v[0], name + ": cannot download " + v[0]
		}
		return b.objects[key].data, v[0], ""
	}
	if data, url, bad := read("InstallOverrideList"); bad != "" || data != nil {
		if bad != "" {
			return nil, bad
		}
		var doc struct {
			Patches []overrideEntry `yaml:"patches"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, "InstallOverrideList: " + err.Error()
		}
		for _, e := range doc.Patches {
			if e.ID == "" {
				return nil, "InstallOverrideList: every patch needs an id"
			}
		}
		return &overrideList{url: url, patches: append([]overrideEntry{}, doc.Patches...)}, ""
	}
	data, url, bad := read("BaselineOverride")
	if bad != "" || data == nil {
		return nil, bad
	}
	var doc []struct {
		OperatingSystem string
		ApprovalRules   struct{ PatchRules []overrideRule }
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, "BaselineOverride: " + err.Error()
	}
	l := &overrideList{url: url, baselines: map[string][]overrideRule{}}
	for _, b := range doc {
		l.baselines[b.OperatingSystem] = b.ApprovalRules.PatchRules
	}
	return l, ""
}

func parseS3URL(raw string) (bucket, key string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err
	}
	path := strings.TrimPrefix(u.Path, "/")
	switch {
	case u.Scheme == "s3":
		return u.Host, path, nil
	case u.Scheme == "https" && (u.Host == "s3.amazonaws.com" || strings.HasPrefix(u.Host, "s3.") || strings.HasPrefix(u.Host, "s3-")):
		b, k, _ := strings.Cut(path, "/")
		return b, k, nil
	case u.Scheme == "https" && strings.Contains(u.Host, ".s3."):
		b, _, _ := strings.Cut(u.Host, ".s3.")
		return b, path, nil
	}
	return "", "", fmt.Errorf("%q is not an s3:// or https S3 URL", raw)
}

func describeInstancePatches(s *Sim, op string, k regionKey, now time.Time, body []byte) (any, bool, error) {
	if op != "DescribeInstancePatches" {
		return nil, false, nil
	}
	var in struct {
		InstanceId string
		Filters    []struct {
			Key    string
			Values []string
		}
		MaxResults *int
		NextToken  string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, true, validation("%v", err)
	}
	max := 50
	if in.MaxResults != nil {
		if *in.MaxResults < 10 || *in.MaxResults > 100 {
			return nil, true, validation("Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 10 and 100", *in.MaxResults)
		}
		max = *in.MaxResults
	}
	for _, f := range in.Filters {
		switch f.Key {
		case "Classification", "KBId", "Severity", "State":
		default:
			return nil, true, &apiError{Code: "InvalidFilter", Message: "filter key " + f.Key + " is not valid: use Classification, KBId, Severity or State", Status: 400}
		}
	}
	inst := s.byID[in.InstanceId]
	if inst == nil || inst.Account != k.account || inst.Region != k.region {
		return nil, true, &apiError{Code: "InvalidInstanceId", Message: "instance " + in.InstanceId + " is not a managed instance", Status: 400}
	}
	var rows []map[string]any
	for _, p := range inst.patchList(now) {
		ok := true
		for _, f := range in.Filters {
			v, _ := p[f.Key].(string)
			found := false
			for _, want := range f.Values {
				found = found || want == v
			}
			ok = ok && found
		}
		if ok {
			rows = append(rows, p)
		}
	}
	start := tokenIndex(in.NextToken)
	end := min(start+max, len(rows))
	out := map[string]any{"Patches": rows[min(start, len(rows)):end]}
	if end < len(rows) {
		out["NextToken"] = strconv.Itoa(end)
	}
	return out, true, nil
}
