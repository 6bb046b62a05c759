package report

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/internal/escape"
	"github.com/patchgate/patchgate/internal/gate"
	"github.com/patchgate/patchgate/internal/result"
)

var icons = map[result.Status]string{
	result.StatusPassed: "✅", result.StatusFailed: "❌", result.StatusInconclusive: "⚠️", result.StatusHalted: "⏸️",
	result.StatusCancelled: "🛑", result.StatusRefused: "⛔", result.StatusError: "💥", result.StatusDryRun: "📝",
	result.StatusSkipped: "➖", result.StatusRunning: "⏳", result.StatusWaiting: "🕒",
}

func badge(s result.Status) string { return icons[s] + " " + cell(string(s), 20) }

// headline is the verdict in words; never green unless the run passed,
// and "verified" only when evidence was gathered.
func headline(r *result.Run) string {
	switch r.Status {
	case result.StatusPassed:
		if _, ok := CompliancePercent(r); !ok {
			return "✅ Patched: every gate passed (no phase asked for verification)"
		}
		return "✅ Patched and verified"
	case result.StatusDryRun:
		return "📝 Dry run: nothing was sent"
	case result.StatusFailed, result.StatusHalted:
		return "❌ Failed: a gate did not pass"
	case result.StatusInconclusive:
		return "⚠️ Inconclusive: evidence is missing, so this run is not green"
	case result.StatusCancelled:
		return "🛑 Cancelled: the run did not finish"
	case result.StatusRefused:
		return "⛔ Refused"
	case result.StatusSkipped:
		return "➖ Nothing to do"
	case result.StatusWaiting:
		return "🕒 Waiting: a promoted phase is not eligible yet (see when below)"
	case result.StatusRunning:
		return "⏳ Still running (or interrupted): re-run with the same run id to resume"
	}
	return "💥 Error: patchgate could not finish"
}

// Scope is what a run's compliance figure covers: the instances found
// compliant after patching, over every instance the run targeted in the
// phases it reached (sent or not, offline included, skipped excluded),
// and the phases it never reached.
type Scope struct {
	Compliant, Targeted int
	// Verified: some phase gathered compliance evidence.
	Verified bool
	// NotReached names phases (policy/phase) that were halted or
	// cancelled before finding their instances.
	NotReached []string
	// PendingReboot sums every verified phase's pending reboots.
	PendingReboot result.PendingReboot
}

// ComplianceScope reads a run's compliance and what it covers.
func ComplianceScope(r *result.Run) Scope {
	var sc Scope
	seen := map[string]bool{}
	for _, p := range r.Policies {
		for _, t := range p.Targets {
			for _, ph := range t.Phases {
				v := ph.Verification
				if v != nil && v.Compliance != nil {
					sc.Verified = true
					sc.Compliant += v.Compliance.Compliant
					sc.PendingReboot.Instances += v.Compliance.PendingReboot.Instances
					sc.PendingReboot.Patches += v.Compliance.PendingReboot.Patches
				}
				if ph.Counts.Targeted == 0 && (ph.Status == result.StatusHalted || ph.Status == result.StatusCancelled) {
					if k := p.Name + "/" + ph.Name; !seen[k] {
						seen[k] = true
						sc.NotReached = append(sc.NotReached, k)
					}
					continue
				}
				// A phase that passed without asking for compliance has
				// nothing to count for it; any other phase's instances
				// were targeted and count, patched or not.
				if ph.Status == result.StatusPassed && (v == nil || v.Compliance == nil) {
					continue
				}
				sc.Targeted += ph.Counts.Targeted - ph.Counts.Skipped
			}
		}
	}
	return sc
}

// CompliancePercent is the run's compliance after patching: compliant
// instances over every instance the run targeted in the phases it reached
// (see ComplianceScope). ok is false when nothing was verified.
func CompliancePercent(r *result.Run) (pct float64, ok bool) {
	sc := ComplianceScope(r)
	if !sc.Verified || sc.Targeted == 0 {
		return 0, false
	}
	return float64(sc.Compliant) * 100 / float64(sc.Targeted), true
}

// complianceLine says the compliance figure with its scope in words, and
// pending reboots when there are any.
func complianceLine(r *result.Run) string {
	return strings.Join(complianceParts(r, "**", func(s string) string { return cell(s, 300) }, "⚠️ "), " · ")
}

