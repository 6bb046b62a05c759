package escape

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The GitHub Actions runner reads a step's output line by line (a line
// ends at \n or \r) and runs as a workflow command any line that starts,
// after white space, with "::", and any line that holds the older "##["
// anywhere (actions/runner: ActionCommand.TryParse looks for it with
// IndexOf, so a "\" before it does not help). Text derived from input must
// therefore never start a line with "::", never hold "##[", and never carry
// a \r.

// Log makes s safe to print to the runner's log as it is, keeping its
// lines: \r and every other hidden character are shown as \r or \uXXXX,
// a line that would start a workflow command with "::" gets a leading "\",
// and the "[" of "##[" is written \u005b, so it reads the same and is inert
// (and JSON keeps its meaning: "[" after "##" is only ever in a string).
func Log(s string) string {
	var b strings.Builder
	w := &LogWriter{w: &b, atStart: true}
	_, _ = io.WriteString(w, s)
	w.flushLocked() // the text ends here: no line break after an open line start
	return b.String()
}

// LogWriter writes to w what it is given, made safe for the runner's log
// (see Log); workflow commands patchgate means to issue go through
// Commands, which writes them as they are. A LogWriter is safe for
// concurrent use; lines from Commands never split a line of text.
type LogWriter struct {
	mu      sync.Mutex
	w       io.Writer
	atStart bool   // the next byte begins a line
	hashes  int    // how many '#' end the output so far (at most 2 counted): a '[' next would make "##["
	pending []byte // bytes held until it is known how they end: a line start, or half a rune
	buf     []byte // converted output, reused from one chunk to the next
}

// writeChunk bounds what one conversion holds: a whole report often comes
// in one Write, and it is converted and passed on a chunk at a time
// instead of doubled in memory.
const writeChunk = 64 << 10

// maxIndent is the most leading white space held back while waiting for a
// line's first character; past it the line is marked inert ("\" first)
// without waiting, so a hostile run of spaces cannot be held and copied
// again at every write.
const maxIndent = 4 << 10

// NewLogWriter returns a LogWriter over w.
func NewLogWriter(w io.Writer) *LogWriter { return &LogWriter{w: w, atStart: true} }

// Write writes p made safe. It always reports len(p) written unless w
// fails.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for off := 0; off < len(p); off += writeChunk {
		data := p[off:min(off+writeChunk, len(p))]
		if len(l.pending) > 0 {
			data = append(l.pending, data...)
		}
		if cap(l.buf) < len(data)+16 {
			l.buf = make([]byte, 0, len(data)+16)
		}
		var rest []byte
		l.buf, rest = l.convert(l.buf[:0], data, false)
		// rest may alias pending's array or p: copy it down (memmove).
		l.pending = append(l.pending[:0], rest...)
		if err := l.emit(l.buf); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// Flush writes what is held back (a line start that may have become a
// command, half a rune) as if the text ended there. A line start written
// undecided ("  :") is ended with a line break: text written after Flush
// would otherwise continue it, and "  :" then ":x::" make a command.
func (l *LogWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	open := l.atStart && len(l.pending) > 0
	l.flushLocked()
	if open {
		_ = l.emit([]byte{'\n'})
		l.atStart = true
	}
}

func (l *LogWriter) flushLocked() {
	if len(l.pending) == 0 {
		return
	}
	l.buf, _ = l.convert(l.buf[:0], l.pending, true)
	l.pending = l.pending[:0]
	_ = l.emit(l.buf)
}

// emit writes converted text to w. When w fails, how much of b reached the
// log is unknown: it may have stopped at a line's start ("\n" of "\n\\::")
// or after "##" (of "##\u005b"), so what comes next is checked as both.
func (l *LogWriter) emit(b []byte) error {
	_, err := l.w.Write(b)
	if err != nil {
		l.atStart, l.hashes = true, 2
	}
	return err
}

