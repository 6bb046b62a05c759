// Package gate decides a phase's verdict: passed, failed, inconclusive,
// cancelled or error, each with reasons a person can read. It is the one
// place a verdict is made. It does no I/O: rollout and verify gather the
// evidence, the gate judges it, and every rule is a branch of Decide that a
// table test can reach.
package gate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

// Settings are the compiled phase's gate settings.
type Settings struct {
	Threshold     policy.Percent // successThreshold, a percentage
	Compliance    bool           // verify.compliance
	Inspector     bool           // verify.inspector.enabled
	PendingReboot string         // policy.PendingRebootFail or policy.PendingRebootWarn
}

// SettingsOf reads a compiled stage's gate settings.
func SettingsOf(s *policy.Stage) Settings {
	return Settings{Threshold: s.SuccessThreshold, Compliance: s.Compliance, Inspector: s.Inspector.Enabled, PendingReboot: s.PendingReboot}
}

// Wave is what the gate needs of one wave's sending.
type Wave struct {
	Index int
	// Errors and ErrorLimit: failed invocations counted against maxErrors,
	// and how many the wave tolerates. Errors > ErrorLimit stops the wave.
	Errors, ErrorLimit int
	MaxErrors          string // as the policy writes it, for the reason
	// Unsent instances: never sent because the wave or the run stopped.
	Unsent int
	// Unknown instances: a send patchgate cannot tell happened or not.
	Unknown []string
	// Failure is set when patchgate itself could not send (an API error,
	// such as access denied): the phase is in error, not failed.
	Failure *Failure
}

// Failure is an error patchgate met while doing the phase's work.
type Failure struct {
	Code    string // e.g. "inventory", "send", "poll", "verification", "aws-access-denied"
	Message string
}

// Evidence is everything a phase's verdict rests on.
type Evidence struct {
	DryRun bool
	// Cancelled: the run was cancelled before the gate could be decided.
	Cancelled bool
	// Failure: patchgate could not do its job (inventory, verification...).
	Failure *Failure
	// Preflight: the phase was not sent because it could not pass.
	Preflight *result.Reason
	// Health: a health alarm was in ALARM before the phase, or entered it
	// during the phase (verify.health).
	Health *result.Reason
	// Counts of every instance the phase targeted, sent or not.
	Counts result.Counts
	// Inconclusive instances: no final invocation status.
	Inconclusive []string
	Waves        []Wave
	// VerifierConfigured: evidence can be gathered at all in this run.
	VerifierConfigured bool
	// Verification is nil when no evidence was gathered.
	Verification *result.Verification
}

// Denominator is what the threshold is measured against: every targeted
// instance except those deliberately skipped and those still pending (a
// dry run's).
func Denominator(c result.Counts) int { return c.Targeted - c.Skipped - c.Pending }

// Meets reports whether c's successes meet the threshold.
func Meets(c result.Counts, thresh policy.Percent) bool {
	d := Denominator(c)
	return d == 0 || c.Succeeded >= thresh.Ceil(d)
}

// Blocking reports whether a verification reason holds back a pass, and as
// what. Unknown codes are inconclusive: a reason patchgate does not
// understand is never read as green.
func Blocking(code string) result.Status {
	switch code {
	case "noncompliant", "inspector-severity", "require-fixed", "pending-reboot":
		return result.StatusFailed
	case "no-patch-state", "no-rescan", "inspector-unavailable", "verification":
		return result.StatusInconclusive
	case "pending-reboot-warning":
		return result.StatusPassed
	}
	return result.StatusInconclusive
}

