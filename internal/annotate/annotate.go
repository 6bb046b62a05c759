// Package annotate writes GitHub Actions workflow commands (::error and
// friends) safely: data and properties are escaped so that untrusted text
// cannot end the command or start another, and at most Limit annotations of
// a kind are written, then one line summarising the rest (GitHub shows only
// ten per step).
package annotate

import (
	"fmt"
	"io"
	"strings"
)

// Limit is how many annotations of one kind GitHub shows per step.
const Limit = 10

// Annotation is one workflow command.
type Annotation struct {
	Level   string // error, warning, notice
	File    string
	Line    int
	Col     int
	Title   string
	Message string
}

// EscapeData escapes a workflow command's message.
func EscapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// EscapeProperty escapes a workflow command's property value.
func EscapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// Format renders one annotation as a workflow command line.
func (a Annotation) Format() string {
	var props []string
	if a.File != "" {
		props = append(props, "file="+EscapeProperty(a.File))
	}
	if a.Line > 0 {
		props = append(props, fmt.Sprintf("line=%d", a.Line))
	}
	if a.Col > 0 {
		props = append(props, fmt.Sprintf("col=%d", a.Col))
	}
	if a.Title != "" {
		props = append(props, "title="+EscapeProperty(a.Title))
	}
	level := a.Level
	if level == "" {
		level = "error"
	}
	p := ""
	if len(props) > 0 {
		p = " " + strings.Join(props, ",")
	}
	return fmt.Sprintf("::%s%s::%s", level, p, EscapeData(a.Message))
}

// Write writes the annotations, at most Limit per level, and a summary
// annotation per level for those left out.
func Write(w io.Writer, as []Annotation) {
	count := map[string]int{}
	extra := map[string]int{}
	var order []string
	for _, a := range as {
		lvl := a.Level
		if lvl == "" {
			lvl = "error"
		}
		if _, seen := count[lvl]; !seen {
			order = append(order, lvl)
		}
		// One slot is kept for the summary when there are more than Limit.
		if count[lvl] < Limit-1 || (count[lvl] == Limit-1 && countLevel(as, lvl) == Limit) {
			fmt.Fprintln(w, a.Format())
			count[lvl]++
			continue
		}
		extra[lvl]++
	}
	for _, lvl := range order {
		if n := extra[lvl]; n > 0 {
			fmt.Fprintln(w, Annotation{Level: lvl, Message: fmt.Sprintf("%d more %ss not shown as annotations: see the log", n, lvl)}.Format())
		}
	}
}

func countLevel(as []Annotation, lvl string) int {
	n := 0
	for _, a := range as {
		l := a.Level
		if l == "" {
			l = "error"
		}
		if l == lvl {
			n++
		}
	}
	return n
}
