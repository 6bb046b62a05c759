package rollout

import (
	"strings"
	"testing"
)

// The Comment is how a re-run finds what an earlier attempt sent, and SSM
// refuses one over 100 characters: a name that fits exactly is kept
// readable, one character more falls back to a digest, and a run id too
// long for even that is digested too.
func TestCommentAtTheLimit(t *testing.T) {
	// "patchgate run=42 " + policy + "/" + phase + "/w1/c1" is 24 + the names.
	pol := strings.Repeat("p", 40)
	for _, tc := range []struct {
		name, run, pol, ph string
		readable, runKept  bool
	}{
		{"exactly 100, readable", "42", pol, strings.Repeat("s", 36), true, true},
		{"101, digested", "42", pol, strings.Repeat("s", 37), false, true},
		// "patchgate run=" + run + " " + 16 hex + "/w1/c1" is 37 + the run id.
		{"digest form exactly 100 keeps the run id", strings.Repeat("r", 63), pol, "s", false, true},
		{"digest form 101 digests the run id too", strings.Repeat("r", 64), pol, "s", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Comment(tc.run, tc.pol, tc.ph, 1, 1)
			if len(c) > maxComment {
				t.Fatalf("%d characters: %q", len(c), c)
			}
			if got := strings.Contains(c, tc.pol+"/"+tc.ph); got != tc.readable {
				t.Errorf("readable %v, want %v: %q", got, tc.readable, c)
			}
			if got := strings.HasPrefix(c, "patchgate run="+tc.run+" "); got != tc.runKept {
				t.Errorf("run id kept %v, want %v: %q", got, tc.runKept, c)
			}
			if !strings.HasSuffix(c, "/w1/c1") {
				t.Errorf("wave and chunk must stay readable: %q", c)
			}
			if tc.readable && len(c) != maxComment {
				t.Errorf("the readable case must be exactly at the limit: %d", len(c))
			}
		})
	}
}

func TestConsoleURL(t *testing.T) {
	if got := ConsoleURL("eu-west-1", ""); got != "" {
		t.Errorf("no command, no link: %q", got)
	}
	if got, want := ConsoleURL("eu-west-1", "c-1"), "https://eu-west-1.console.aws.amazon.com/systems-manager/run-command/c-1?region=eu-west-1"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// SendCommand takes at most 50 instance ids: 50 is one command, 51 two;
// every id is in exactly one chunk, in order.
func TestChunksAtTheLimit(t *testing.T) {
	for _, n := range []int{1, 49, 50, 51, 100, 101} {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		}
		ch := Chunks(ids)
		if want := (n + 49) / 50; len(ch) != want {
			t.Fatalf("%d ids: %d chunks, want %d", n, len(ch), want)
		}
		var all []string
		for _, c := range ch {
			if len(c) > maxInstanceIDs || len(c) == 0 {
				t.Fatalf("%d ids: a chunk of %d", n, len(c))
			}
			all = append(all, c...)
		}
		if strings.Join(all, ",") != strings.Join(ids, ",") {
			t.Fatalf("%d ids: chunks %v do not hold every id once, in order", n, ch)
		}
	}
}

// excerpt keeps the tail of an invocation's output (where
// AWS-RunPatchBaseline prints its error): text at the limit is whole, one
// byte over is cut to the limit, starting after a newline when the cut has
// one, never inside a UTF-8 sequence, and marked with "...".
func TestExcerptEdges(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     string
	}{
		{"at the limit", "abcdef", 6, "abcdef"},
		{"one over", "abcdefg", 6, "...bcdefg"},
		{"surrounding space is not counted", "  abcdef\n", 6, "abcdef"},
		{"starts after a newline in the cut", "xxxx\nabc", 6, "...abc"},
		{"a newline first in the cut", "xxxxx\nabcde", 6, "...abcde"},
		{"not inside a UTF-8 sequence", "xé!", 2, "...!"},
		{"a cut that starts on a whole character", "xé!", 3, "...é!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := excerpt(tc.in, tc.max); got != tc.want {
				t.Errorf("excerpt(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
		})
	}
}