// Decide judges a phase. The order is the order of precedence: a dry run
// judges nothing; an error, a cancellation or a stopped wave outranks what
// the instances did; the threshold outranks evidence; evidence is needed
// for a pass when the phase asks for it.
func Decide(ev Evidence, s Settings) (result.Status, []result.Reason) {
	if ev.DryRun {
		return result.StatusDryRun, nil
	}
	if ev.Failure != nil {
		return result.StatusError, []result.Reason{{Code: ev.Failure.Code, Message: ev.Failure.Message}}
	}
	for _, w := range ev.Waves {
		if w.Failure != nil {
			return result.StatusError, []result.Reason{{Code: w.Failure.Code, Message: fmt.Sprintf("wave %d: %s", w.Index, w.Failure.Message)}}
		}
	}
	if ev.Cancelled {
		return result.StatusCancelled, []result.Reason{{Code: "cancelled", Message: "the run was cancelled before this phase's gate was decided; in-flight commands were cancelled"}}
	}
	if ev.Preflight != nil {
		return result.StatusFailed, []result.Reason{*ev.Preflight}
	}
	if ev.Health != nil {
		return result.StatusFailed, []result.Reason{*ev.Health}
	}
	// A command that may have run unseen: instances may be patching that
	// patchgate does not track, so no verdict either way is true.
	var unknown []string
	for _, w := range ev.Waves {
		unknown = append(unknown, w.Unknown...)
	}
	if len(unknown) > 0 {
		return result.StatusInconclusive, []result.Reason{{Code: "unknown-send", Instances: unknown, Message: fmt.Sprintf(
			"a SendCommand may have run on %s without patchgate seeing it (%s); nothing later was sent: check them in the SSM console before running again",
			plural(len(unknown), "instance"), firstIDs(unknown, 20))}}
	}

	var failed, inconclusive []result.Reason
	c := ev.Counts
	d := Denominator(c)
	need := s.Threshold.Ceil(d)
	switch {
	case d == 0:
	case c.Succeeded >= need:
	case c.Succeeded+c.Inconclusive >= need && c.Inconclusive > 0:
		inconclusive = append(inconclusive, result.Reason{Code: "inconclusive-invocations", Instances: ev.Inconclusive,
			Message: fmt.Sprintf("%s %s no final command status; the success threshold %s (%d of %d) depends on them", plural(c.Inconclusive, "instance"), verb(c.Inconclusive, "has", "have"), s.Threshold, need, d)})
	default:
		failed = append(failed, result.Reason{Code: "success-threshold", Message: fmt.Sprintf("%d of %d instances succeeded (%s), below the success threshold %s (%d needed)%s",
			c.Succeeded, d, pct(c.Succeeded, d), s.Threshold, need, shortfall(c))})
	}
	unsent := 0
	for _, w := range ev.Waves {
		unsent += w.Unsent
	}
	stopped := false
	for _, w := range ev.Waves {
		if w.Errors > w.ErrorLimit {
			stopped = true
			msg := fmt.Sprintf("wave %d stopped: %d invocations failed, over maxErrors %s (%d tolerated)", w.Index, w.Errors, w.MaxErrors, w.ErrorLimit)
			if unsent > 0 {
				msg += fmt.Sprintf("; %s of the phase not sent", plural(unsent, "instance"))
			}
			failed = append(failed, result.Reason{Code: "max-errors", Message: msg})
		}
	}
	if unsent > 0 && !stopped && len(failed) == 0 {
		// Instances left unsent though no wave went over its error limit
		// and the threshold held: the phase did not do its work.
		failed = append(failed, result.Reason{Code: "unsent", Message: fmt.Sprintf("%s of the phase %s never sent", plural(unsent, "instance"), verb(unsent, "was", "were"))})
	}
	if len(failed) > 0 {
		return result.StatusFailed, append(failed, inconclusive...)
	}

	vs, vreasons := verification(ev, s, c.Succeeded)
	switch {
	case vs == result.StatusFailed:
		return result.StatusFailed, append(vreasons, inconclusive...)
	case len(inconclusive) > 0 || vs == result.StatusInconclusive:
		return result.StatusInconclusive, append(inconclusive, vreasons...)
	}
	if c.Targeted == c.Skipped && c.Targeted > 0 {
		return result.StatusSkipped, []result.Reason{{Code: "no-targets", Message: "every targeted instance was skipped (offline: skip)"}}
	}
	return result.StatusPassed, vreasons
}

