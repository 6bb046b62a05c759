// Package suggest is patchgate's one did-you-mean: the closest known name
// to a mistyped one (commands, policy names, policy keys and values).
package suggest

import (
	"fmt"
	"strings"
)

// Closest returns the known name nearest to name (case-insensitively) and
// whether it is near enough to suggest: at most maxDist edits, or a third
// of name's length when that is larger. An exact case-insensitive match
// always counts.
func Closest(name string, known []string, maxDist int) (string, bool) {
	best, bestD := "", -1
	for _, k := range known {
		d := Distance(strings.ToLower(name), strings.ToLower(k))
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD < 0 || bestD > max(maxDist, len(name)/3) {
		return "", false
	}
	return best, true
}

// DidYouMean is " (did you mean "x"?)" for the closest known name, or "".
func DidYouMean(name string, known []string, maxDist int) string {
	if best, ok := Closest(name, known, maxDist); ok {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// Distance is the Levenshtein edit distance between a and b, in bytes.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
