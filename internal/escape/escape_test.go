package escape

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/patchgate/patchgate/internal/escape/escapetest"
)

func TestLine(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"  a\r\n b\rc\vd\fe\u0085f\u2028g\u2029h\t ", "a b c d e f g h"},
		{"bad\r::stop-commands::X", "bad ::stop-commands::X"},
		{"esc\x1b[31mred\x00nul\x7fdel\u009bcsi", `esc\u001b[31mred\u0000nul\u007fdel\u009bcsi`},
		{"evil\u202egnp.exe\u2066x\u200b", `evil\u202egnp.exe\u2066x\u200b`},
		{"ä\xffö", "ä\uFFFDö"},
	}
	for _, c := range cases {
		if got := Line(c.in, 0); got != c.want {
			t.Errorf("Line(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := Line("abcdefgh", 5); got != "abcd…" {
		t.Errorf("cut: %q", got)
	}
	if got := Line("ab  cd", 5); got != "ab cd" {
		t.Errorf("no cut needed: %q", got)
	}
	for in, want := range map[string]string{"abcd efgh": "abcd…", "abc  defg": "abc…", "abc\u202edefg": "abc…", "a\u202eb": "a…"} {
		if got := Line(in, 5); got != want || utf8.RuneCountInString(got) > 5 {
			t.Errorf("Line(%q, 5) = %q, want %q", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"web-fleet", "web-fleet"},
		{"a|b", `a\|b`},
		{"<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"<!-- patchgate:plan -->", "&lt;\\!-- patchgate:plan --&gt;"},
		{"[x](javascript:alert(1))", `\[x\](javascript:alert(1))`},
		{"ping @org/team and @user", "ping @&#8203;org/team and @&#8203;user"},
		{"see https://evil.example/x and WWW.evil.com", "see https:&#8203;//evil.example/x and WWW&#8203;.evil.com"},
		{"# heading", `\# heading`},
		{"- item", `\- item`},
		{"12. item", `12\. item`},
		{"=====", `\=====`},
		{"> quote", "&gt; quote"},
		{"`code` *em* _em_ ~~s~~ $x$", "\\`code\\` \\*em\\* \\_em\\_ \\~\\~s\\~\\~ \\$x\\$"},
		{"&#64;team &lt;", "&amp;#64;team &amp;lt;"},
		{"a\r\r<b>", "a &lt;b&gt;"},
	}
	for _, c := range cases {
		if got := Text(c.in, 0); got != c.want {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCodeHTMLMermaid(t *testing.T) {
	if got := Code("a`b|c<!-- patchgate:plan -->\r\nd", 0); got != "`a'b¦c‹!-- patchgate:plan --› d`" {
		t.Errorf("Code: %q", got)
	}
	if got := Code("", 0); got != "–" {
		t.Errorf("empty code: %q", got)
	}
	if got := HTML(`<b onclick="x">'@a'</b>`, 0); got != "&lt;b onclick=&quot;x&quot;&gt;&#39;@&#8203;a&#39;&lt;/b&gt;" {
		t.Errorf("HTML: %q", got)
	}
	if got := Mermaid("a\"]:::bad\n```\n#lt;x&y;", 0); got != "a'):::bad ''' #35;lt#59;x#38;y#59;" {
		t.Errorf("Mermaid: %q", got)
	}
}

func TestURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://github.com/acme/infra/actions/runs/12345", "https://github.com/acme/infra/actions/runs/12345"},
		{"https://us-east-1.console.aws.amazon.com/systems-manager/run-command/abc-1?region=us-east-1", "https://us-east-1.console.aws.amazon.com/systems-manager/run-command/abc-1?region=us-east-1"},
		{"https://github.com/o/r/actions/runs/1/attempts/2#x", "https://github.com/o/r/actions/runs/1/attempts/2"},
		{"https://acme.ghe.com/o/r/actions/runs/1", "https://acme.ghe.com/o/r/actions/runs/1"},
		{"https://github.com/a/b)<script>|x y'", ""},
		{"https://github.com/o/r/actions/runs/1)<x>", ""},
		{"https://github.com/o/r/actions/runs/1%29", ""},
		{"https://github.com/evil/phish", ""},
		{"https://x.console.aws.amazon.com/systems-manager/run-command/abc?region=a)b|c#frag", "https://x.console.aws.amazon.com/systems-manager/run-command/abc"},
		{"https://x.console.aws.amazon.com/p", ""},
		{"javascript:alert(1)", ""},
		{"http://github.com/a", ""},
		{"https://evil.example/a", ""},
		{"https://github.com.evil.example/a", ""},
		{"https://user:pw@github.com/a", ""},
		{"https://github.com:8443/a", ""},
		{"//github.com/a", ""},
		{"https://GITHUB.com\n/a", ""},
	}
	for _, c := range cases {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := Link("cmd|1\n<x>", "javascript:alert(1)", 0); got != `cmd\|1 &lt;x&gt;` {
		t.Errorf("unsafe link kept: %q", got)
	}
	if got := Link("run", "https://github.com/o/r/actions/runs/1", 0); got != "[run](https://github.com/o/r/actions/runs/1)" {
		t.Errorf("link: %q", got)
	}
}

func TestMarkerName(t *testing.T) {
	for in, want := range map[string]string{"web-fleet": "web-fleet", "a --> b": "a%20%2d-%3e%20b", "x\r\ny": "x%0d%0ay", "100%": "100%25"} {
		if got := MarkerName(in); got != want {
			t.Errorf("MarkerName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLog(t *testing.T) {
	in := "plan for bad\r::stop-commands::X.yaml\n::set-output name=y::1\n  ::warning::w\n##[error]e\nfine: ::not at start\nnot fine: ##[add-mask]x ###[y #[z\n\u2028::error::x\nesc\x1b[2J"
	got := Log(in)
	if err := escapetest.CheckLog(got); err != nil {
		t.Errorf("%v in\n%s", err, got)
	}
	want := "plan for bad\\r::stop-commands::X.yaml\n\\::set-output name=y::1\n\\  ::warning::w\n##\\u005berror]e\nfine: ::not at start\nnot fine: ##\\u005badd-mask]x ###\\u005by #[z\n\\\\u2028::error::x\nesc\\u001b[2J"
	if got != want {
		t.Errorf("Log:\n got %q\nwant %q", got, want)
	}
	if strings.Count(got, "\n") != strings.Count(in, "\n") {
		t.Error("lines were joined or split")
	}
}

// TestLogWriterSplitWrites: a command split over several writes, or a rune
// split in two, is still caught.
func TestLogWriterSplitWrites(t *testing.T) {
	in := "a\n::set-output name=x::1\nb ä\u202e\n:\n##[x\n"
	for size := 1; size <= 4; size++ {
		var b bytes.Buffer
		w := NewLogWriter(&b)
		for i := 0; i < len(in); i += size {
			_, _ = io.WriteString(w, in[i:min(i+size, len(in))])
		}
		w.Flush()
		if got, want := b.String(), Log(in); got != want {
			t.Errorf("writes of %d bytes: %q, want %q", size, got, want)
		}
		if !utf8.Valid(b.Bytes()) || escapetest.CheckLog(b.String()) != nil {
			t.Errorf("writes of %d bytes: %q", size, b.String())
		}
	}
}

// TestLogWriterLegacyCommandAnywhere: the runner runs a line holding "##["
// anywhere (ActionCommand.TryParse finds it with IndexOf), so no "##["
// reaches the log, however the text is cut into writes; a "\" before it
// would not help.
func TestLogWriterLegacyCommandAnywhere(t *testing.T) {
	in := "##[error]a\nb ##[add-mask]c\n\\##[d\n#\n#[e\n###[f ##x[ #[g\n  ##[stop-commands]h ##[[i\n"
	want := "##\\u005berror]a\nb ##\\u005badd-mask]c\n\\##\\u005bd\n#\n#[e\n###\\u005bf ##x[ #[g\n  ##\\u005bstop-commands]h ##\\u005b[i\n"
	if got := Log(in); got != want {
		t.Fatalf("Log:\n got %q\nwant %q", got, want)
	}
	for i := range len(in) {
		for j := i; j <= len(in); j++ {
			var b bytes.Buffer
			w := NewLogWriter(&b)
			for _, part := range []string{in[:i], in[i:j], in[j:]} {
				_, _ = io.WriteString(w, part)
			}
			w.Flush()
			if got := b.String(); got != want {
				t.Fatalf("writes %q %q %q: %q", in[:i], in[i:j], in[j:], got)
			}
		}
	}
	// A command of patchgate's own that leaves its line open is followed
	// by text on the same line: its '#'s count too.
	var b bytes.Buffer
	w := NewLogWriter(&b)
	_, _ = io.WriteString(w.Commands(), "::notice::#")
	_, _ = io.WriteString(w, "#[x\n")
	if got := b.String(); got != "::notice::##\\u005bx\n" {
		t.Errorf("after a command ending in '#': %q", got)
	}
	// A command on a line of its own ends the '#'s before it.
	b.Reset()
	_, _ = io.WriteString(w, "##")
	_, _ = io.WriteString(w.Commands(), "::notice::x\n")
	_, _ = io.WriteString(w, "[y\n")
	if got := b.String(); got != "##\n::notice::x\n[y\n" {
		t.Errorf("after a command on its own line: %q", got)
	}
}

func TestCommandsPassThroughOnTheirOwnLine(t *testing.T) {
	var b bytes.Buffer
	w := NewLogWriter(&b)
	fmt.Fprint(w, "half a line ")
	fmt.Fprintln(CommandWriter(w), "::add-mask::secret")
	fmt.Fprintln(w, "::error::not ours")
	resume := StopCommands(w)
	fmt.Fprint(w, "::x::")
	fmt.Fprint(CommandWriter(w), resume)
	lines := strings.Split(b.String(), "\n")
	if lines[0] != "half a line " || lines[1] != "::add-mask::secret" || lines[2] != `\::error::not ours` ||
		!strings.HasPrefix(lines[3], "::stop-commands::") || lines[4] != `\::x::` || lines[5] != resume[:len(resume)-1] {
		t.Errorf("%q", lines)
	}
	if tok := strings.TrimPrefix(lines[3], "::stop-commands::"); len(tok) != 32 || resume != "::"+tok+"::\n" {
		t.Errorf("token %q, resume %q", tok, resume)
	}
	if StopCommands(io.Discard) == resume {
		t.Error("the stop-commands token must be fresh each time")
	}
}

func TestLogWriterConcurrent(t *testing.T) {
	var b bytes.Buffer
	w := NewLogWriter(&b)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				fmt.Fprintln(w, "line ::x::")
				fmt.Fprintln(CommandWriter(w), "::add-mask::m")
			}
		}()
	}
	wg.Wait()
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if l != "line ::x::" && l != "::add-mask::m" {
			t.Fatalf("interleaved line %q", l)
		}
	}
}

// TestLogWriterLinearInOneWrite: a whole report often arrives in one Write
// (json.Encoder, a rendered summary); deciding each line's start must not
// copy the rest of it, or a large report takes quadratic time to print.
// Counted in allocations, which do not depend on the machine's speed.
func TestLogWriterLinearInOneWrite(t *testing.T) {
	allocs := func(lines int) float64 {
		in := []byte(strings.Repeat(`  "instanceId": "i-0123456789abcdef0",`+"\n", lines))
		return testing.AllocsPerRun(5, func() {
			w := NewLogWriter(io.Discard)
			_, _ = w.Write(in)
			w.Flush()
		})
	}
	// One allocation per line start is the quadratic copy; a buffer per
	// chunk of the write is not.
	if n := allocs(20_000); n > 200 {
		t.Errorf("one write of 20,000 lines made %.0f allocations, 10 lines %.0f: the cost grows with the lines", n, allocs(10))
	}
}

// BenchmarkLogWriter prints a 50,000-instance report's worth of JSON lines
// in one write, as `patchgate report --format json` does.
func BenchmarkLogWriter(b *testing.B) {
	in := []byte(strings.Repeat(`      "instanceId": "i-0123456789abcdef0", "state": "Failed",`+"\n", 200_000))
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		w := NewLogWriter(io.Discard)
		_, _ = w.Write(in)
		w.Flush()
	}
}

// TestLogWriterChunkBoundaries: a large write is converted a chunk at a
// time; a command, an indented command or a rune across a chunk's edge is
// caught the same as in small writes.
func TestLogWriterChunkBoundaries(t *testing.T) {
	// DEL (0x7f) borders the printable ASCII that is copied in runs.
	tail := "\n::error::x\n  ##[y\nä€😀\u202e\nx\x7fy ~\n\x7f\n"
	want := "\n\\::error::x\n  ##\\u005by\nä€😀\\u202e\nx\\u007fy ~\n\\u007f\n"
	for _, k := range []int{-12, -6, -3, -2, -1, 0, 1, 2, 3} {
		filler := strings.Repeat("a", writeChunk+k)
		in := filler + tail + filler + tail
		for _, size := range []int{len(in), writeChunk - 1, 4097, 7, 1} {
			var b bytes.Buffer
			w := NewLogWriter(&b)
			for i := 0; i < len(in); i += size {
				_, _ = w.Write([]byte(in[i:min(i+size, len(in))]))
			}
			w.Flush()
			if got := b.String(); got != filler+want+filler+want {
				t.Fatalf("edge %+d, writes of %d: %q", k, size, got[len(filler)-2:])
			}
		}
	}
}

// TestLogWriterLongIndent: past maxIndent of leading white space a line
// is marked inert without waiting for its first character, so hostile
// white space is neither held nor copied at every write.
func TestLogWriterLongIndent(t *testing.T) {
	long, short := strings.Repeat(" ", maxIndent+1), strings.Repeat(" ", maxIndent)
	for in, want := range map[string]string{
		long + "::x":          `\` + long + "::x",
		long + "ok":           `\` + long + "ok",
		short + "ok":          short + "ok",
		short + "::x":         `\` + short + "::x",
		"a\n" + long + "##[x": "a\n\\" + long + "##\\u005bx",
	} {
		var b bytes.Buffer
		w := NewLogWriter(&b)
		held := 0
		for i := range len(in) {
			_, _ = w.Write([]byte{in[i]})
			held = max(held, len(w.pending))
		}
		w.Flush()
		if got := b.String(); got != want {
			t.Errorf("%d bytes: got %q..., want %q...", len(in), got[:min(len(got), 8)], want[:min(len(want), 8)])
		}
		// The indent, and at most ":" or three bytes of a rune after it.
		if held > maxIndent+3 {
			t.Errorf("%d bytes: held %d bytes back, more than maxIndent+3", len(in), held)
		}
		if got := Log(in); got != want {
			t.Errorf("Log of %d bytes: got %q..., want %q...", len(in), got[:min(len(got), 8)], want[:min(len(want), 8)])
		}
	}
}

// TestLogWriterLongIndentHalfRune: a long indent that ends a write, or a
// 64 KiB chunk, in half a rune is decided at maxIndent too, not held back
// whole until the rune is complete. White space of 3-byte U+3000 placed
// across every chunk's edge made one 1 MiB write hold (and copy again at
// every chunk) the whole indent.
func TestLogWriterLongIndentHalfRune(t *testing.T) {
	var big []byte
	for len(big) < 16*writeChunk {
		for len(big)%writeChunk != writeChunk-1 {
			big = append(big, ' ')
		}
		big = append(big, "\u3000"...)
	}
	long := strings.Repeat(" ", maxIndent+10)
	for _, writes := range [][]string{
		{string(big) + "::x\n"},
		{long + "\xe3\x80", "\x80::x\n"},
	} {
		pw := &pendingPeek{}
		w := NewLogWriter(pw)
		pw.l = w
		for _, p := range writes {
			_, _ = io.WriteString(w, p)
		}
		w.Flush()
		in := strings.Join(writes, "")
		if pw.held > maxIndent+3 {
			t.Errorf("%d bytes: held %d bytes back, more than maxIndent+3", len(in), pw.held)
		}
		if got, want := pw.b.String(), `\`+in; got != want {
			t.Errorf("%d bytes: got %q..., want %q...", len(in), got[:min(len(got), 8)], want[:min(len(want), 8)])
		}
	}
}

// pendingPeek records the most bytes its LogWriter held back when it wrote.
type pendingPeek struct {
	l    *LogWriter
	b    bytes.Buffer
	held int
}

func (p *pendingPeek) Write(b []byte) (int, error) {
	p.held = max(p.held, len(p.l.pending))
	return p.b.Write(b)
}

// TestLogWriterWritesAfterFlush: Flush writes a line start it could not
// decide yet; what is written after it must not complete a command on
// that line (untrustedBlock flushes, and other goroutines may write).
func TestLogWriterWritesAfterFlush(t *testing.T) {
	for _, c := range []struct{ before, after, want string }{
		{"  :", ":add-mask::x\n", "  :\n:add-mask::x\n"},
		{"a\n\t", "::error::x\n", "a\n\t\n\\::error::x\n"},
		{"a\n \xe3\x80", "\x80::x\n", "a\n \uFFFD\uFFFD\n\uFFFD::x\n"},
		{"ab", "::x\n", "ab::x\n"},                           // mid-line: nothing was held, nothing changes
		{"ab\xe3\x80", "\x80c\n", "ab\uFFFD\uFFFD\uFFFDc\n"}, // half a rune mid-line: no line break
		{"a #", "#[x\n", "a ##\\u005bx\n"},
	} {
		var b bytes.Buffer
		w := NewLogWriter(&b)
		_, _ = io.WriteString(w, c.before)
		w.Flush()
		_, _ = io.WriteString(w, c.after)
		w.Flush()
		if got := b.String(); got != c.want || escapetest.CheckLog(got) != nil {
			t.Errorf("%q, Flush, %q: got %q, want %q", c.before, c.after, got, c.want)
		}
	}
	if got := Log("a\n  :"); got != "a\n  :" {
		t.Errorf("Log ends where its text ends: %q", got)
	}
}

// TestLogWriterAfterAFailedWrite: when the writer below fails part way
// through, the log may end at a line's start or after "##"; text written
// next must not complete a command there.
func TestLogWriterAfterAFailedWrite(t *testing.T) {
	for _, c := range []struct {
		first string
		cut   int // bytes of the first write's output that reach the log
		next  string
	}{
		{"ok\n::x", len("ok\n"), "::evil::y\n"},
		{"a ##[b", len("a ##"), "[add-mask]c\n"},
	} {
		fw := &failOnce{cut: c.cut}
		w := NewLogWriter(fw)
		if n, err := io.WriteString(w, c.first); err == nil || n != 0 {
			t.Fatalf("%q: wrote %d, %v; want 0 and the writer's error", c.first, n, err)
		}
		if _, err := io.WriteString(w, c.next); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if got := fw.b.String(); escapetest.CheckLog(got) != nil {
			t.Errorf("%q cut at %d, then %q: %q", c.first, c.cut, c.next, got)
		}
	}
}

// failOnce writes the first cut bytes of its first write and fails it.
type failOnce struct {
	b      bytes.Buffer
	cut    int
	failed bool
}

func (f *failOnce) Write(p []byte) (int, error) {
	if !f.failed {
		f.failed = true
		n, _ := f.b.Write(p[:min(f.cut, len(p))])
		return n, errors.New("disk full")
	}
	return f.b.Write(p)
}

// TestLogRunnerWhiteSpace: the runner trims a line with .NET's
// string.TrimStart before looking for "::", which trims every
// Char.IsWhiteSpace: the Zs, Zl and Zp categories, \t to \r and NEL. Each
// of them before "::" (and a run of them) leaves no command.
func TestLogRunnerWhiteSpace(t *testing.T) {
	dotnetSpace := func(r rune) bool {
		return unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp) || r >= '\t' && r <= '\r' || r == 0x85
	}
	n := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !dotnetSpace(r) || r == '\n' || r == '\r' {
			continue
		}
		n++
		for _, in := range []string{string(r) + "::x", "a\n" + string(r) + " " + string(r) + "::x"} {
			got := Log(in)
			for _, line := range strings.FieldsFunc(got, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if strings.HasPrefix(strings.TrimLeftFunc(line, dotnetSpace), "::") {
					t.Errorf("%U: %q is a command to the runner", r, line)
				}
			}
		}
	}
	if n != 23 { // 17 Zs (with the space), Zl, Zp, \t, \v, \f and NEL
		t.Errorf("%d white space runes; the table changed", n)
	}
}