// convert appends data made safe to out; unless final, it returns the tail
// it cannot decide yet (an incomplete rune, or a line start that could
// become "::").
func (l *LogWriter) convert(out, data []byte, final bool) (_, rest []byte) {
	i := 0
	for i < len(data) {
		if l.atStart {
			j := i
			// Past maxIndent the line is decided: stop before a half rune
			// at the end of the write could hold the whole indent back.
			for j < len(data) && j-i <= maxIndent {
				r, size := utf8.DecodeRune(data[j:])
				if r == utf8.RuneError && size <= 1 && !utf8.FullRune(data[j:]) && !final {
					return out, data[i:]
				}
				if r == '\n' || r == '\r' || !unicode.IsSpace(r) {
					break
				}
				j += size
			}
			head := data[j:]
			if !final && j-i <= maxIndent && isCommandPrefix(head) {
				return out, data[i:] // cannot tell yet whether this line is a command
			}
			if startsCommand(head) || j-i > maxIndent {
				out = append(out, '\\')
			}
			l.atStart = false
		}
		// Printable ASCII passes as it is: copy a run of it at once, up
		// to a "[" that would follow "##".
		if c := data[i]; c >= 0x20 && c < 0x7f {
			j, h := i, l.hashes
			for j < len(data) && data[j] >= 0x20 && data[j] < 0x7f {
				if data[j] == '#' {
					h = min(h+1, 2)
				} else if data[j] == '[' && h == 2 {
					break
				} else {
					h = 0
				}
				j++
			}
			out = append(out, data[i:j]...)
			l.hashes = h
			if j < len(data) && data[j] == '[' && h == 2 {
				out = append(out, `\u005b`...)
				l.hashes = 0
				j++
			}
			i = j
			continue
		}
		l.hashes = 0
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 && !utf8.FullRune(data[i:]) && !final {
			return out, data[i:]
		}
		switch {
		case r == '\n':
			out = append(out, '\n')
			l.atStart = true
		case r == '\r':
			out = append(out, `\r`...)
		case r == '\t':
			out = append(out, '\t')
		case r == utf8.RuneError && size <= 1:
			out = append(out, "\uFFFD"...)
		case hidden(r):
			var b strings.Builder
			writeU(&b, r)
			out = append(out, b.String()...)
		default:
			out = append(out, data[i:i+size]...)
		}
		i += size
	}
	return out, nil
}

// isCommandPrefix reports whether b could still grow into "::" ("" or
// ":"). It must not copy b: b is the rest of a write, which may be a whole
// report, and this runs at every line start.
func isCommandPrefix(b []byte) bool {
	return len(b) < 2 && string(b) == "::"[:len(b)]
}

func startsCommand(b []byte) bool {
	return len(b) >= 2 && b[0] == ':' && b[1] == ':'
}

// Commands returns a writer for the workflow commands patchgate issues
// itself (::add-mask::, ::error file=...::, ::group::): written as they
// are, each on a line of its own.
func (l *LogWriter) Commands() io.Writer { return commandWriter{l} }

type commandWriter struct{ l *LogWriter }

func (c commandWriter) Write(p []byte) (int, error) {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	if !l.atStart {
		if err := l.emit([]byte{'\n'}); err != nil {
			return 0, err
		}
	}
	if err := l.emit(p); err != nil {
		return 0, err
	}
	l.atStart = len(p) == 0 || p[len(p)-1] == '\n'
	if len(p) > 0 {
		l.hashes = 0
		for k := len(p) - 1; k >= 0 && p[k] == '#' && l.hashes < 2; k-- {
			l.hashes++
		}
	}
	return len(p), nil
}

// CommandWriter returns the writer workflow commands go to when w is a
// LogWriter's output, or w itself.
func CommandWriter(w io.Writer) io.Writer {
	if l, ok := w.(*LogWriter); ok {
		return l.Commands()
	}
	return w
}

// StopCommands writes the runner's "stop processing commands" line with a
// fresh random token, and returns the line that resumes them: around a
// block of untrusted text, nothing in it is run, whatever it holds.
func StopCommands(w io.Writer) (resume string) {
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	t := hex.EncodeToString(tok[:])
	_, _ = io.WriteString(CommandWriter(w), "::stop-commands::"+t+"\n")
	return "::" + t + "::\n"
}