// complianceParts are the compliance figure, the phases not reached and
// the pending reboots, with bold, escaping and a warning mark for the
// output at hand.
func complianceParts(r *result.Run, bold string, esc func(string) string, warn string) []string {
	sc := ComplianceScope(r)
	var parts []string
	if pct, ok := CompliancePercent(r); ok {
		parts = append(parts, fmt.Sprintf("%sCompliance after patching: %.1f%%%s (%d of %d targeted instances verified compliant)", bold, pct, bold, sc.Compliant, sc.Targeted))
	}
	if len(sc.NotReached) > 0 {
		parts = append(parts, "not reached: "+esc(strings.Join(sc.NotReached, ", ")))
	}
	if sc.PendingReboot.Instances > 0 {
		parts = append(parts, warn+gate.PendingRebootText(sc.PendingReboot))
	}
	return parts
}

// phaseAgg is one phase of a policy over all its targets.
type phaseAgg struct {
	name          string
	status        result.Status
	counts        result.Counts
	before, after result.PatchCounts
	verified      int
	compliant     int
	fixed, remain map[string]int
	noFix, newF   int
	uncovered     int
	// beforeNotRead: a target's phase did not read the patch states
	// before; listedFrom: its Inspector listed only the gate's findings,
	// at or above this severity ("*": every severity).
	beforeNotRead bool
	listedFrom    string
	pending       result.PendingReboot
	start, end    time.Time
}

func aggregate(p result.Policy) []*phaseAgg {
	var order []*phaseAgg
	by := map[string]*phaseAgg{}
	for _, t := range p.Targets {
		for _, ph := range t.Phases {
			a := by[ph.Name]
			if a == nil {
				a = &phaseAgg{name: ph.Name, status: ph.Status, fixed: map[string]int{}, remain: map[string]int{}}
				by[ph.Name] = a
				order = append(order, a)
			} else {
				a.status = result.Worst(a.status, ph.Status)
			}
			a.counts = a.counts.Plus(ph.Counts)
			if !ph.StartedAt.IsZero() && (a.start.IsZero() || ph.StartedAt.Before(a.start)) {
				a.start = ph.StartedAt
			}
			if ph.EndedAt.After(a.end) {
				a.end = ph.EndedAt
			}
			if v := ph.Verification; v != nil {
				if c := v.Compliance; c != nil {
					a.verified += c.Instances
					a.compliant += c.Compliant
					a.pending.Instances += c.PendingReboot.Instances
					a.pending.Patches += c.PendingReboot.Patches
					addPatch(&a.before, c.Before)
					addPatch(&a.after, c.After)
					a.beforeNotRead = a.beforeNotRead || c.BeforeNotRead
				}
				if in := v.Inspector; in != nil {
					for s, n := range in.FixedBySeverity {
						a.fixed[s] += n
					}
					for s, n := range in.RemainingBySeverity {
						a.remain[s] += n
					}
					a.noFix += len(in.NoFix)
					a.newF += len(in.New)
					a.uncovered += len(in.Uncovered)
					if in.Listed != nil {
						a.listedFrom = cmp.Or(in.Listed.MinSeverity, "*")
					}
				}
			}
		}
	}
	return order
}

func addPatch(a *result.PatchCounts, b result.PatchCounts) {
	a.Missing += b.Missing
	a.Failed += b.Failed
	a.InstalledPendingReboot += b.InstalledPendingReboot
	a.CompliantInstances += b.CompliantInstances
}

var severityOrder = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED"}

func bySeverity(m map[string]int) string {
	var parts []string
	for _, s := range severityOrder {
		if m[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[s], strings.ToLower(s)))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

func dur(a, b time.Time) string {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return "–"
	}
	return b.Sub(a).Round(time.Second).String()
}

// Run renders a run result for kind.
func Run(r *result.Run, kind Kind) string {
	marker := ""
	if kind == Comment {
		marker = RunMarker("")
	}
	v := gather(r)
	return fit(kind, func(d detail) string { return v.render(d, marker) }, r.RunURL)
}

// RunComment renders the comment for one policy's sticky report: its
// marker is the first line, inside the size limit.
func RunComment(r *result.Run, policy string) string {
	v := gather(r)
	return fit(Comment, func(d detail) string { return v.render(d, RunMarker(policy)) }, r.RunURL)
}

