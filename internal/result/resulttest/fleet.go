// Package resulttest builds realistic run results for the tests and
// benchmarks of what reads them (the report renderer, the fleet bench). A
// regular result (every instance alike, three findings each) hides the cost
// of rendering what a real fleet produces: failures with long hostile error
// output, tens of findings per instance with a long tail, pending reboots,
// lost agents, reasons with thousands of instance ids. Realistic gives such
// a result, seeded: the same seed and size give the same result.
//
// It is imported by tests and benchmarks only.
package resulttest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/patchgate/patchgate/internal/escape/escapetest"
	"github.com/patchgate/patchgate/internal/result"
)

// Listing is which Inspector findings the result holds in its lists (the
// counts by severity are always complete).
type Listing int

const (
	// AllFindings: every ACTIVE and CLOSED finding of a patched instance,
	// as verify lists them today (about 30 an instance).
	AllFindings Listing = iota
	// GateFindings: only the ACTIVE findings with a fix at or above the
	// phase's failOnSeverity, the ones the gate judges; the rest are
	// counted, not listed. This is the smaller result (and so the harder
	// one for a renderer measured against json.Marshal of it).
	GateFindings
)

// Fleet describes a realistic run. The zero values of the rates take the
// documented defaults; Realistic fills the rest.
type Fleet struct {
	Seed      uint64
	Instances int // over every target; 50,000 in the bench's large case
	Targets   int // account-regions, 8 in the bench's large case
	Listing   Listing
}

// The shape of the run, as the bench's policy has it: a staging ring of 2%
// of each target in one wave, then production in waves of 10%, 50% and
// 100%; SSM takes 50 instance ids a command.
const (
	stagingShare = 0.02
	perCommand   = 50

	failRate         = 0.005  // install failed (dpkg/yum/Windows Update errors)
	timeoutRate      = 0.001  // execution or delivery timed out
	inconclusiveRate = 0.0005 // invocation state never read
	lostRate         = 0.004  // agent ConnectionLost at preflight: skipped in production, offline in staging
	rebootRate       = 0.03   // installed patches waiting for a reboot
	missingRate      = 0.003  // patched, yet a patch still missing
	uncoveredRate    = 0.002  // no Inspector rescan newer than the patch
	findingsMean     = 30     // findings per patched instance: lognormal, this mean
	findingsMax      = 300    // and capped here
	fixRate          = 0.85   // findings with a fix available
	newPerInstance   = 0.2    // findings that appear during the run
	detailsPerPhase  = 20     // verify reads patch details for the first 20 non-compliant
)

// The severity mix of Inspector package findings: most LOW and MEDIUM.
var severities = []struct {
	name  string
	share float64
	// remain is the chance a fixable finding of this severity is still
	// ACTIVE after patching (its patch is not approved yet: approveAfterDays).
	remain float64
}{
	{"CRITICAL", 0.02, 0}, {"HIGH", 0.10, 0.01}, {"MEDIUM", 0.45, 0.05}, {"LOW", 0.38, 0.08},
	{"INFORMATIONAL", 0.03, 0.1}, {"UNTRIAGED", 0.02, 0.1},
}

var regions = []string{"us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1", "ap-northeast-1", "us-east-2", "sa-east-1"}

var packages = []string{"openssl", "glibc", "openssh-server", "curl", "libxml2", "python3", "sudo", "systemd", "expat", "zlib",
	"kernel", "krb5-libs", "nss", "sqlite", "libarchive", "vim-minimal", "bind-libs", "git", "perl", "tar"}

// failureOutput is what failed invocations print: real package-manager output,
// and some carrying the hostile strings of issue #17.
var failureOutput = []string{
	"E: Sub-process /usr/bin/dpkg returned an error code (1)\nErrors were encountered while processing:\n linux-image-6.1.0-18-amd64",
	"Error: Transaction test error:\n  file /usr/lib64/libssl.so.3 from install of openssl-libs-3.0.8-1.amzn2023 conflicts with file from package openssl-libs-3.0.7-25",
	"Failed to download metadata for repo 'amazonlinux': Cannot download repomd.xml: Curl error (28): Timeout was reached for https://cdn.amazonlinux.com/al2023/core/mirrors/latest/x86_64/mirror.list",
	"Install failed with HRESULT 0x80240022 | WU_E_ALL_UPDATES_FAILED <script>alert(1)</script>",
	"yum lock held by pid 4242 (rpm -qa) for more than 600 seconds; giving up `rm -rf /var/run/yum.pid`",
	"No space left on device: /var/cache/dnf [click](javascript:alert(1)) @oncall",
}

