package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/patchgate/patchgate/internal/result"
)

// Outcome maps an SSM command invocation's Status and StatusDetails to
// patchgate's outcome. StatusDetails is checked first because it separates
// what Status lumps together (DeliveryTimedOut and Undeliverable are both
// "TimedOut"/"Failed"). Anything not recognised is inconclusive, never a
// success: a new SSM status must not turn into a false green.
func Outcome(status, details string) (result.Outcome, bool) {
	d := normalize(details)
	switch d {
	case "success":
		return result.OutcomeSucceeded, true
	case "deliverytimedout", "executiontimedout":
		return result.OutcomeTimedOut, true
	case "failed", "undeliverable", "terminated", "accessdenied", "invalidplatform":
		return result.OutcomeFailed, true
	case "cancelled", "canceled":
		return result.OutcomeCancelled, true
	case "pending", "inprogress", "delayed", "cancelling":
		return result.OutcomePending, false
	}
	switch normalize(status) {
	case "success":
		return result.OutcomeSucceeded, true
	case "timedout":
		return result.OutcomeTimedOut, true
	case "failed":
		return result.OutcomeFailed, true
	case "cancelled", "canceled":
		return result.OutcomeCancelled, true
	case "pending", "inprogress", "delayed", "cancelling":
		return result.OutcomePending, false
	}
	return result.OutcomeInconclusive, true
}

// CommandTerminal reports whether an SSM command (ListCommands) Status is final.
func CommandTerminal(status string) bool {
	switch normalize(status) {
	case "success", "failed", "timedout", "cancelled", "canceled", "incomplete", "rateexceeded", "accessdenied", "nodelivered", "deliverytimedout", "executiontimedout":
		return true
	}
	return false
}

func normalize(s string) string {
	return strings.ToLower(strings.NewReplacer(" ", "", "_", "", "-", "").Replace(s))
}

// maxComment is SendCommand's Comment limit.
const maxComment = 100

// Comment is the SendCommand Comment that identifies one chunk of one wave
// of one run. It is how a re-run finds what an earlier attempt sent, so it
// must be the same for the same inputs. Names that would overflow SSM's
// 100-character limit are replaced by a short digest (the label is kept
// readable where it fits).
func Comment(runID, policy, phase string, wave, chunk int) string {
	c := fmt.Sprintf("patchgate run=%s %s/%s/w%d/c%d", runID, policy, phase, wave, chunk)
	if len(c) <= maxComment {
		return c
	}
	sum := sha256.Sum256([]byte(runID + "\x00" + policy + "\x00" + phase))
	digest := hex.EncodeToString(sum[:])[:16]
	if c = fmt.Sprintf("patchgate run=%s %s/w%d/c%d", runID, digest, wave, chunk); len(c) <= maxComment {
		return c
	}
	return fmt.Sprintf("patchgate run=%s %s/w%d/c%d", digest, digest, wave, chunk)
}

// ConsoleURL links to a command in the Systems Manager console.
func ConsoleURL(region, commandID string) string {
	if commandID == "" {
		return ""
	}
	return fmt.Sprintf("https://%s.console.aws.amazon.com/systems-manager/run-command/%s?region=%s", region, commandID, region)
}

// maxInstanceIDs is SendCommand's limit on InstanceIds.
const maxInstanceIDs = 50

// Chunks splits ids into SendCommand-sized pieces.
func Chunks(ids []string) [][]string {
	var out [][]string
	for len(ids) > 0 {
		n := min(len(ids), maxInstanceIDs)
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	return out
}

// excerpt shortens command output for a report: the last lines carry the
// error in AWS-RunPatchBaseline's output, so keep the tail.
func excerpt(s string, max int) string {
	s = strings.TrimSpace(s)
	if len(s) <= max {
		return s
	}
	cut := s[len(s)-max:]
	if i := strings.IndexByte(cut, '\n'); i >= 0 && i < len(cut)-1 {
		cut = cut[i+1:]
	}
	// Do not start in the middle of a UTF-8 sequence.
	for len(cut) > 0 && cut[0]&0xC0 == 0x80 {
		cut = cut[1:]
	}
	return "..." + cut
}
