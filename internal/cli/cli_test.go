package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, Env{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		args       []string
		code       int
		wantOut    string
		wantStderr string
	}{
		{nil, ExitUsage, "", "Usage: patchgate <command>"},
		{[]string{"--help"}, ExitOK, "Commands:", ""},
		{[]string{"version"}, ExitOK, "patchgate ", ""},
		{[]string{"--version"}, ExitOK, "patchgate ", ""},
		{[]string{"versoin"}, ExitUsage, "", `did you mean "version"`},
		{[]string{"version", "--nope"}, ExitUsage, "", "flag provided but not defined"},
		{[]string{"help", "version"}, ExitOK, "Usage: patchgate version", ""},
	}
	for _, tt := range tests {
		code, out, errs := run(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.wantOut) || !strings.Contains(errs, tt.wantStderr) {
			t.Errorf("%v: code=%d out=%q err=%q; want code %d, out~%q, err~%q", tt.args, code, out, errs, tt.code, tt.wantOut, tt.wantStderr)
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commandTable() {
		name := c.Name
		if seen[name] {
			t.Errorf("%s is in the command table twice; only the first is reachable", name)
		}
		seen[name] = true
		if c.Summary == "" || !strings.HasPrefix(c.Usage, "patchgate "+name) {
			t.Errorf("%s: summary %q, usage %q", name, c.Summary, c.Usage)
		}
		code, out, _ := run(t, name, "--help")
		if code != ExitOK || !strings.Contains(out, "Usage: patchgate "+name) {
			t.Errorf("%s --help: code %d, out %q", name, code, out)
		}
	}
}
