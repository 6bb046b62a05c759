package report

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/result"
)

// lists is how long each list of a generated run is.
type lists struct {
	failed, timedOut, inconclusive, cancelled, offline int
	nonCompliant, findings, commands                   int
	backupsFailed, backupsOK                           int
	reasons                                            int
}

// listRun is a run of one policy, target and phase whose lists have the
// given lengths, split over two targets so that counting runs across them.
func listRun(l lists) *result.Run {
	r := &result.Run{RunID: "1", Status: result.StatusFailed, StartedAt: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)}
	p := result.Policy{Name: "pol", Status: result.StatusFailed}
	for ti := range 2 {
		// The first target gets half of each list (rounded down), the second the rest.
		part := func(n int) int {
			if ti == 0 {
				return n / 2
			}
			return n - n/2
		}
		t := result.Target{AccountID: fmt.Sprint(ti), Region: "r", Status: result.StatusFailed}
		ph := result.Phase{Name: "ph", Status: result.StatusFailed, Verification: &result.Verification{Compliance: &result.Compliance{}, Inspector: &result.Inspector{}}}
		w := result.Wave{Index: 1}
		add := func(o result.Outcome, n int) {
			for range part(n) {
				w.Instances = append(w.Instances, result.Instance{ID: fmt.Sprintf("i-%s-%d", o, len(w.Instances)), Outcome: o})
			}
		}
		// Outcomes deliberately out of rank order.
		add(result.OutcomeOffline, l.offline)
		add(result.OutcomeCancelled, l.cancelled)
		add(result.OutcomeSucceeded, 3)
		add(result.OutcomeInconclusive, l.inconclusive)
		add(result.OutcomeTimedOut, l.timedOut)
		add(result.OutcomeFailed, l.failed)
		for i := range part(l.nonCompliant) {
			ph.Verification.Compliance.NonCompliant = append(ph.Verification.Compliance.NonCompliant, result.InstanceCompliance{InstanceID: fmt.Sprintf("i-nc-%d-%d", ti, i), Reason: "missing"})
		}
		for i := range part(l.findings) {
			ph.Verification.Inspector.Fixed = append(ph.Verification.Inspector.Fixed, result.Finding{InstanceID: "i-f", CVE: fmt.Sprintf("CVE-%d-%d", ti, i), Severity: "LOW"})
		}
		for i := range part(l.commands) {
			w.Commands = append(w.Commands, result.Command{CommandID: fmt.Sprintf("cmd-%d-%d", ti, i), Sent: true})
		}
		for i := range part(l.backupsOK) {
			w.Backups = append(w.Backups, result.Backup{InstanceID: fmt.Sprintf("i-ok-%d-%d", ti, i), Snapshots: []string{"snap"}})
		}
		for i := range part(l.backupsFailed) {
			w.Backups = append(w.Backups, result.Backup{InstanceID: fmt.Sprintf("i-bad-%d-%d", ti, i), Snapshots: []string{"snap"}, Restore: []string{"restore"}})
		}
		for i := range part(l.reasons) {
			ph.Reasons = append(ph.Reasons, result.Reason{Code: "c", Message: fmt.Sprintf("reason %d-%d", ti, i)})
		}
		ph.Waves = []result.Wave{w}
		t.Phases = []result.Phase{ph}
		p.Targets = append(p.Targets, t)
	}
	r.Policies = []result.Policy{p}
	return r
}

var (
	sectionRe = regexp.MustCompile(`<details><summary>([^<]*) \((\d+)\)</summary>`)
	moreRe    = regexp.MustCompile(`^\| … (\d+) more`)
)

// section is what a report shows of one list.
type section struct {
	total int      // the count in its title
	rows  []string // its table rows, header and "more" row excluded
	more  int      // the count in its "… N more" row, -1 without one
}

// sections reads the <details> lists of a rendered run.
func sections(md string) map[string]section {
	out := map[string]section{}
	for _, block := range strings.Split(md, "<details>")[1:] {
		m := sectionRe.FindStringSubmatch("<details>" + block)
		if m == nil {
			continue
		}
		s := section{more: -1}
		s.total, _ = strconv.Atoi(m[2])
		lines := strings.Split(block, "\n")
		header := true
		for _, ln := range lines {
			switch {
			case !strings.HasPrefix(ln, "| "):
			case header:
				header = false // the first table line is the header; the separator does not start with "| "
			case moreRe.MatchString(ln):
				s.more, _ = strconv.Atoi(moreRe.FindStringSubmatch(ln)[1])
			default:
				s.rows = append(s.rows, ln)
			}
		}
		if m[1] == "Backups" {
			s.more = -1
			if mm := regexp.MustCompile(`… and (\d+) more in the JSON result`).FindStringSubmatch(block); mm != nil {
				s.more, _ = strconv.Atoi(mm[1])
			}
		}
		out[m[1]] = s
	}
	return out
}

