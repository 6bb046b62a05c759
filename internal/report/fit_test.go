package report

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestLimits: a comment holds 65,536 characters, a step summary 1 MiB.
func TestLimits(t *testing.T) {
	if got := Comment.Limit(); got != 65536 {
		t.Errorf("comment limit %d", got)
	}
	if got := Summary.Limit(); got != 1<<20 {
		t.Errorf("summary limit %d", got)
	}
}

// TestFitTakesTheMostDetailThatFits: a rendering of exactly the limit is
// kept; one byte over, the next level is tried; when none fits, the last is
// cut to the limit.
func TestFitTakesTheMostDetailThatFits(t *testing.T) {
	limit := Comment.Limit()
	for _, tc := range []struct {
		name  string
		sizes map[detail]int
		want  detail
	}{
		{"full at the limit", map[detail]int{full: limit, collapsed: 10, counts: 5}, full},
		{"full one over", map[detail]int{full: limit + 1, collapsed: limit, counts: 5}, collapsed},
		{"collapsed one over", map[detail]int{full: limit + 1, collapsed: limit + 1, counts: limit}, counts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tried []detail
			out := fit(Comment, func(d detail) string {
				tried = append(tried, d)
				return strings.Repeat(string(rune('a'+int(d))), tc.sizes[d])
			}, "")
			if len(out) != tc.sizes[tc.want] || out[0] != byte('a'+int(tc.want)) || tried[len(tried)-1] != tc.want {
				t.Errorf("got %d bytes of %q after trying %v, want level %d", len(out), out[:1], tried, tc.want)
			}
		})
	}
	out := fit(Summary, func(d detail) string { return strings.Repeat("x\n", Summary.Limit()) }, "https://github.com/o/r/actions/runs/1")
	if len(out) > Summary.Limit() || !strings.HasSuffix(out, "the complete report is in [the run](https://github.com/o/r/actions/runs/1)._\n") {
		t.Errorf("nothing fits: %d bytes ending %q", len(out), out[max(0, len(out)-120):])
	}
}

// TestCut: whole lines within the budget (the limit less the note and 64
// bytes for closing tags), the code fence and <details> it cut open closed,
// and the note saying where the rest is.
func TestCut(t *testing.T) {
	const link = "https://github.com/o/r/actions/runs/1"
	note := "\n\n_The report is too large to show in full; the complete report is in [the run](" + link + ")._\n"
	plain := "\n\n_The report is too large to show in full._\n"
	for _, tc := range []struct {
		name  string
		s     string
		limit int
		link  string
		want  string
	}{
		{"fits: unchanged, no tail", "abc\ndef", 7 + len(plain) + 64, "", "abc\ndef" + plain},
		{"one byte over: the last partial line goes", "abc\ndef", 6 + len(plain) + 64, "", "abc\n" + plain},
		{"cut after a newline at 0", "\nabcdef", 5 + len(plain) + 64, "", "\n" + plain},
		{"a line longer than the budget is cut on a rune boundary", "ääää", 5 + len(plain) + 64, "", "ää" + plain},
		{"with a link", "l1\nl2\nl3\n", 6 + len(note) + 64, link, "l1\nl2\n" + note},
		{"budget below zero keeps nothing", "abc\n", 10, "", plain},
		{"an open fence is closed", "a\n```\ncode\nmore code\n", 12 + len(plain) + 64, "", "a\n```\ncode\n```\n" + plain},
		{"two open details closed, one closed already", "<details>\n<details>\n</details>\n<details>\nx\ny\n", 43 + len(plain) + 64, "",
			"<details>\n<details>\n</details>\n<details>\nx\n" + "\n</details>\n\n</details>\n" + plain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cut(tc.s, tc.limit, tc.link)
			if got != tc.want {
				t.Errorf("cut(%q, %d)\n got %q\nwant %q", tc.s, tc.limit, got, tc.want)
			}
			if tc.limit > 200 && len(got) > tc.limit || !utf8.ValidString(got) {
				t.Errorf("%d bytes over a limit of %d, or invalid UTF-8", len(got), tc.limit)
			}
		})
	}
}

// TestTableRows: a row is padded to the header's columns and cut to them.
func TestTableRows(t *testing.T) {
	var b strings.Builder
	tb := newTable(&b, "a", "b", "c")
	tb.row("1")
	tb.row("1", "2", "3", "4")
	if want := "| a | b | c |\n|---|---|---|\n| 1 |  |  |\n| 1 | 2 | 3 |\n"; b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 runs", 1: "1 run", 2: "2 runs"} {
		if got := plural(n, "run", "runs"); got != want {
			t.Errorf("plural(%d) = %q", n, got)
		}
	}
}
