package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// gremlins v0.5.0 tests a mutant only where the coverage profile has an
// executed block, and `go test -cover` puts a switch's case expressions in
// no block at all (only the case bodies). Every condition written as a
// `case` (most of gate.Decide) would be reported NOT COVERED and never
// mutated. The fix: gremlins runs `go` from PATH, so a shim runs the real
// go and then, when it wrote a cover profile, adds a block for each case
// expression list whose switch statement ran. That over-approximates (a
// case after the matching one is not evaluated): such a mutant then shows
// as LIVED, in plain sight, rather than hidden as NOT COVERED.

const fixCoverFlag = "-fixcover"

// writeShims writes dir/bin/go and dir/bin/git and returns dir/bin. The
// git shim answers gremlins' `git diff --merge-base REF` with the file REF
// (mutatePackage passes a diff file as the ref); anything else goes to git.
func writeShims(dir string) (string, error) {
	realGo, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("finding go on PATH: %w", err)
	}
	realGit, err := exec.LookPath("git")
	if err != nil {
		return "", fmt.Errorf("finding git on PATH: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding this program's path for the go shim: %w", err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", bin, err)
	}
	shim := fmt.Sprintf(`#!/bin/sh
# Written by scripts/mutate: runs go, then completes a cover profile.
prev=
for a in "$@"; do
	if [ "$prev" = -coverprofile ]; then
		%[1]s "$@" || exit $?
		exec %[2]s %[3]s "$a"
	fi
	prev=$a
done
exec %[1]s "$@"
`, shellQuote(realGo), shellQuote(self), fixCoverFlag)
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(shim), 0o755); err != nil {
		return "", fmt.Errorf("writing the go shim: %w", err)
	}
	gitShim := fmt.Sprintf(`#!/bin/sh
# Written by scripts/mutate: gremlins' diff is the file named as its ref.
if [ "$1" = diff ] && [ "$2" = --merge-base ] && [ $# -eq 3 ] && [ -f "$3" ]; then
	exec cat "$3"
fi
exec %s "$@"
`, shellQuote(realGit))
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(gitShim), 0o755); err != nil {
		return "", fmt.Errorf("writing the git shim: %w", err)
	}
	return bin, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// fixCoverFile adds the case-expression blocks to the profile at path. It
// runs in the module root (gremlins runs its coverage there).
func fixCoverFile(path string) error {
	mod, err := modulePath("go.mod")
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the cover profile: %w", err)
	}
	extra, err := caseBlocks(string(b), mod, ".")
	if err != nil {
		return err
	}
	if len(extra) == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("completing the cover profile: %w", err)
	}
	if _, err := f.WriteString(strings.Join(extra, "\n") + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("completing the cover profile: %w", err)
	}
	return f.Close()
}

func modulePath(gomod string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", fmt.Errorf("reading go.mod: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", fmt.Errorf("no module line in %s", gomod)
}

type span struct{ sl, sc, el, ec int }

func (s span) holds(line, col int) bool {
	if line < s.sl || line > s.el {
		return false
	}
	if line == s.sl && col < s.sc {
		return false
	}
	if line == s.el && col > s.ec {
		return false
	}
	return true
}

// caseBlocks returns profile lines for the case expressions of every switch
// whose `switch` keyword lies in an executed block of profile. Files are
// read from root, by their import path less the module's.
func caseBlocks(profile, mod, root string) ([]string, error) {
	executed := map[string][]span{}
	var order []string
	sc := bufio.NewScanner(strings.NewReader(profile))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "mode:") || strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Fields(line)
		colon := strings.LastIndex(fields[0], ":")
		if len(fields) != 3 || colon < 0 {
			return nil, fmt.Errorf("unexpected cover profile line %q", line)
		}
		file := fields[0][:colon]
		if _, ok := executed[file]; !ok {
			executed[file] = nil
			order = append(order, file)
		}
		if fields[2] == "0" {
			continue
		}
		var s span
		if _, err := fmt.Sscanf(fields[0][colon+1:], "%d.%d,%d.%d", &s.sl, &s.sc, &s.el, &s.ec); err != nil {
			return nil, fmt.Errorf("unexpected cover profile line %q: %w", line, err)
		}
		executed[file] = append(executed[file], s)
	}
	var out []string
	for _, file := range order {
		rel, ok := strings.CutPrefix(file, mod+"/")
		if !ok || len(executed[file]) == 0 {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, filepath.Join(root, filepath.FromSlash(rel)), nil, 0)
		if err != nil {
			return nil, fmt.Errorf("parsing %s for its switch statements: %w", rel, err)
		}
		ran := func(p token.Pos) bool {
			pos := fset.Position(p)
			for _, s := range executed[file] {
				if s.holds(pos.Line, pos.Column) {
					return true
				}
			}
			return false
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sw, ok := n.(*ast.SwitchStmt)
			if !ok || !ran(sw.Switch) {
				return true
			}
			for _, st := range sw.Body.List {
				cc, ok := st.(*ast.CaseClause)
				if !ok || len(cc.List) == 0 {
					continue
				}
				from, to := fset.Position(cc.List[0].Pos()), fset.Position(cc.List[len(cc.List)-1].End())
				out = append(out, file+":"+strconv.Itoa(from.Line)+"."+strconv.Itoa(from.Column)+","+
					strconv.Itoa(to.Line)+"."+strconv.Itoa(to.Column)+" 1 1")
			}
			return true
		})
	}
	return out, nil
}
