// Package escape is the one place untrusted text is made safe for where it
// goes: markdown text and table cells, code spans, HTML text (a <details>
// summary), mermaid labels, link destinations, sticky-comment markers, and
// the runner's log. Every string from a policy file, an AWS response or a
// result file passes through one of these before it is written; each
// function is safe for its own context only.
//
// Control characters (C0, DEL, C1, line and paragraph separators) and
// invisible format characters (bidi overrides, zero-width joiners) are
// never written as they are: line breaks become spaces in one-line
// contexts, the rest are shown as \uXXXX so a reader sees they were there.
package escape

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// zwsp is a zero-width space, written as an entity so the markdown source
// stays plain ASCII there. It is put after an @ (no mention), inside "://"
// and "www." (no autolink).
const zwsp = "&#8203;"

// hidden reports whether r must not be written as it is: a control
// character or an invisible format character (bidi overrides and isolates,
// zero-width characters, the BOM, soft hyphen).
func hidden(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || unicode.Is(unicode.Cf, r)
}

// lineBreak reports whether r ends a line for some reader: the runner and
// CommonMark (\n, \r), or Unicode (\v, \f, NEL, U+2028, U+2029).
func lineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

const hexDigits = "0123456789abcdef"

// writeU writes r as \uXXXX (a JSON escape too, so JSON output keeps its
// meaning when it passes through Log).
func writeU(b *strings.Builder, r rune) {
	if r > 0xffff {
		r = utf8.RuneError
	}
	b.WriteString(`\u`)
	for shift := 12; shift >= 0; shift -= 4 {
		b.WriteByte(hexDigits[(r>>shift)&0xf])
	}
}

// Line makes s one line of plain text: valid UTF-8, every run of white
// space and line breaks one space, no leading or trailing space, hidden
// characters shown as \uXXXX, and at most max runes (cut with "…"; max <= 0
// means no bound). It is the first step of every one-line context.
func Line(s string, max int) string {
	if isPlain(s) && (max <= 0 || len(s) <= max) {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	space, n := false, 0
	for _, r := range s { // an invalid byte reads as U+FFFD, written valid
		if unicode.IsSpace(r) || lineBreak(r) {
			space = b.Len() > 0
			continue
		}
		need := 1 // runes r takes as written: \uXXXX for a hidden one, never cut in two
		if hidden(r) {
			need = 6
		}
		if space {
			need++
		}
		if max > 0 && n+need > max {
			return trimCut(b.String(), max)
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if hidden(r) {
			writeU(&b, r)
		} else {
			b.WriteRune(r)
		}
		n += need
	}
	return b.String()
}

// trimCut ends an already-clean s, which more text followed, with an
// ellipsis, within max runes.
func trimCut(s string, max int) string {
	r := []rune(s)
	if len(r) >= max {
		r = r[:max-1]
	}
	return strings.TrimRight(string(r), " ") + "…"
}

// isPlain reports whether s is printable ASCII with single spaces only: the
// common case, which Line passes through without copying.
func isPlain(s string) bool {
	prevSpace := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			return false
		}
		if c == ' ' {
			if prevSpace {
				return false
			}
			prevSpace = true
			continue
		}
		prevSpace = false
	}
	return true
}

// textSpecial are the bytes Text changes anywhere in a line.
const textSpecial = "\\`*_[]|~$!^{}<>&\"@:wW"

// Text makes s safe as inline markdown anywhere on a line, a table cell
// included: one line (Line), no markup (emphasis, links, images, code,
// headings, lists, quotes, tables, math, footnotes), no raw HTML or
// entities, no autolinks, no @mentions. A reader sees s as it was.
func Text(s string, max int) string {
	s = Line(s, max)
	if s == "" || !strings.ContainsAny(s, textSpecial) && !strings.ContainsAny(s[:1], "#-+=:0123456789") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	// At the start of a line these begin a block (heading, list, quote,
	// setext underline, table): escaping the first one keeps it text.
	switch s[0] {
	case '#', '-', '+', '=', ':':
		b.WriteByte('\\')
	}
	digits := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= '0' && c <= '9' && digits == i {
			digits++
		}
		switch c {
		case '\\', '`', '*', '_', '[', ']', '|', '~', '$', '!', '^', '{', '}':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '.', ')':
			if digits == i && i > 0 { // "1." or "1)" would start an ordered list
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		default:
			i += writeInert(&b, s, i)
			continue
		}
		i++
	}
	return b.String()
}

// writeInert writes s[i] as both markdown text and HTML text need it: angle
// brackets, ampersand and double quote as entities, a zero-width space
// after @ (no mention) and inside "://" and "www." (no autolink), any other
// byte as it is. It returns how many bytes of s it wrote.
func writeInert(b *strings.Builder, s string, i int) int {
	switch c := s[i]; c {
	case '<':
		b.WriteString("&lt;")
	case '>':
		b.WriteString("&gt;")
	case '&':
		b.WriteString("&amp;")
	case '"':
		b.WriteString("&quot;")
	case '@':
		b.WriteString("@" + zwsp)
	case ':':
		b.WriteByte(':')
		if strings.HasPrefix(s[i+1:], "//") {
			b.WriteString(zwsp)
		}
	case 'w', 'W':
		if len(s) >= i+4 && strings.EqualFold(s[i:i+4], "www.") {
			b.WriteString(s[i : i+3])
			b.WriteString(zwsp)
			return 3
		}
		b.WriteByte(c)
	default:
		b.WriteByte(c)
	}
	return 1
}

// HTML makes s safe as the text of an HTML element in a markdown HTML block
// (a <details> summary, where markdown is not parsed): one line, every
// HTML-special character an entity, no mentions or autolinks.
func HTML(s string, max int) string {
	s = Line(s, max)
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		switch s[i] {
		case '\'':
			b.WriteString("&#39;")
		case '`':
			b.WriteString("&#96;")
		default:
			i += writeInert(&b, s, i)
			continue
		}
		i++
	}
	return b.String()
}

var codeEscaper = strings.NewReplacer("`", "'", "|", "¦", "<", "‹", ">", "›")

// Code renders s as an inline code span, safe in a table cell: one line, no
// backtick (which would end the span) or pipe (which ends a cell even in
// code), no angle brackets (so no marker or tag appears in a body, even
// where markdown would show it as code). Code
// spans show text literally, so mentions and links in them are inert.
func Code(s string, max int) string {
	s = codeEscaper.Replace(Line(s, max))
	if s == "" {
		return "–"
	}
	return "`" + s + "`"
}

var mermaidEscaper = strings.NewReplacer("\"", "'", "[", "(", "]", ")", "<", "‹", ">", "›", "`", "'", "#", "#35;", "&", "#38;", "{", "(", "}", ")", "|", "¦", ";", "#59;")

// Mermaid makes s safe inside a quoted mermaid node label in a fenced code
// block: one line, no quote, bracket, tag, backtick (which could end the
// fence) or entity (mermaid decodes #name; in labels).
func Mermaid(s string, max int) string {
	return mermaidEscaper.Replace(Line(s, max))
}
