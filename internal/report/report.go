// Package report renders results as markdown: the job summary, the PR or
// issue comment, for runs (result.Run) and plans (plan.Plan). It is pure:
// no AWS, no GitHub, no clock. Every rendering fits its size limit at any
// fleet size by dropping detail in steps (tables into <details>, then into
// counts with a link to the run), and never cuts inside markdown or UTF-8.
package report

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/patchgate/patchgate/internal/escape"
)

// Kind is where a rendering goes; each has GitHub's size limit.
type Kind int

const (
	Summary Kind = iota // $GITHUB_STEP_SUMMARY: at most 1 MiB
	Comment             // an issue or PR comment: at most 65,536 characters
)

// Limit is the size limit of a kind, in bytes (a comment's limit is in
// characters; bytes are never fewer, so bytes are the safe measure).
func (k Kind) Limit() int {
	if k == Comment {
		return 65536
	}
	return 1 << 20
}

// Markers identify patchgate's sticky comments, one per report kind.
func PlanMarker() string { return "<!-- patchgate:plan -->" }

// RunMarker identifies the sticky run report of a policy ("" = all). The
// name is encoded (escape.MarkerName): a marker is only ever patchgate's.
func RunMarker(policy string) string {
	if policy == "" {
		return "<!-- patchgate:run -->"
	}
	return "<!-- patchgate:run:" + escape.MarkerName(policy) + " -->"
}

// detail is how much a rendering shows; renderers try Full first.
type detail int

const (
	full      detail = iota
	collapsed        // long lists in <details>, fewer rows
	counts           // counts only, and a link to the run
)

// fit renders at decreasing detail until the output fits kind's limit; as
// a last resort it cuts whole lines and closes what it cut open.
func fit(kind Kind, render func(d detail) string, link string) string {
	var out string
	for _, d := range []detail{full, collapsed, counts} {
		out = render(d)
		if len(out) <= kind.Limit() {
			return out
		}
	}
	return cut(out, kind.Limit(), link)
}

// cut keeps the whole lines of s that fit in limit with a closing note,
// then closes any <details> and code fence left open.
func cut(s string, limit int, link string) string {
	note := "\n\n_The report is too large to show in full"
	if link != "" {
		note += "; the complete report is in " + escape.Link("the run", link, 0)
	}
	note += "._\n"
	budget := limit - len(note) - 64 // room for closing tags
	if budget < 0 {
		budget = 0
	}
	if budget < len(s) {
		s = s[:budget]
		if i := strings.LastIndexByte(s, '\n'); i >= 0 {
			s = s[:i+1]
		}
		for !utf8.ValidString(s) { // only if a single line exceeded the budget
			s = s[:len(s)-1]
		}
	}
	var tail strings.Builder
	if strings.Count(s, "```")%2 == 1 {
		tail.WriteString("```\n")
	}
	for open := strings.Count(s, "<details>") - strings.Count(s, "</details>"); open > 0; open-- {
		tail.WriteString("\n</details>\n")
	}
	return s + tail.String() + note
}

// cell makes a string safe as markdown text, in a table cell or anywhere
// on a line: one line, no markup, HTML, links or mentions, bounded length.
func cell(s string, max int) string { return escape.Text(s, max) }

// code renders s as inline code, safe in a table cell.
func code(s string) string { return escape.Code(s, 200) }

// table writes a markdown table.
type table struct {
	b    *strings.Builder
	cols int
}

func newTable(b *strings.Builder, header ...string) *table {
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	return &table{b: b, cols: len(header)}
}

func (t *table) row(cells ...string) {
	for len(cells) < t.cols {
		cells = append(cells, "")
	}
	t.b.WriteString("| " + strings.Join(cells[:t.cols], " | ") + " |\n")
}

// details writes a <details> block; summary is HTML text (escape.HTML for
// anything from input), since markdown is not parsed in an HTML block.
func details(b *strings.Builder, summary string, body func()) {
	b.WriteString("<details><summary>" + summary + "</summary>\n\n")
	body()
	b.WriteString("\n</details>\n\n")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