// How many rows of each list a run report shows at each detail level
// (counts shows none of the per-instance lists).
var (
	whyRows     = map[detail]int{full: 200, collapsed: 30, counts: 10}
	failureRows = map[detail]int{full: 50, collapsed: 10}
	complyRows  = map[detail]int{full: 50, collapsed: 10}
	findingRows = map[detail]int{full: 100, collapsed: 15}
	backupRows  = map[detail]int{full: 200, collapsed: 20}
	commandRows = map[detail]int{full: 200, collapsed: 20}
)

// rows is a list of which only the first rows are kept (formatted) and the
// rest counted: a report shows at most a few hundred rows of lists that
// run to millions (findings: tens an instance), so it never formats, sorts
// or escapes what it cannot show, and rendering stays a fraction of
// marshalling the same run as JSON.
type rows[T any] struct {
	keep  []T
	total int
	max   int
}

// room reports whether the next item would be kept, and counts it.
func (l *rows[T]) room() bool {
	l.total++
	return len(l.keep) < l.max
}

// addAll counts n items, keeping those of them that fit through at(i).
func addAll[T any](l *rows[T], n int, at func(i int) T) {
	for i := 0; i < n && len(l.keep) < l.max; i++ {
		l.keep = append(l.keep, at(i))
	}
	l.total += n
}

// runView is what a run report shows, gathered in one pass over the run;
// every detail level is rendered from it.
type runView struct {
	r        *result.Run
	aggs     [][]*phaseAgg // per policy
	why      rows[string]
	failures rows[failure] // in rank order, then in the run's order
	nc       rows[string]
	cves     rows[string]
	backups  rows[BackupRow] // failed instances first, then in the run's order
	cmds     rows[string]
}

func gather(r *result.Run) *runView {
	v := &runView{r: r, aggs: make([][]*phaseAgg, len(r.Policies)),
		why: rows[string]{max: whyRows[full]}, failures: rows[failure]{max: failureRows[full]}, nc: rows[string]{max: complyRows[full]},
		cves: rows[string]{max: findingRows[full]}, cmds: rows[string]{max: commandRows[full]}}
	// Failures and backups are shown in an order of their own (the worst
	// first): one bucket per rank, each kept as long as the whole list.
	var ranked [5]rows[failure]
	var failedBackups, otherBackups rows[BackupRow]
	for i := range ranked {
		ranked[i].max = failureRows[full]
	}
	failedBackups.max, otherBackups.max = backupRows[full], backupRows[full]

	for pi, p := range r.Policies {
		v.aggs[pi] = aggregate(p)
		for _, t := range p.Targets {
			where := fmt.Sprintf("%s · %s/%s", p.Name, t.AccountID, t.Region)
			if t.Status == result.StatusRefused || t.Status == result.StatusError || t.Status == result.StatusCancelled {
				if v.why.room() {
					v.why.keep = append(v.why.keep, fmt.Sprintf("%s %s: %s", icons[t.Status], cell(where, 120), cell(t.Reason, 400)))
				}
			}
			for _, ph := range t.Phases {
				v.gatherWhy(where, ph)
				for _, w := range ph.Waves {
					for _, in := range w.Instances {
						if rk := failureRank(in.Outcome); rk >= 0 && ranked[rk].room() {
							ranked[rk].keep = append(ranked[rk].keep, failure{in: in, where: fmt.Sprintf("%s · %s/%s · %s", p.Name, t.AccountID, t.Region, ph.Name)})
						}
					}
					for _, bk := range w.Backups {
						to := &otherBackups
						if len(bk.Restore) > 0 {
							to = &failedBackups
						}
						if to.room() {
							to.keep = append(to.keep, BackupRow{Account: t.AccountID, Region: t.Region, InstanceID: bk.InstanceID,
								Snapshots: bk.Snapshots, Reason: bk.Reason, Failed: len(bk.Restore) > 0, Restore: bk.Restore})
						}
					}
					addAll(&v.cmds, len(w.Commands), func(i int) string { return commandRow(p, t, ph, w, w.Commands[i]) })
				}
				if ver := ph.Verification; ver != nil && ver.Compliance != nil {
					addAll(&v.nc, len(ver.Compliance.NonCompliant), func(i int) string {
						ic := ver.Compliance.NonCompliant[i]
						return fmt.Sprintf("| %s | %s | %s | %d | %d | %d | %s |", code(ic.InstanceID), cell(p.Name+" · "+ph.Name, 100), cell(ic.Reason, 160),
							ic.Missing, ic.Failed, ic.PendingReboot, cell(strings.Join(ic.CVEs, ", "), 200))
					})
				}
				if ver := ph.Verification; ver != nil && ver.Inspector != nil {
					in := ver.Inspector
					for _, set := range []struct {
						label string
						fs    []result.Finding
					}{{"remaining", in.Remaining}, {"new", in.New}, {"no fix", in.NoFix}, {"fixed", in.Fixed}} {
						addAll(&v.cves, len(set.fs), func(i int) string {
							f := set.fs[i]
							return fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", cell(f.CVE, 40), cell(strings.ToLower(f.Severity), 20), set.label, code(f.InstanceID), cell(f.Package, 60), cell(p.Name+" · "+ph.Name, 100))
						})
					}
				}
			}
		}
	}
	v.failures = merge(v.failures.max, ranked[:]...)
	v.backups = merge(backupRows[full], failedBackups, otherBackups)
	return v
}