// TestListsShowWhatTheirLevelAllows: at each detail level every list shows
// its first rows up to the level's limit and counts the rest exactly, at
// the limit and one over, whatever the list's length; the title counts
// the whole list; counts shows none of them.
func TestListsShowWhatTheirLevelAllows(t *testing.T) {
	type sec struct {
		title string
		set   func(l *lists, n int)
		lim   map[detail]int
	}
	secs := []sec{
		{"Failed instances", func(l *lists, n int) { l.failed = n }, failureRows},
		{"Non-compliant instances", func(l *lists, n int) { l.nonCompliant = n }, complyRows},
		{"Inspector findings", func(l *lists, n int) { l.findings = n }, findingRows},
		{"Backups", func(l *lists, n int) { l.backupsOK = n }, backupRows},
		{"Commands", func(l *lists, n int) { l.commands = n }, commandRows},
	}
	for _, s := range secs {
		for _, n := range []int{1, s.lim[collapsed], s.lim[collapsed] + 1, s.lim[full], s.lim[full] + 1, 3 * s.lim[full]} {
			var l lists
			s.set(&l, n)
			v := gather(listRun(l))
			for _, d := range []detail{full, collapsed} {
				got := sections(v.render(d, ""))[s.title]
				shown := min(n, s.lim[d])
				if got.total != n || len(got.rows) != shown || got.more != moreOf(n-shown) {
					t.Errorf("%s of %d at level %d: title %d, %d rows, %d more; want %d, %d, %d", s.title, n, d, got.total, len(got.rows), got.more, n, shown, moreOf(n-shown))
				}
			}
			if md := v.render(counts, ""); strings.Contains(md, s.title) {
				t.Errorf("%s of %d shown at the counts level", s.title, n)
			}
		}
	}
	for _, n := range []int{whyRows[counts], whyRows[counts] + 1, whyRows[collapsed] + 1, whyRows[full], whyRows[full] + 1} {
		v := gather(listRun(lists{reasons: n}))
		for _, d := range []detail{full, collapsed, counts} {
			md := v.render(d, "")
			shown := min(n, whyRows[d])
			got := strings.Count(md, "· ph: **c** reason")
			more := -1
			if m := regexp.MustCompile(`- … and (\d+) more\n`).FindStringSubmatch(md); m != nil {
				more, _ = strconv.Atoi(m[1])
			}
			if got != shown || more != moreOf(n-shown) {
				t.Errorf("%d reasons at level %d: %d shown, %d more; want %d, %d", n, d, got, more, shown, moreOf(n-shown))
			}
		}
	}
	if md := gather(listRun(lists{})).render(full, ""); strings.Contains(md, "<details>") || strings.Contains(md, "### Why") {
		t.Errorf("empty lists rendered:\n%s", md)
	}
}

// TestListsKeepTheirOrder: failures worst first (failed, timed out,
// inconclusive, cancelled, offline), each in the run's order; backups of
// failed instances first; the rest in the run's order, across targets.
func TestListsKeepTheirOrder(t *testing.T) {
	v := gather(listRun(lists{failed: 4, timedOut: 2, inconclusive: 2, cancelled: 2, offline: 60, backupsOK: 250, backupsFailed: 4, commands: 4, findings: 4, nonCompliant: 4}))
	secs := sections(v.render(full, ""))
	var outcomes []string
	for _, row := range secs["Failed instances"].rows {
		outcomes = append(outcomes, strings.TrimSpace(strings.Split(row, "|")[3]))
	}
	want := strings.Split("failed failed failed failed timed-out timed-out inconclusive inconclusive cancelled cancelled", " ")
	for range 40 {
		want = append(want, "offline")
	}
	if strings.Join(outcomes, " ") != strings.Join(want, " ") {
		t.Errorf("failure order %v", outcomes)
	}
	ids := func(rows []string, col int) string {
		var out []string
		for _, r := range rows {
			out = append(out, strings.Trim(strings.TrimSpace(strings.Split(r, "|")[col]), "`"))
		}
		return strings.Join(out, " ")
	}
	// Within a rank, the run's order: the first target's failures, then the second's.
	if got, where := ids(secs["Failed instances"].rows[:4], 1), ids(secs["Failed instances"].rows[:4], 2); got != "i-failed-34 i-failed-35 i-failed-35 i-failed-36" ||
		where != "pol · 0/r · ph pol · 0/r · ph pol · 1/r · ph pol · 1/r · ph" {
		t.Errorf("failed rows %q in %q", got, where)
	}
	if secs["Commands"].more != -1 || secs["Failed instances"].more != 20 {
		t.Errorf("more rows: commands %d, failures %d", secs["Commands"].more, secs["Failed instances"].more)
	}
	if got := ids(secs["Commands"].rows, 1); got != "cmd-0-0 cmd-0-1 cmd-1-0 cmd-1-1" {
		t.Errorf("commands %q", got)
	}
	if got := ids(secs["Non-compliant instances"].rows, 1); got != "i-nc-0-0 i-nc-0-1 i-nc-1-0 i-nc-1-1" {
		t.Errorf("non-compliant %q", got)
	}
	if got := ids(secs["Inspector findings"].rows, 1); got != "CVE-0-0 CVE-0-1 CVE-1-0 CVE-1-1" {
		t.Errorf("findings %q", got)
	}
	b := ids(secs["Backups"].rows, 1)
	if !strings.HasPrefix(b, "i-bad-0-0 i-bad-0-1 i-bad-1-0 i-bad-1-1 i-ok-0-0 i-ok-0-1 ") || !strings.HasSuffix(b, " i-ok-1-70") || secs["Backups"].more != 54 {
		t.Errorf("backups %q, %d more", b, secs["Backups"].more)
	}
}

// moreOf is the "… N more" a list of n hidden rows shows: none (-1) when
// nothing is hidden, never "0 more".
func moreOf(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
