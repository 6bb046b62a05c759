package report

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/patchgate/patchgate/internal/history"
	"github.com/patchgate/patchgate/internal/result"
)

// HistoryMarker is the comment marker after which a policy's history
// section starts (the tracking-issue comment appends it).
const HistoryMarker = "<!-- patchgate:history -->"

// Summarize is each policy of a run in the numbers its history keeps
// (policies skipped as not due are left out: an hourly schedule would
// fill the history with them):
// compliance over every targeted instance (nil when nothing was verified,
// so a refused run is never plotted as 0%), instances patched, Inspector
// findings fixed, and those remaining at or above the policy's threshold.
func Summarize(r *result.Run) []history.Entry {
	var out []history.Entry
	for _, p := range r.Policies {
		if p.Status == result.StatusSkipped {
			continue
		}
		one := *r
		one.Policies = []result.Policy{p}
		e := history.Entry{Policy: p.Name, RunID: r.RunID, RunURL: r.RunURL, StartedAt: r.StartedAt, EndedAt: r.EndedAt, Status: p.Status}
		if pct, ok := CompliancePercent(&one); ok {
			e.CompliancePercent = &pct
		}
		e.Targeted = ComplianceScope(&one).Targeted
		threshold := lowestThreshold(p)
		for _, t := range p.Targets {
			for _, ph := range t.Phases {
				e.Patched += ph.Counts.Succeeded
				if ph.Verification == nil || ph.Verification.Inspector == nil {
					continue
				}
				in := ph.Verification.Inspector
				e.CVEsFixed += len(in.Fixed)
				e.FixedNotListed = e.FixedNotListed || in.Listed != nil
				for _, f := range in.Remaining {
					if atOrAbove(f.Severity, threshold) {
						e.CVEsRemaining++
					}
				}
			}
		}
		out = append(out, e)
	}
	return out
}

// lowestThreshold is the lowest failOnSeverity of the policy's phases
// ("" when none: every remaining finding counts).
func lowestThreshold(p result.Policy) string {
	low := ""
	if p.Plan == nil {
		return low
	}
	for _, st := range p.Plan.Stages {
		if s := st.Inspector.FailOnSeverity; st.Inspector.Enabled && s != "" && (low == "" || severityRank(s) > severityRank(low)) {
			low = s
		}
	}
	return low
}

func severityRank(s string) int {
	if i := slices.Index(severityOrder, strings.ToUpper(s)); i >= 0 {
		return i
	}
	return len(severityOrder)
}

func atOrAbove(sev, threshold string) bool {
	return threshold == "" || severityRank(sev) <= severityRank(threshold)
}

// History renders a policy's last runs, oldest first: the trend in a
// sentence, a mermaid xychart of compliance where there are two points or
// more, and a table with a row per run.
func History(policy string, entries []history.Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n### %s: the last %s\n\n", HistoryMarker, cell(policy, 80), plural(len(entries), "run", "runs"))
	if len(entries) == 0 {
		b.WriteString("No runs recorded yet.\n")
		return b.String()
	}
	var pts []history.Entry
	for _, e := range entries {
		if e.CompliancePercent != nil {
			pts = append(pts, e)
		}
	}
	if len(pts) >= 2 {
		first, last := *pts[0].CompliancePercent, *pts[len(pts)-1].CompliancePercent
		fmt.Fprintf(&b, "Compliance after patching went from %.1f%% to %.1f%% (%+.1f points) over %s.\n\n", first, last, last-first, plural(len(pts), "verified run", "verified runs"))
		b.WriteString("```mermaid\nxychart-beta\n")
		fmt.Fprintf(&b, "    title \"%s: compliance after patching (%%)\"\n", chartText(policy))
		labels := make([]string, len(pts))
		values := make([]string, len(pts))
		for i, e := range pts {
			labels[i] = `"` + e.StartedAt.UTC().Format("01-02") + `"`
			values[i] = fmt.Sprintf("%.1f", *e.CompliancePercent)
		}
		fmt.Fprintf(&b, "    x-axis [%s]\n    y-axis \"compliance %%\" 0 --> 100\n    line [%s]\n```\n\n", strings.Join(labels, ", "), strings.Join(values, ", "))
	} else if len(pts) == 1 {
		fmt.Fprintf(&b, "One verified run so far: %.1f%% compliant after patching.\n\n", *pts[0].CompliancePercent)
	}
	tb := newTable(&b, "run", "started (UTC)", "status", "compliance", "instances patched", "CVEs fixed", "CVEs remaining")
	for _, e := range slices.Backward(entries) {
		run := cell(e.RunID, 40)
		if u := safeURL(e.RunURL); u != "" {
			run = fmt.Sprintf("[%s](%s)", run, u)
		}
		comp := "—"
		if e.CompliancePercent != nil {
			comp = fmt.Sprintf("%.1f%%", *e.CompliancePercent)
		}
		fixed := fmt.Sprint(e.CVEsFixed)
		if e.FixedNotListed {
			fixed = "not listed"
		}
		tb.row(run, e.StartedAt.UTC().Format("2006-01-02 15:04"), cell(string(e.Status), 20), comp,
			fmt.Sprint(e.Patched), fixed, fmt.Sprint(e.CVEsRemaining))
	}
	b.WriteString("\n_Compliance: — when the run verified nothing (refused, halted before any phase, dry run). CVEs remaining: still active with a fix, at or above the policy's `failOnSeverity`. Time from a patch's release to its install is not shown: results do not record patch release and install times yet._\n")
	return b.String()
}

// safeURL is an https URL fit for a markdown link target, or "": the
// records come from a bucket, and a link must not close early or inject.
func safeURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || strings.ContainsAny(s, " ()<>\"\\`\n\r\t") {
		return ""
	}
	return u.String()
}

// chartText keeps a title inside mermaid's quotes.
func chartText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '`' || r == '\\' || r < 0x20 {
			return '\''
		}
		return r
	}, s)
}