// merge joins lists kept in order into one, its first max items kept.
func merge[T any](max int, ls ...rows[T]) rows[T] {
	out := rows[T]{max: max}
	for _, l := range ls {
		addAll(&out, l.total, func(i int) T { return l.keep[i] })
	}
	return out
}

// gatherWhy adds every reason a phase's gate gave.
func (v *runView) gatherWhy(where string, ph result.Phase) {
	if pr := ph.Promotion; pr != nil && v.why.room() {
		v.why.keep = append(v.why.keep, fmt.Sprintf("🔁 %s · %s: promoted from %s of run %s (%s, %s)%s", cell(where, 120), cell(ph.Name, 40), cell(pr.From, 40),
			escape.Link(pr.SourceRun, pr.SourceURL, 40), pr.SourceTime.UTC().Format("2006-01-02 15:04 UTC"), replayWords(pr), noteWords(pr.Note)))
	}
	if ph.Record != "" && v.why.room() {
		v.why.keep = append(v.why.keep, fmt.Sprintf("📒 %s · %s: promotion record %s", cell(where, 120), cell(ph.Name, 40), code(ph.Record)))
	}
	addAll(&v.why, len(ph.Reasons), func(i int) string {
		rs := ph.Reasons[i]
		return fmt.Sprintf("%s %s · %s: **%s** %s", icons[ph.Status], cell(where, 120), cell(ph.Name, 40), cell(rs.Code, 40), cell(rs.Message, 400))
	})
	if ver := ph.Verification; ver != nil {
		addAll(&v.why, len(ver.Warnings), func(i int) string {
			return fmt.Sprintf("⚠️ %s · %s: %s", cell(where, 120), cell(ph.Name, 40), cell(ver.Warnings[i], 300))
		})
	}
}

func commandRow(p result.Policy, t result.Target, ph result.Phase, w result.Wave, c result.Command) string {
	id := code(c.CommandID)
	if c.ConsoleURL != "" {
		id = escape.Link(c.CommandID, c.ConsoleURL, 60)
	}
	if !c.Sent && !c.Resumed {
		id = "(not sent)"
	}
	return fmt.Sprintf("| %s | %s | %d | %d | %s | %s/%s | %s |", id, cell(p.Name+" · "+ph.Name, 100), w.Index, c.Instances,
		cell(c.Status, 30), cell(c.MaxConcurrency, 10), cell(c.MaxErrors, 10), cell(t.AccountID+"/"+t.Region, 40))
}

// failureRank orders the instances that did not succeed (failed first);
// -1 for the others.
func failureRank(o result.Outcome) int {
	switch o {
	case result.OutcomeFailed:
		return 0
	case result.OutcomeTimedOut:
		return 1
	case result.OutcomeInconclusive:
		return 2
	case result.OutcomeCancelled:
		return 3
	case result.OutcomeOffline:
		return 4
	}
	return -1
}

