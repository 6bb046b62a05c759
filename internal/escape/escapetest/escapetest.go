// Package escapetest holds what the hostile-input tests of several packages
// share: the seed strings from issue #17, a filler that puts strings into
// every string field of a value, and the checks a rendered report and a
// log must pass. It is imported by tests only.
package escapetest

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/text"
)

// Seeds are the hostile strings of issue #17 and their relatives.
var Seeds = []string{
	"bad\r::stop-commands::X.yaml",
	"x\r::set-output name=y::pwned",
	"\n::error file=a.yaml::injected",
	"  ::warning::indented",
	"##[error]legacy command",
	"a\r\r<script>alert(1)</script>",
	"`code\r\r<img src=x onerror=alert(1)>`",
	"<!-- patchgate:plan -->",
	"<!-- patchgate:run:web-fleet -->",
	"cmd-1\n| x | y |\n<script>",
	"[click](javascript:alert(1))",
	"![img](https://evil.example/x.png)",
	"https://evil.example/phish www.evil.example mail@evil.example",
	"@acme/platform please look, @octocat",
	"&#64;team &lt;b&gt; &#x40;user",
	"evil\u202egnp.exe\u2066\u2069\u200b",
	"line\u2028sep\u2029para\u0085nel\v\f",
	"esc\x1b[31mred\x1b]8;;https://evil\x07",
	"ä\xff\xfe",
	"</details><details><summary>x",
	"```\n```mermaid",
	"\"]:::ok\n  x[\"y",
	"# heading\n---\n1. list",
	"$\\color{red}{x}$ [^1]",
}

// Fill sets every string in *ptr (fields, slice and map elements, map keys,
// named string types such as statuses) from next, and gives empty slices
// and nil pointers of structs one element, down to a few levels.
func Fill(ptr any, next func() string) {
	fill(reflect.ValueOf(ptr).Elem(), next, 0)
}

var timeType = reflect.TypeOf(time.Time{})