// Realistic returns a run of f.Instances instances over f.Targets
// account-regions (see the constants for the rates). One target's
// production phase fails its success threshold and a CRITICAL finding
// remains there, so the run has failures, reasons and blocking findings to
// show; the other targets pass with warnings.
func Realistic(f Fleet) *result.Run {
	g := &gen{rng: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15)), f: f}
	return g.run()
}

type gen struct {
	rng  *rand.Rand
	f    Fleet
	next int // instance counter, for ids
	cmds int
	cves []string
}

func (g *gen) run() *result.Run {
	start := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	runID := "17012345678"
	g.cves = make([]string, 4000)
	for i := range g.cves {
		g.cves[i] = fmt.Sprintf("CVE-%d-%d", 2019+i%7, 1000+g.rng.IntN(60000))
	}
	r := &result.Run{SchemaVersion: result.SchemaVersion, RunID: runID, RunURL: "https://github.com/acme/infra/actions/runs/" + runID,
		Version: "v1.4.0", SnapshotID: "3f2b7c1e-8a4d-4f5e-9c6b-2d1e0f9a8b7c", StartedAt: start, EndedAt: start.Add(7*time.Hour + 12*time.Minute),
		Status: result.StatusPassed}
	pol := result.Policy{Name: "fleet", File: "policies/fleet.yaml", Description: "benchmark fleet", Owners: []string{"@acme/platform"}, Status: result.StatusPassed}
	targets := max(g.f.Targets, 1)
	for t := range targets {
		n := g.f.Instances / targets
		if t < g.f.Instances%targets {
			n++
		}
		tg := g.target(runID, t, n, start)
		pol.Status = result.Worst(pol.Status, tg.Status)
		pol.Targets = append(pol.Targets, tg)
	}
	r.Policies = []result.Policy{pol}
	r.Status = pol.Status
	if r.Status == result.StatusPassed {
		r.Summary = "Every gate passed (policies: 1 passed)."
	} else {
		r.Summary = "A gate failed; later phases were not patched (policies: 0 passed, 1 failed)."
		pol.Reason = "production failed in " + pol.Targets[0].AccountID + "/" + pol.Targets[0].Region
	}
	r.Policies[0].Reason = pol.Reason
	return r
}

func (g *gen) target(runID string, t, n int, start time.Time) result.Target {
	tg := result.Target{AccountID: fmt.Sprintf("%012d", 111122223333+t/2*111111111), Region: regions[t%len(regions)], Status: result.StatusPassed,
		StartedAt: start.Add(time.Duration(t) * time.Second), EndedAt: start.Add(7 * time.Hour)}
	if t/2 >= len(regions) {
		tg.Region = fmt.Sprintf("%s-%d", regions[t%len(regions)], t)
	}
	tg.Lock = &result.Lock{Parameter: "/patchgate/locks/fleet", HolderRun: runID, Acquired: tg.StartedAt, Expires: tg.StartedAt.Add(12 * time.Hour), Held: true}
	stg := max(1, int(math.Round(float64(n)*stagingShare)))
	if n < 2 {
		stg = n
	}
	bad := t == 0 // the target whose production fails
	staging := g.phase(runID, tg, "staging", stg, []float64{1}, "100%", "CRITICAL", start.Add(time.Minute), false)
	tg.Phases = append(tg.Phases, staging)
	prodStart := start.Add(2 * time.Hour)
	prod := g.phase(runID, tg, "production", n-stg, []float64{0.1, 0.5, 1}, "98%", "CRITICAL", prodStart, bad)
	tg.Phases = append(tg.Phases, prod)
	tg.Status = result.Worst(staging.Status, prod.Status)
	if tg.Status != result.StatusPassed && len(prod.Reasons) > 0 {
		tg.Reason = "production: " + prod.Reasons[0].Message
	}
	return tg
}