func (v *runView) render(d detail, marker string) string {
	r := v.r
	var b strings.Builder
	if marker != "" {
		b.WriteString(marker + "\n")
	}
	fmt.Fprintf(&b, "## patchgate run %s: %s\n\n", escape.Code(r.RunID, 80), headline(r))
	b.WriteString(cell(r.Summary, 500) + "\n\n")
	if r.ForcedWindow {
		b.WriteString("> [!WARNING]\n> `--force-window` was used: the schedule, freezes and change calendars were overridden.\n\n")
	}
	if line := complianceLine(r); line != "" {
		b.WriteString(line + " · ")
	}
	fmt.Fprintf(&b, "started %s · took %s", r.StartedAt.UTC().Format("2006-01-02 15:04 UTC"), dur(r.StartedAt, r.EndedAt))
	if r.RunURL != "" {
		b.WriteString(" · " + escape.Link("workflow run", r.RunURL, 0))
	}
	if r.SnapshotID != "" {
		b.WriteString(" · snapshot " + escape.Code(r.SnapshotID, 40))
	}
	b.WriteString("\n\n")
	for _, e := range r.Errors {
		b.WriteString("- 💥 " + cell(e, 300) + "\n")
	}

	if d < counts {
		b.WriteString("```mermaid\nflowchart LR\n")
		for i, p := range r.Policies {
			prev := ""
			for j, a := range v.aggs[i] {
				id := fmt.Sprintf("p%d_%d", i, j)
				label := fmt.Sprintf("%s / %s<br/>%s %d/%d", mermaidText(p.Name), mermaidText(a.name), mermaidText(string(a.status)), a.counts.Succeeded, a.counts.Targeted)
				fmt.Fprintf(&b, "  %s[\"%s\"]:::%s\n", id, label, mermaidClass(a.status))
				if prev != "" {
					fmt.Fprintf(&b, "  %s --> %s\n", prev, id)
				}
				prev = id
			}
		}
		b.WriteString("  classDef ok fill:#2da44e,color:#fff\n  classDef bad fill:#cf222e,color:#fff\n  classDef warn fill:#bf8700,color:#fff\n  classDef idle fill:#8c959f,color:#fff\n```\n\n")
	}

	// One table over every policy and phase: the numbers a reader checks.
	tb := newTable(&b, "policy", "phase", "status", "targeted", "succeeded", "failed", "timed out", "offline", "skipped", "inconclusive", "compliance before → after", "CVEs fixed", "CVEs remaining", "took")
	for i, p := range r.Policies {
		for _, a := range v.aggs[i] {
			c := a.counts
			comp := "–"
			if a.verified > 0 {
				comp = fmt.Sprintf("%d missing → %d missing; %d/%d compliant", a.before.Missing, a.after.Missing, a.compliant, a.verified)
				if a.beforeNotRead {
					comp = fmt.Sprintf("not read → %d missing; %d/%d compliant", a.after.Missing, a.compliant, a.verified)
				}
				if a.pending.Instances > 0 {
					comp += "; " + gate.PendingRebootText(a.pending)
				}
			}
			fixed, remain := "–", "–"
			// A listing of the gate's findings that found none still says
			// so: "–" would read as "not checked".
			if len(a.fixed) > 0 || len(a.remain) > 0 || a.noFix > 0 || a.uncovered > 0 || a.listedFrom != "" {
				fixed, remain = bySeverity(a.fixed), bySeverity(a.remain)
				if a.listedFrom != "" {
					// Only the gate's findings were listed: fixed and
					// unfixable ones were not counted.
					fixed = "not listed"
					if a.listedFrom != "*" {
						remain += " at or above " + cell(strings.ToLower(a.listedFrom), 20)
					}
				} else if a.noFix > 0 {
					remain += fmt.Sprintf(" (+%d without a fix)", a.noFix)
				}
				if a.uncovered > 0 {
					remain += fmt.Sprintf("; %d not rescanned", a.uncovered)
				}
			}
			tb.row(cell(p.Name, 60), cell(a.name, 40), badge(a.status), strconv.Itoa(c.Targeted), strconv.Itoa(c.Succeeded), strconv.Itoa(c.Failed),
				strconv.Itoa(c.TimedOut), strconv.Itoa(c.Offline), strconv.Itoa(c.Skipped), strconv.Itoa(c.Inconclusive+c.Cancelled), comp, fixed, remain, dur(a.start, a.end))
		}
		if len(p.Targets) == 0 || len(v.aggs[i]) == 0 {
			tb.row(cell(p.Name, 60), "–", badge(p.Status), "", "", "", "", "", "", "", cell(p.Reason, 200))
		}
	}
	b.WriteString("\n")

	// Why: every reason a gate gave, per policy and target.
	if v.why.total > 0 {
		b.WriteString("### Why\n\n")
		limit := whyRows[d]
		for i, w := range v.why.keep {
			if i == limit {
				break
			}
			b.WriteString("- " + w + "\n")
		}
		if v.why.total > limit {
			fmt.Fprintf(&b, "- … and %d more\n", v.why.total-limit)
		}
		b.WriteString("\n")
	}

	if d == counts {
		if r.RunURL != "" {
			fmt.Fprintf(&b, "Per-instance details are left out to fit; see %s and its JSON result.\n", escape.Link("the run", r.RunURL, 0))
		} else {
			b.WriteString("Per-instance details are left out to fit; see the run's JSON result.\n")
		}
		return b.String()
	}

	if v.failures.total > 0 {
		limit := failureRows[d]
		details(&b, fmt.Sprintf("Failed instances (%d)", v.failures.total), func() {
			tb := newTable(&b, "instance", "policy · target · phase", "outcome", "SSM status", "error")
			for i, f := range v.failures.keep {
				if i == limit {
					break
				}
				tb.row(code(f.in.ID)+" "+cell(f.in.Name, 40), cell(f.where, 120), cell(string(f.in.Outcome), 20), cell(f.in.SSMStatus+" "+f.in.StatusDetails, 60), cell(f.in.Error, 240))
			}
			if v.failures.total > limit {
				tb.row(fmt.Sprintf("… %d more", v.failures.total-limit))
			}
		})
	}

	rowsSection(&b, "Non-compliant instances", []string{"instance", "policy · phase", "reason", "missing", "failed", "pending reboot", "CVEs"}, v.nc, complyRows[d])
	rowsSection(&b, "Inspector findings", []string{"CVE", "severity", "state", "instance", "package", "policy · phase"}, v.cves, findingRows[d])

	if v.backups.total > 0 {
		// Failed instances (with their restore commands) first, then as
		// many of the rest as the detail level allows.
		shown := v.backups.keep[:min(len(v.backups.keep), backupRows[d])]
		details(&b, fmt.Sprintf("Backups (%d)", v.backups.total), func() {
			b.WriteString(Backups(shown))
			if len(shown) < v.backups.total {
				fmt.Fprintf(&b, "… and %d more in the JSON result\n", v.backups.total-len(shown))
			}
		})
	}

	rowsSection(&b, "Commands", []string{"command", "policy · phase", "wave", "instances", "status", "concurrency/errors", "target"}, v.cmds, commandRows[d])
	return b.String()
}

