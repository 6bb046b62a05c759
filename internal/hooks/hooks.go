// Package hooks is patching with lifecycle hooks: the SSM document
// AWS-RunPatchBaselineWithHooks and its hook parameters, the check that
// the hook documents exist in an account and region, and the reason a
// failed hook gives an instance (naming the hook).
package hooks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/patchgate/patchgate/internal/oneline"
	"github.com/patchgate/patchgate/internal/policy"
)

// Documents patchgate sends.
const (
	Document      = "AWS-RunPatchBaselineWithHooks"
	PlainDocument = "AWS-RunPatchBaseline"
	// Noop is the hooks document's default for a hook: do nothing.
	Noop = "AWS-Noop"
)

// The document's hook parameters.
const (
	ParamPreInstall  = "PreInstallHookDocName"
	ParamPostInstall = "PostInstallHookDocName"
	ParamOnExit      = "OnExitHookDocName"
)

// DocumentFor is the SSM document an Install runs: the hooks document when
// any hook is set. (AWS-RunPatchBaselineWithHooks takes no
// InstallOverrideList; the sender must not pass one with it.)
func DocumentFor(h *policy.Hooks) string {
	if h.Set() {
		return Document
	}
	return PlainDocument
}

// Parameters are the hook parameters to add to an Install's parameters
// (Operation, SnapshotId, RebootOption); a hook not set runs AWS-Noop.
// nil when no hook is set.
func Parameters(h *policy.Hooks) map[string][]string {
	if !h.Set() {
		return nil
	}
	or := func(s string) []string {
		if s == "" {
			return []string{Noop}
		}
		return []string{s}
	}
	return map[string][]string{ParamPreInstall: or(h.PreInstall), ParamPostInstall: or(h.PostInstall), ParamOnExit: or(h.OnExit)}
}

// SSM is the part of the SSM API the existence check uses.
type SSM interface {
	DescribeDocument(ctx context.Context, in *ssm.DescribeDocumentInput, optFns ...func(*ssm.Options)) (*ssm.DescribeDocumentOutput, error)
}

// Check verifies that every hook document exists (and that the hooks
// document itself is available) where the client points; sync and
// plan --aws call it per account and region. The error names each missing
// document and the hook it is for.
func Check(ctx context.Context, cl SSM, h *policy.Hooks) error {
	if !h.Set() {
		return nil
	}
	var missing []string
	for _, d := range []struct{ hook, name string }{{"", Document}, {"preInstall", h.PreInstall}, {"postInstall", h.PostInstall}, {"onExit", h.OnExit}} {
		if d.name == "" {
			continue
		}
		_, err := cl.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String(d.name)})
		var ae smithy.APIError
		switch {
		case err == nil:
		case errors.As(err, &ae) && ae.ErrorCode() == "InvalidDocument":
			if d.hook == "" {
				missing = append(missing, fmt.Sprintf("%s (the hooks document: not available in this region)", d.name))
			} else {
				missing = append(missing, fmt.Sprintf("%s (install.hooks.%s)", d.name, d.hook))
			}
		default:
			return fmt.Errorf("ssm:DescribeDocument %s: %w", d.name, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("hook documents not found: %s; create them (or share them with this account) or fix install.hooks", strings.Join(missing, ", "))
	}
	return nil
}

// Plugin is one step of an invocation (ListCommandInvocations with
// Details: CommandPlugins).
type Plugin struct {
	Name, Status, Output string
}

// FailureReason says which hook failed an invocation, from its plugins
// (steps) and output: a failed step whose name says pre-install,
// post-install or on-exit, or output that names a hook's document next to
// a failure. ok is false when no hook is to blame (the install itself
// failed).
func FailureReason(h *policy.Hooks, plugins []Plugin, output string) (reason string, ok bool) {
	if !h.Set() {
		return "", false
	}
	hooks := []struct{ key, label, doc string }{
		{"preinstall", "pre-install", h.PreInstall}, {"postinstall", "post-install", h.PostInstall}, {"onexit", "on-exit", h.OnExit},
	}
	for _, p := range plugins {
		if !strings.EqualFold(p.Status, "Failed") && !strings.EqualFold(p.Status, "TimedOut") {
			continue
		}
		name := squash(p.Name)
		for _, hk := range hooks {
			if hk.doc != "" && strings.Contains(name, hk.key) {
				return reasonText(hk.label, hk.doc, p.Output), true
			}
		}
	}
	for _, line := range strings.Split(output, "\n") {
		l := strings.ToLower(line)
		if !strings.Contains(l, "fail") && !strings.Contains(l, "error") {
			continue
		}
		for _, hk := range hooks {
			if hk.doc != "" && (strings.Contains(line, hk.doc) || strings.Contains(squash(line), hk.key+"hook")) {
				return reasonText(hk.label, hk.doc, output), true
			}
		}
	}
	return "", false
}

func reasonText(label, doc, output string) string {
	r := fmt.Sprintf("%s hook %s failed", label, oneline.Clean(doc, 140))
	if detail := firstFailure(output); detail != "" {
		r += ": " + detail
	}
	return r
}

// firstFailure is the first line of output that says what went wrong.
func firstFailure(output string) string {
	for _, line := range strings.Split(output, "\n") {
		l := strings.ToLower(line)
		if strings.Trim(line, "- ") != "" && !strings.Contains(l, "-----") && (strings.Contains(l, "fail") || strings.Contains(l, "error")) {
			return oneline.Clean(line, 200)
		}
	}
	return ""
}

// squash lowercases s and drops everything but letters and digits.
func squash(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