// phase builds one phase of n instances in waves (cumulative shares).
func (g *gen) phase(runID string, tg result.Target, name string, n int, waves []float64, threshold, failOn string, at time.Time, bad bool) result.Phase {
	ph := result.Phase{Name: name, Status: result.StatusPassed, StartedAt: at, SuccessThreshold: threshold}
	insp := &result.Inspector{FixedBySeverity: map[string]int{}, RemainingBySeverity: map[string]int{}}
	comp := &result.Compliance{}
	v := &result.Verification{Verdict: result.StatusPassed, Compliance: comp, Inspector: insp}
	failRate := failRate
	if bad {
		failRate = 0.03 // a bad package in this account: more than the 2% the threshold allows
	}
	var blocking []result.Finding
	var noState []string
	done := 0
	waveAt := at
	for wi, share := range waves {
		end := int(math.Ceil(float64(n) * share))
		w := result.Wave{Index: wi + 1, Share: fmt.Sprintf("%.0f%%", share*100), Status: result.StatusPassed, StartedAt: waveAt}
		for c := done; c < end; c += perCommand {
			size := min(perCommand, end-c)
			g.cmds++
			id := g.uuid()
			cmd := result.Command{CommandID: id, Comment: fmt.Sprintf("patchgate run=%s fleet/%s/w%d/c%d", runID, name, wi+1, (c-done)/perCommand+1),
				ConsoleURL: "https://" + tg.Region + ".console.aws.amazon.com/systems-manager/run-command/" + id + "?region=" + tg.Region,
				Instances:  size, MaxConcurrency: "50%", MaxErrors: "2%", TimeoutSeconds: 28800, Document: "AWS-RunPatchBaseline",
				Parameters: map[string][]string{"Operation": {"Install"}, "SnapshotId": {"3f2b7c1e-8a4d-4f5e-9c6b-2d1e0f9a8b7c"}, "RebootOption": {"RebootIfNeeded"}},
				Status:     "Success", Sent: true, FromCounts: true}
			for range size {
				in := g.instance(name, failRate, waveAt)
				w.Counts.Add(in.Outcome)
				if in.Outcome != result.OutcomeSucceeded {
					cmd.FromCounts = false
					if in.Outcome == result.OutcomeFailed || in.Outcome == result.OutcomeTimedOut {
						cmd.Status = "Failed"
					}
				} else {
					comp.Instances++
					blocking = g.patched(in, comp, insp, failOn, bad, &noState, blocking)
				}
				w.Instances = append(w.Instances, in)
			}
			w.Commands = append(w.Commands, cmd)
		}
		w.CommandID, w.Comment, w.ConsoleURL = w.Commands[0].CommandID, w.Commands[0].Comment, w.Commands[0].ConsoleURL
		waveAt = waveAt.Add(time.Duration(35+g.rng.IntN(50)) * time.Minute)
		w.EndedAt = waveAt
		ph.Waves = append(ph.Waves, w)
		ph.Counts = ph.Counts.Plus(w.Counts)
		done = end
	}
	ph.EndedAt = waveAt.Add(45 * time.Minute)
	comp.Percent = 100
	if comp.Instances > 0 {
		comp.Percent = float64(comp.Compliant) * 100 / float64(comp.Instances)
	}
	for i := range comp.NonCompliant[:min(detailsPerPhase, len(comp.NonCompliant))] {
		nc := &comp.NonCompliant[i]
		for k := range max(nc.Missing, nc.PendingReboot) {
			cve := g.cves[g.rng.IntN(len(g.cves))]
			nc.Patches = append(nc.Patches, result.Patch{Title: fmt.Sprintf("%s-%d.%d.%d-1.amzn2023.x86_64", packages[g.rng.IntN(len(packages))], 1+k, g.rng.IntN(20), g.rng.IntN(9)),
				State: map[bool]string{true: "Missing", false: "InstalledPendingReboot"}[nc.Missing > 0], Severity: "Important", Classification: "Security", CVEs: []string{cve}})
			nc.CVEs = append(nc.CVEs, cve)
		}
	}

	// The gate's reasons, worded as verify and gate word them.
	succeeded := ph.Counts.Succeeded * 1000 / max(1, ph.Counts.Targeted-ph.Counts.Skipped)
	if bad {
		ph.Status = result.StatusFailed
		ph.Reasons = append(ph.Reasons, result.Reason{Code: "success-threshold", Message: fmt.Sprintf("%d.%d%% succeeded, %s required (%d failed, %d timed out)",
			succeeded/10, succeeded%10, threshold, ph.Counts.Failed, ph.Counts.TimedOut)})
	}
	if len(insp.NoFix) > 0 || g.f.Listing == GateFindings {
		nofix := len(insp.NoFix)
		if g.f.Listing == GateFindings {
			nofix = comp.Instances * findingsMean * 15 / 100
		}
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d ACTIVE findings have no fix available (reported, not blocking)", nofix))
	}
	if len(noState) > 0 {
		v.Reasons = append(v.Reasons, result.Reason{Code: "no-patch-state", Instances: noState,
			Message: fmt.Sprintf("%d patched instances report no patch state, so their compliance is unknown", len(noState))})
	}
	if len(insp.Uncovered) > 0 {
		ids := make([]string, len(insp.Uncovered))
		for i, u := range insp.Uncovered {
			ids[i] = u.InstanceID
		}
		v.Reasons = append(v.Reasons, result.Reason{Code: "no-rescan", Instances: ids,
			Message: fmt.Sprintf("%d patched instances have no Inspector scan newer than their patch (%s): no evidence their vulnerabilities are closed", len(ids), insp.Uncovered[0].Reason)})
	}
	if len(blocking) > 0 {
		var ids, cves []string
		for _, f := range blocking {
			ids, cves = append(ids, f.InstanceID), append(cves, f.CVE)
		}
		v.Verdict = result.StatusFailed
		v.Reasons = append(v.Reasons, result.Reason{Code: "inspector-severity", Instances: ids, CVEs: cves,
			Message: fmt.Sprintf("%d ACTIVE findings at or above %s with a fix available remain after patching, e.g. %s (%s) on %s",
				len(blocking), failOn, blocking[0].CVE, blocking[0].Severity, blocking[0].InstanceID)})
	}
	if bad {
		v.Verdict = result.StatusFailed
	}
	ph.Reasons = append(ph.Reasons, v.Reasons...)
	if v.Verdict != result.StatusPassed {
		ph.Status = result.Worst(ph.Status, v.Verdict)
	}
	if pr := comp.PendingReboot; pr.Instances > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d patches await a reboot on %d instances", pr.Patches, pr.Instances))
	}
	ph.Verification = v
	return ph
}