type failure struct {
	in    result.Instance
	where string
}

func mermaidText(s string) string { return escape.Mermaid(s, 60) }

func mermaidClass(s result.Status) string {
	switch s {
	case result.StatusPassed, result.StatusDryRun:
		return "ok"
	case result.StatusFailed, result.StatusError, result.StatusCancelled:
		return "bad"
	case result.StatusInconclusive, result.StatusRefused, result.StatusRunning:
		return "warn"
	}
	return "idle"
}

// rowsSection writes pre-rendered table rows in a <details> block, at most
// limit of them and then a row counting the rest.
func rowsSection(b *strings.Builder, title string, header []string, rs rows[string], limit int) {
	if rs.total == 0 {
		return
	}
	details(b, fmt.Sprintf("%s (%d)", title, rs.total), func() {
		newTable(b, header...)
		for i, row := range rs.keep {
			if i == limit {
				break
			}
			b.WriteString(row + "\n")
		}
		if rs.total > limit {
			fmt.Fprintf(b, "| … %d more |%s\n", rs.total-limit, strings.Repeat(" |", len(header)-1))
		}
	})
}

// ComplianceText is complianceLine for plain text (one line: the log
// writer neutralises what the names carry).
func ComplianceText(r *result.Run) string {
	return strings.Join(complianceParts(r, "", func(s string) string { return escape.Line(s, 300) }, "WARNING: "), "; ")
}

// replayWords says how a promoted phase's patch set was replayed.
func replayWords(pr *result.Promotion) string {
	switch {
	case pr.Mechanism == "":
		return "no replay"
	case pr.Exact:
		return fmt.Sprintf("exactly its %d patches, with %s", pr.Patches, cell(pr.Mechanism, 40))
	}
	return fmt.Sprintf("not patch by patch: %s", cell(pr.Mechanism, 40))
}

func noteWords(note string) string {
	if note == "" {
		return ""
	}
	return ": " + cell(note, 300)
}