// verification judges the evidence half. succeeded is how many instances
// the compliance evidence must cover.
func verification(ev Evidence, s Settings, succeeded int) (result.Status, []result.Reason) {
	if !s.Compliance && !s.Inspector {
		return result.StatusPassed, nil
	}
	v := ev.Verification
	if !ev.VerifierConfigured || v == nil {
		return result.StatusInconclusive, []result.Reason{{Code: "verification-unavailable",
			Message: "the phase asks for verification, but no evidence was gathered in this run; no evidence, so no pass"}}
	}
	st := result.StatusPassed
	var reasons []result.Reason
	worse := func(s result.Status) {
		if s.Severity() > st.Severity() {
			st = s
		}
	}
	for _, r := range v.Reasons {
		b := Blocking(r.Code)
		if r.Code == "pending-reboot" && s.PendingReboot == policy.PendingRebootWarn {
			b = result.StatusPassed
		}
		worse(b)
		reasons = append(reasons, r)
	}
	// The structured evidence is judged too, not only the reasons that
	// describe it: a pass needs every succeeded instance proven.
	if s.Compliance {
		cp := v.Compliance
		switch {
		case cp == nil:
			worse(result.StatusInconclusive)
			reasons = appendOnce(reasons, result.Reason{Code: "no-patch-state", Message: "no patch compliance evidence was gathered"})
		case cp.Instances < succeeded:
			worse(result.StatusInconclusive)
			reasons = appendOnce(reasons, result.Reason{Code: "no-patch-state",
				Message: fmt.Sprintf("compliance covers %d of the %d instances that succeeded", cp.Instances, succeeded)})
		case cp.PendingReboot.Instances > 0 && s.PendingReboot != policy.PendingRebootWarn:
			worse(result.StatusFailed)
			reasons = appendOnce(reasons, result.Reason{Code: "pending-reboot", Message: PendingRebootText(cp.PendingReboot) + " (pendingReboot: fail)"})
		case cp.Compliant < cp.Instances:
			worse(result.StatusFailed)
			reasons = appendOnce(reasons, result.Reason{Code: "noncompliant",
				Message: fmt.Sprintf("%d of %d patched instances are not compliant after patching", cp.Instances-cp.Compliant, cp.Instances)})
		}
		if cp != nil && cp.PendingReboot.Instances > 0 && s.PendingReboot == policy.PendingRebootWarn {
			reasons = appendOnce(reasons, result.Reason{Code: "pending-reboot-warning", Message: PendingRebootText(cp.PendingReboot) + " (pendingReboot: warn)"})
		}
	}
	if s.Inspector {
		in := v.Inspector
		switch {
		case in == nil:
			worse(result.StatusInconclusive)
			reasons = appendOnce(reasons, result.Reason{Code: "inspector-unavailable", Message: "the phase asks for an Amazon Inspector rescan gate, but no Inspector evidence was gathered; no evidence, so no pass"})
		case len(in.Uncovered) > 0:
			worse(result.StatusInconclusive)
			reasons = appendOnce(reasons, result.Reason{Code: "no-rescan", Message: fmt.Sprintf("%s %s no Inspector scan newer than %s patch", plural(len(in.Uncovered), "instance"), verb(len(in.Uncovered), "has", "have"), verb(len(in.Uncovered), "its", "their"))})
		}
	}
	if v.Verdict != result.StatusPassed && st == result.StatusPassed {
		// The verifier saw something it did not explain: never green.
		worse(result.StatusInconclusive)
		reasons = appendOnce(reasons, result.Reason{Code: "verification", Message: "verification did not pass: " + string(v.Verdict)})
	}
	return st, reasons
}

// PendingRebootText says how many patches await a reboot on how many
// instances ("48 patches await a reboot on 24 instances").
func PendingRebootText(p result.PendingReboot) string {
	verb := "await"
	if p.Patches == 1 {
		verb = "awaits"
	}
	return fmt.Sprintf("%s %s a reboot on %s", plural(p.Patches, "patch"), verb, plural(p.Instances, "instance"))
}

// firstIDs names up to n ids, then how many more there are.
func firstIDs(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:n], ", ") + fmt.Sprintf(" and %d more", len(ids)-n)
}

func appendOnce(rs []result.Reason, r result.Reason) []result.Reason {
	for _, x := range rs {
		if x.Code == r.Code {
			return rs
		}
	}
	return append(rs, r)
}

// shortfall says what the instances that did not succeed did instead.
func shortfall(c result.Counts) string {
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{c.Failed, "failed"}, {c.TimedOut, "timed out"}, {c.Offline, "offline"}, {c.Cancelled, "not sent or cancelled"}, {c.Inconclusive, "unknown"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

// verb is the verb for n things: one, or many.
func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "ch") {
		return strconv.Itoa(n) + " " + what + "es"
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func pct(n, d int) string {
	if d == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(float64(n)*100/float64(d), 'f', 1, 64) + "%"
}

// Preflight says, before anything is sent, whether the phase can still
// pass: when instances that count against the threshold without being
// sent (offline under offline: fail, unmanaged ids) already leave fewer
// sendable instances than the threshold needs, sending would patch
// instances for a phase that fails anyway. nil means go.
func Preflight(c result.Counts, online int, s Settings) *result.Reason {
	d := Denominator(c)
	if d == 0 {
		return nil
	}
	need := s.Threshold.Ceil(d)
	if online >= need {
		return nil
	}
	return &result.Reason{Code: "preflight-threshold",
		Message: fmt.Sprintf("not sent: %s not Online count against the success threshold %s, which needs %d of %d instances to succeed; only %d can be sent. Bring the agents back or set offline: skip",
			plural(c.Offline, "instance"), s.Threshold, need, d, online)}
}
