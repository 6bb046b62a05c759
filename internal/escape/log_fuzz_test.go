package escape

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/patchgate/patchgate/internal/escape/escapetest"
)

// FuzzLogWriter cuts hostile text into writes at places chosen by seed and
// checks the LogWriter two ways. The cut does not change the text: writes
// of any sizes print what Log prints, and one write across a 64 KiB
// chunk's edge prints what writes a byte at a time print. And with Flush
// and commands of patchgate's own between the writes, no line is a
// workflow command by the runner's rule (escapetest.CheckLog: "::" after
// white space, "##[" anywhere) but ours, each whole on a line of its own,
// and nothing hidden is printed.
func FuzzLogWriter(f *testing.F) {
	for i, s := range escapetest.Seeds {
		f.Add(s, uint64(i)*0x9e3779b97f4a7c15+1)
	}
	f.Add("  :\n:::x::y", uint64(4)) // cuts "  :\n:" ":" ":x:": a command, then Flush, between the colons
	f.Add("#\n##[\r\n  ##[a]#", uint64(7))
	f.Add(strings.Repeat(" ", maxIndent)+"\u3000::x", uint64(11))
	f.Fuzz(func(t *testing.T, in string, seed uint64) {
		next := func(n int) int { // xorshift: the same cuts for the same seed
			seed ^= seed << 13
			seed ^= seed >> 7
			seed ^= seed << 17
			return int(seed % uint64(n))
		}
		var cuts []string
		for rest := in; len(rest) > 0; {
			n := 1 + next(min(len(rest), 8))
			cuts, rest = append(cuts, rest[:n]), rest[n:]
		}

		want := Log(in)
		if endsOpen(in) {
			want += "\n" // Flush ends a line start it could not decide; Log's text ends there
		}
		var b bytes.Buffer
		w := NewLogWriter(&b)
		for _, c := range cuts {
			_, _ = io.WriteString(w, c)
		}
		w.Flush()
		if got := b.String(); got != want {
			t.Fatalf("writes %q: %q, want %q", cuts, got, want)
		}

		// One write across a chunk's edge, against a byte at a time.
		filler := strings.Repeat("a", writeChunk-1-next(min(len(in)+1, 8)))
		b.Reset()
		w = NewLogWriter(&b)
		_, _ = io.WriteString(w, filler+in)
		w.Flush()
		var one bytes.Buffer
		w = NewLogWriter(&one)
		_, _ = io.WriteString(w, filler)
		for i := range len(in) {
			_, _ = w.Write([]byte{in[i]})
		}
		w.Flush()
		if b.String() != one.String() {
			t.Fatalf("one write over a chunk's edge at %d: %q, a byte at a time %q", len(filler), b.String()[len(filler):], one.String()[len(filler):])
		}

		// Flush and commands between the writes.
		const ours = "::notice::ours"
		b.Reset()
		w = NewLogWriter(&b)
		for _, c := range cuts {
			switch next(4) {
			case 0:
				w.Flush()
			case 1:
				_, _ = io.WriteString(w.Commands(), ours+"\n")
			}
			_, _ = io.WriteString(w, c)
		}
		w.Flush()
		out := b.String()
		if err := escapetest.CheckLog(out, ours); err != nil {
			t.Fatalf("writes %q with Flush and commands: %v\n%q", cuts, err, out)
		}
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out: %q", out)
		}
	})
}

// endsOpen reports whether Log(in) ends in a line start it could not
// decide (white space, ":"): Flush then adds a line break that Log, whose
// text ends there, does not.
func endsOpen(in string) bool {
	var b bytes.Buffer
	w := NewLogWriter(&b)
	_, _ = io.WriteString(w, in)
	return w.atStart && len(w.pending) > 0
}