// instance draws one instance's outcome in a wave sent at at.
func (g *gen) instance(phase string, failRate float64, at time.Time) result.Instance {
	g.next++
	in := result.Instance{ID: fmt.Sprintf("i-%017x", 0x0a1b2c3d4e5f0000+uint64(g.next)*7919), Platform: "Amazon Linux",
		Outcome: result.OutcomeSucceeded, SSMStatus: "Success", StatusDetails: "Success"}
	in.Name = fmt.Sprintf("%s-%s-%05d", []string{"web", "api", "worker", "batch"}[g.next%4], phase[:3], g.next)
	if g.rng.Float64() < 0.001 { // a tag value somebody typed: anything at all
		in.Name = escapetest.Seeds[g.rng.IntN(len(escapetest.Seeds))]
	}
	// A patch took 5 to 90 minutes, long-tailed.
	took := time.Duration(math.Min(math.Exp(3.2+0.6*g.rng.NormFloat64()), 240) * float64(time.Minute))
	switch x := g.rng.Float64(); {
	case x < lostRate:
		in.Outcome, in.SSMStatus, in.StatusDetails = result.OutcomeSkipped, "", ""
		if phase == "staging" {
			in.Outcome = result.OutcomeOffline
		}
		return in
	case x < lostRate+failRate:
		in.Outcome, in.SSMStatus, in.StatusDetails = result.OutcomeFailed, "Failed", "Failed"
		in.Error = failureOutput[g.rng.IntN(len(failureOutput))]
		if g.rng.IntN(4) == 0 {
			in.Error += "\n" + escapetest.Seeds[g.rng.IntN(len(escapetest.Seeds))]
		}
	case x < lostRate+failRate+timeoutRate:
		in.Outcome, in.SSMStatus, in.StatusDetails = result.OutcomeTimedOut, "TimedOut", []string{"DeliveryTimedOut", "ExecutionTimedOut"}[g.rng.IntN(2)]
		in.Error = "the command did not finish within its execution timeout of 8h0m0s"
		return in
	case x < lostRate+failRate+timeoutRate+inconclusiveRate:
		in.Outcome, in.SSMStatus, in.StatusDetails = result.OutcomeInconclusive, "InProgress", "InProgress"
		in.Error = "InvocationDoesNotExist: the invocation could not be read after 3 attempts"
		return in
	}
	in.PatchEndedAt = at.Add(took)
	return in
}