func fill(v reflect.Value, next func() string, depth int) {
	if depth > 12 || !v.CanSet() && v.Kind() != reflect.Struct {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(next())
	case reflect.Struct:
		if v.Type() == timeType {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), next, depth+1)
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			if v.Type().Elem().Kind() != reflect.Struct || v.Type().Elem() == timeType {
				return
			}
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), next, depth+1)
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		}
		for i := 0; i < v.Len(); i++ {
			fill(v.Index(i), next, depth+1)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i < 2; i++ {
			k := reflect.New(v.Type().Key()).Elem()
			k.SetString(next())
			e := reflect.New(v.Type().Elem()).Elem()
			switch e.Kind() {
			case reflect.Int:
				e.SetInt(int64(i + 1))
			default:
				fill(e, next, depth+1)
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	}
}

// Cycle returns a next func for Fill that goes round strs, each time a
// little different (joined with its neighbour every third time), so fields
// do not all get the same string.
func Cycle(strs ...string) func() string {
	i := 0
	return func() string {
		s := strs[i%len(strs)]
		if i%3 == 2 {
			s += strs[(i+1)%len(strs)]
		}
		i++
		return s
	}
}

// hidden is a character that must never reach a report or log as it is.
func hidden(r rune) bool {
	return r < 0x20 && r != '\n' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || unicode.Is(unicode.Cf, r)
}

var (
	// ourHTML are the only HTML lines a report writes.
	ourHTML   = regexp.MustCompile(`^(<details><summary>[^<>]*</summary>|</details>|<!-- patchgate:(plan|run|run:[A-Za-z0-9._%-]+) -->)$`)
	ourLink   = regexp.MustCompile(`^https://(github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/actions/runs/[0-9]+|[a-z0-9-]+\.console\.aws\.amazon\.com/systems-manager/run-command/[A-Za-z0-9-]+(\?region=[a-z0-9-]+)?)$`)
	mention   = regexp.MustCompile(`@[A-Za-z0-9]`)
	autoLink  = regexp.MustCompile(`(?i)(https?|ftp)://|www\.`)
	markerPfx = "<!-- patchgate:"
)

// CheckMarkdown checks a rendering as GitHub would read it (GFM, parsed
// with goldmark): within limit bytes, valid UTF-8, no hidden character, no
// HTML but patchgate's own lines, no image, no link but to patchgate's own
// hosts, no autolink or live mention in text, every table row as wide as
// its header, and markers patchgate markers (the first line when there is
// one).
func CheckMarkdown(md string, limit, markers int) error {
	var errs []string
	fail := func(format string, args ...any) {
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	if len(md) > limit {
		fail("%d bytes, over the %d limit", len(md), limit)
	}
	if !utf8.ValidString(md) {
		fail("not valid UTF-8")
	}
	for _, r := range md {
		if hidden(r) {
			fail("hidden character %U", r)
			break
		}
	}
	if n := strings.Count(md, markerPfx); n != markers {
		fail("%d markers, want %d", n, markers)
	} else if markers == 1 && !strings.HasPrefix(md, markerPfx) {
		fail("the marker is not the first line")
	}
	src := []byte(md)
	doc := goldmark.New(goldmark.WithExtensions(extension.GFM)).Parser().Parse(text.NewReader(src))
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.HTMLBlock:
			for i := 0; i < n.Lines().Len(); i++ {
				seg := n.Lines().At(i)
				line := strings.TrimRight(string(seg.Value(src)), "\n")
				if !ourHTML.MatchString(line) {
					fail("raw HTML from input: %q", line)
				}
				if mention.MatchString(line) || autoLink.MatchString(line) {
					fail("live mention or autolink in HTML: %q", line)
				}
			}
		case *ast.RawHTML:
			fail("inline raw HTML: %q", rawText(n, src))
		case *ast.Image:
			fail("image to %q", n.Destination)
		case *ast.AutoLink:
			fail("autolink to %q", n.URL(src))
		case *ast.Link:
			if !ourLink.Match(n.Destination) {
				fail("link to %q", n.Destination)
			}
		case *ast.Text:
			if _, code := n.Parent().(*ast.CodeSpan); code {
				break
			}
			t := string(n.Segment.Value(src))
			if mention.MatchString(t) || autoLink.MatchString(t) {
				fail("live mention or autolink in %q", t)
			}
		case *east.Table:
			want := n.FirstChild().ChildCount()
			i := 0
			for row := n.FirstChild().NextSibling(); row != nil; row = row.NextSibling() {
				i++
				if row.ChildCount() != want {
					fail("table row %d has %d cells, its header %d", i, row.ChildCount(), want)
				}
			}
		}
		return ast.WalkContinue, nil
	})
	if o, c := strings.Count(md, "<details>"), strings.Count(md, "</details>"); o != c {
		fail("%d <details> but %d </details>", o, c)
	}
	if strings.Count(md, "```")%2 != 0 {
		fail("unclosed code fence")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func rawText(n *ast.RawHTML, src []byte) string {
	var b strings.Builder
	for i := 0; i < n.Segments.Len(); i++ {
		s := n.Segments.At(i)
		b.Write(s.Value(src))
	}
	return b.String()
}

var ourCommand = regexp.MustCompile(`^::(stop-commands::[0-9a-f]{32}|[0-9a-f]{32}::)$`)

// CheckLog checks text printed to the runner's log: no line (lines end at
// \n or \r) starts, after white space, with "::" or holds "##[" anywhere
// (the runner's two command forms: actions/runner's ActionCommand
// TryParseV2 and TryParse), but the
// stop-commands lines patchgate writes and the lines in ours (the commands
// the caller knows patchgate issued); no hidden character but \n and \t.
func CheckLog(s string, ours ...string) error {
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		l := strings.TrimLeftFunc(line, unicode.IsSpace)
		if (strings.HasPrefix(l, "::") || strings.Contains(line, "##[")) && !ourCommand.MatchString(line) && !slices.Contains(ours, line) {
			return fmt.Errorf("a line from input is a workflow command: %q", line)
		}
	}
	for _, r := range s {
		if hidden(r) && r != '\t' {
			return fmt.Errorf("hidden character %U in the log", r)
		}
	}
	return nil
}
