package cli

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	patchgate "github.com/patchgate/patchgate"
)

// TestFirstUse is what a new user meets before anything reaches AWS: a
// job pointed at no policies must not go green, a mistyped policy name is
// named with the right one, and every error names its subcommand.
func TestFirstUse(t *testing.T) {
	empty := t.TempDir()
	invalid := writePolicies(t)
	tests := []struct {
		name    string
		dir     string
		args    []string
		code    int
		wantErr []string
	}{
		{"run with no policies", empty, []string{"run", "--policies", "."}, ExitUsage, []string{"patchgate run: no *.yaml or *.yml policy files in ."}},
		{"sync with no policies", empty, []string{"sync", "--policies", "."}, ExitUsage, []string{"patchgate sync: no *.yaml or *.yml policy files"}},
		{"run without a policies dir", empty, []string{"run"}, ExitUsage, []string{"patchgate run: reading policies"}},
		{"run on invalid policies exits as validate does", invalid, []string{"run"}, ExitFailed, []string{"patchgate run: 4 problems in 1 of 2 files; fix them before running"}},
		{"sync on invalid policies", invalid, []string{"sync"}, ExitFailed, []string{"patchgate sync: 4 problems in 1 of 2 files"}},
		{"mistyped policy", "../..", []string{"run", "--policy", "web-flet"}, ExitUsage,
			[]string{`patchgate run: no policy named "web-flet" in policies (did you mean "web-fleet"?)`, "the policies are: ubuntu-fleet, web-fleet, windows-fleet"}},
		{"unknown policy, nothing close", "../..", []string{"run", "--policy", "database"}, ExitUsage, []string{`no policy named "database" in policies; the policies are: ubuntu-fleet`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := runIn(t, tt.dir, nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errs)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
		})
	}
}

// TestDemoFromAnyDirectory: where there is no policies/, the demo uses
// the example policies built into the binary (TestDemo runs it whole).
func TestDemoFromAnyDirectory(t *testing.T) {
	wd, _ := os.Getwd()
	if err := os.Chdir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var errb bytes.Buffer
	ps, from, code := demoPolicies(Env{Stderr: &errb}, "policies")
	if code != ExitOK || len(ps) < 3 || !strings.Contains(from, "built-in example policies") {
		t.Fatalf("exit %d, %d policies from %q: %s", code, len(ps), from, errb.String())
	}
	// A directory named on purpose is never replaced by the examples.
	if _, _, code := demoPolicies(Env{Stderr: &errb}, "mine"); code != ExitUsage {
		t.Errorf("--policies mine (absent): exit %d", code)
	}
}

// TestEmbeddedExamplesMatchPolicies: every file in policies/ is built into
// the binary byte for byte, so the demo outside the repository runs the
// same examples (a policy added there is picked up without a list).
func TestEmbeddedExamplesMatchPolicies(t *testing.T) {
	n := 0
	err := fs.WalkDir(os.DirFS("../../policies"), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		disk, err := os.ReadFile(filepath.Join("../../policies", name))
		if err != nil {
			return err
		}
		emb, err := fs.ReadFile(patchgate.ExamplePolicies, "policies/"+name)
		if err != nil || !bytes.Equal(disk, emb) {
			t.Errorf("policies/%s is not embedded as it is on disk (%v)", name, err)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("policies/: %v (%d files)", err, n)
	}
}

// TestHelpGolden checks every command's --help against testdata/help:
// a flag's usage text is what users read first (go test -update rewrites).
// The commands come from the top-level help, so a new command is covered.
func TestHelpGolden(t *testing.T) {
	_, top, _ := run(t, "--help")
	golden(t, filepath.Join("help", "patchgate.txt"), top)
	sc := bufio.NewScanner(strings.NewReader(top[strings.Index(top, "Commands:"):]))
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if !strings.HasPrefix(sc.Text(), "  ") || len(f) < 2 {
			continue
		}
		n++
		code, out, _ := run(t, f[0], "--help")
		if code != ExitOK {
			t.Errorf("%s --help: exit %d", f[0], code)
		}
		golden(t, filepath.Join("help", f[0]+".txt"), out)
		// A backquoted phrase in a flag's usage becomes its argument name
		// ("-role-to-assume permissions: id-token: write"): only short
		// upper-case names may stand there.
		for _, line := range strings.Split(out, "\n") {
			head, _, _ := strings.Cut(line, "\t")
			if fl := strings.Fields(head); strings.HasPrefix(line, "  -") && len(fl) > 1 && (len(fl) > 2 || !isArgName(fl[1])) {
				t.Errorf("%s --help: flag %s has argument name %q", f[0], fl[0], strings.Join(fl[1:], " "))
			}
		}
	}
	if n < 5 {
		t.Fatalf("found %d commands in the top-level help:\n%s", n, top)
	}
}

func isArgName(s string) bool {
	switch s {
	case "string", "int", "float", "duration", "uint", "value":
		return true
	}
	return strings.ToUpper(s) == s
}