// patched adds a patched instance's compliance and findings, and returns
// blocking with the instance's blocking findings added.
func (g *gen) patched(in result.Instance, comp *result.Compliance, insp *result.Inspector, failOn string, bad bool, noState *[]string, blocking []result.Finding) []result.Finding {
	before := result.PatchCounts{Installed: 400 + g.rng.IntN(300), Missing: 1 + g.rng.IntN(12), NotApplicable: 900 + g.rng.IntN(200)}
	comp.Before = comp.Before.Plus(before)
	after := result.PatchCounts{Installed: before.Installed + before.Missing, NotApplicable: before.NotApplicable}
	switch x := g.rng.Float64(); {
	case x < 0.0005:
		*noState = append(*noState, in.ID)
		comp.NonCompliant = append(comp.NonCompliant, result.InstanceCompliance{InstanceID: in.ID, Reason: "no patch state reported after patching"})
	case x < 0.0005+missingRate:
		after.Missing, after.Installed = 1+g.rng.IntN(3), after.Installed-1
		comp.After = comp.After.Plus(after)
		comp.NonCompliant = append(comp.NonCompliant, result.InstanceCompliance{InstanceID: in.ID, Missing: after.Missing,
			Reason: fmt.Sprintf("%d approved patches missing after patching", after.Missing)})
	case x < 0.0005+missingRate+rebootRate:
		after.InstalledPendingReboot = 1 + g.rng.IntN(4)
		comp.PendingReboot.Instances++
		comp.PendingReboot.Patches += after.InstalledPendingReboot
		comp.After = comp.After.Plus(after)
		comp.NonCompliant = append(comp.NonCompliant, result.InstanceCompliance{InstanceID: in.ID, PendingReboot: after.InstalledPendingReboot,
			Reason: fmt.Sprintf("%d installed patches wait for a reboot", after.InstalledPendingReboot)})
	default:
		after.CompliantInstances = 1
		comp.After = comp.After.Plus(after)
		comp.Compliant++
	}

	scanned := in.PatchEndedAt.Add(time.Duration(5+g.rng.IntN(35)) * time.Minute)
	if g.rng.Float64() < uncoveredRate {
		cov := result.Coverage{InstanceID: in.ID, ScanStatus: "ACTIVE", Reason: "no scan newer than the patch within rescanTimeout 45m0s",
			LastScannedAt: in.PatchEndedAt.Add(-20 * time.Hour), PatchEndedAt: in.PatchEndedAt}
		insp.Uncovered = append(insp.Uncovered, cov)
		insp.Evidence = append(insp.Evidence, cov)
		return blocking
	}
	insp.Evidence = append(insp.Evidence, result.Coverage{InstanceID: in.ID, ScanStatus: "ACTIVE", Reason: "SUCCESSFUL", LastScannedAt: scanned, PatchEndedAt: in.PatchEndedAt})

	n := int(math.Min(math.Round(math.Exp(math.Log(findingsMean)-0.32+0.8*g.rng.NormFloat64())), findingsMax))
	for range min(n+g.poisson(newPerInstance), findingsMax) {
		f := result.Finding{InstanceID: in.ID, CVE: g.cves[g.rng.IntN(len(g.cves))], Package: packages[g.rng.IntN(len(packages))],
			FixAvailable: g.rng.Float64() < fixRate, Status: "ACTIVE"}
		sev := g.severity()
		f.Severity = sev.name
		n--
		isNew := n < 0
		if isNew && f.Severity == "CRITICAL" {
			f.Severity = "HIGH" // a finding disclosed during the run is not one the gate blocks on here
		}
		blocks := f.FixAvailable && atLeast(f.Severity, failOn)
		switch {
		case !f.FixAvailable:
			g.list(&insp.NoFix, f, false)
		case isNew:
			insp.RemainingBySeverity[f.Severity]++
			g.list(&insp.New, f, blocks)
		case bad && f.Severity == "CRITICAL" && g.rng.IntN(3) == 0, g.rng.Float64() < sev.remain:
			insp.RemainingBySeverity[f.Severity]++
			g.list(&insp.Remaining, f, blocks)
		default:
			f.Status = "CLOSED"
			insp.FixedBySeverity[f.Severity]++
			g.list(&insp.Fixed, f, false)
			continue
		}
		if blocks {
			blocking = append(blocking, f)
		}
	}
	return blocking
}

// list appends f to a finding list unless the result lists only what the
// gate judges and f is not such a finding.
func (g *gen) list(to *[]result.Finding, f result.Finding, blocks bool) {
	if g.f.Listing == AllFindings || blocks {
		*to = append(*to, f)
	}
}

func (g *gen) severity() struct {
	name   string
	share  float64
	remain float64
} {
	x := g.rng.Float64()
	for _, s := range severities {
		if x < s.share {
			return s
		}
		x -= s.share
	}
	return severities[len(severities)-1]
}

func (g *gen) poisson(mean float64) int {
	k, p, l := 0, 1.0, math.Exp(-mean)
	for {
		p *= g.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func (g *gen) uuid() string {
	a, b := g.rng.Uint64(), g.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", a>>32, a>>16&0xffff, a&0xfff, b>>48&0xfff, b&0xffffffffffff)
}

func atLeast(sev, threshold string) bool {
	s, _ := result.SeverityRank(strings.ToUpper(sev))
	t, _ := result.SeverityRank(threshold)
	return s >= t
}
