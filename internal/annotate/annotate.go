// Package annotate writes GitHub Actions workflow commands (::error and
// friends) safely: data and properties are escaped so that untrusted text
// cannot end the command or start another, and at most Limit annotations of
// a kind are written, then one line summarising the rest (GitHub shows only
// ten per step).
package annotate

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/patchgate/patchgate/internal/escape"
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

// Format renders one annotation as a workflow command line, escaped by
// go-githubactions (data: %, \r, \n; properties also : and ,), after any
// other hidden character (bidi overrides, terminal escapes) is shown as
// \uXXXX. A message keeps its line breaks (the runner shows them); the
// title is one line; the file name is left whole so the annotation lands on
// the file (the escaping alone keeps it inside the property).
func (a Annotation) Format() string {
	props := githubactions.CommandProperties{}
	if a.File != "" {
		props["file"] = a.File // as it is: the runner decodes it back to the file's real name
	}
	if a.Line > 0 {
		props["line"] = strconv.Itoa(a.Line)
	}
	if a.Col > 0 {
		props["col"] = strconv.Itoa(a.Col)
	}
	if a.Title != "" {
		props["title"] = escape.Line(a.Title, 200)
	}
	level := a.Level
	if level == "" {
		level = "error"
	}
	lines := strings.FieldsFunc(a.Message, func(r rune) bool { return r == '\n' || r == '\r' })
	for i, l := range lines {
		lines[i] = escape.Line(l, 0)
	}
	cmd := githubactions.Command{Name: level, Properties: props, Message: strings.Join(lines, "\n")}
	return cmd.String()
}

// Write writes the annotations, at most Limit per level, and a summary
// annotation per level for those left out.
func Write(w io.Writer, as []Annotation) {
	// How many of each level there are, counted once: whether the last
	// slot shows an annotation or the summary depends on it, and counting
	// again at each annotation past the ninth took quadratic time (100,000
	// policy problems: a minute).
	total := map[string]int{}
	var order []string
	for _, a := range as {
		lvl := levelOf(a)
		if total[lvl] == 0 {
			order = append(order, lvl)
		}
		total[lvl]++
	}
	count := map[string]int{}
	for _, a := range as {
		lvl := levelOf(a)
		// One slot is kept for the summary when there are more than Limit.
		if count[lvl] < Limit-1 || (count[lvl] == Limit-1 && total[lvl] == Limit) {
			fmt.Fprintln(w, a.Format())
			count[lvl]++
		}
	}
	for _, lvl := range order {
		if n := total[lvl] - count[lvl]; n > 0 {
			fmt.Fprintln(w, Annotation{Level: lvl, Message: fmt.Sprintf("%d more %ss not shown as annotations: see the log", n, lvl)}.Format())
		}
	}
}

// levelOf is an annotation's level, "error" when none is set.
func levelOf(a Annotation) string {
	if a.Level == "" {
		return "error"
	}
	return a.Level
}
