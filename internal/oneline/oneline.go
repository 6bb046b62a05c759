// Package oneline makes text from elsewhere (AWS error messages, alarm
// reasons, instance output: anyone's to write) fit one line of a report,
// log or message: no line breaks or control characters, runs of spaces
// folded, bounded length, valid UTF-8.
package oneline

import "strings"

// Clean returns s as one line of at most n bytes (n >= 4); a cut ends in "…".
func Clean(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !startsRune(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + "…"
}

// startsRune reports whether b begins a UTF-8 encoded rune.
func startsRune(b byte) bool { return b&0xC0 != 0x80 }
