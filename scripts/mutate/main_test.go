package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCaseBlocks: a switch whose statement ran gets a block over each case
// expression list (so gremlins mutates them); a switch that never ran
// gets none, and default clauses have nothing to cover.
func TestCaseBlocks(t *testing.T) {
	root := t.TempDir()
	src, err := os.ReadFile("testdata/sw.go.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "sw"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sw", "sw.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		profile string
		want    []string
	}{
		{"first switch ran", "mode: set\nm/sw/sw.go:3.27,4.11 1 1\nm/sw/sw.go:4.11,5.10 1 1\nm/sw/sw.go:13.2,13.11 1 0\n",
			[]string{"m/sw/sw.go:6.8,6.13 1 1", "m/sw/sw.go:8.8,9.10 1 1"}},
		{"second switch ran", "mode: set\nm/sw/sw.go:3.27,4.11 1 1\nm/sw/sw.go:4.11,5.10 1 0\nm/sw/sw.go:13.2,13.11 1 1\n",
			[]string{"m/sw/sw.go:14.7,14.8 1 1"}},
		{"nothing ran", "mode: set\nm/sw/sw.go:3.27,4.11 1 0\n", nil},
		{"another module's file is left alone", "mode: set\nother/sw/sw.go:3.27,4.11 1 1\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := caseBlocks(tc.profile, "m", root)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := caseBlocks("mode: set\nm/sw/sw.go:garbage 1\n", "m", root); err == nil {
		t.Fatal("a malformed profile line was accepted")
	}
}

func TestFileCoverage(t *testing.T) {
	// A block listed twice (two test binaries) counts once; a block run
	// by either counts as run.
	profile := `mode: set
m/p/a.go:1.1,2.2 3 1
m/p/a.go:3.1,4.2 1 0
m/p/a.go:3.1,4.2 1 1
m/p/b.go:1.1,2.2 2 0
m/p/b.go:5.1,6.2 2 0
`
	got, err := fileCoverage(strings.NewReader(profile))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"a.go": 100, "b.go": 0}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := fileCoverage(strings.NewReader("mode: set\nm/p/a.go:1.1,2.2 x 1\n")); err == nil {
		t.Fatal("a malformed profile line was accepted")
	}
}

func TestTallyMarksListedEquivalents(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "testing.md")
	if err := os.WriteFile(doc, []byte("# x\n- `internal/p/a.go:7:3 CONDITIONALS_BOUNDARY`: why\n- internal/p/a.go:9:1 ARITHMETIC_BASE: why\nnot a list line internal/p/a.go:1:1 CONDITIONALS_NEGATION\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	equiv, err := readEquivalents(doc)
	if err != nil {
		t.Fatal(err)
	}
	var res gremlinsResult
	res.Files = append(res.Files, gremlinsFile{File: "a.go"})
	for _, m := range []struct {
		typ, status string
		line, col   int
	}{
		{"CONDITIONALS_BOUNDARY", "LIVED", 7, 3}, // listed: equivalent
		{"CONDITIONALS_NEGATION", "LIVED", 7, 3}, // same place, other type: a survivor
		{"ARITHMETIC_BASE", "KILLED", 9, 1},      // listed but killed: killed
		{"CONDITIONALS_NEGATION", "LIVED", 1, 1}, // not a list line
		{"CONDITIONALS_NEGATION", "NOT COVERED", 2, 1},
		{"CONDITIONALS_NEGATION", "TIMED OUT", 3, 1},
		{"CONDITIONALS_NEGATION", "KILLED", 4, 1},
		{"CONDITIONALS_NEGATION", "KILLED", 5, 1},
	} {
		res.Files[0].Mutations = append(res.Files[0].Mutations, gremlinsMutation{m.typ, m.status, m.line, m.col})
	}
	p := Package{Package: "internal/p"}
	tally(&p, res, equiv, map[string]float64{"a.go": 75})
	want := Counts{Killed: 3, Lived: 2, Equivalent: 1, TimedOut: 1, NotCovered: 1, Efficacy: 60, MutantCoverage: 85.7}
	if p.Counts != want {
		t.Fatalf("counts %+v, want %+v", p.Counts, want)
	}
	if len(p.Files) != 1 || p.Files[0].StatementCoverage != 75 || p.Files[0].Counts != want {
		t.Fatalf("files %+v", p.Files)
	}
	wantSurv := []Mutation{{"internal/p/a.go:1:1", "CONDITIONALS_NEGATION"}, {"internal/p/a.go:7:3", "CONDITIONALS_NEGATION"}}
	if !reflect.DeepEqual(p.Survivors, wantSurv) {
		t.Fatalf("survivors %+v, want %+v", p.Survivors, wantSurv)
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		n, d int
		want float64
	}{{0, 0, -1}, {0, 4, 0}, {2, 3, 66.7}, {1, 3, 33.3}, {4, 4, 100}} {
		if got := percent(tc.n, tc.d); got != tc.want {
			t.Errorf("percent(%d, %d) = %v, want %v", tc.n, tc.d, got, tc.want)
		}
	}
}

// TestWholeFileDiff: every line of each file is added, with the count the
// hunk header gives (gremlins reads the lines changed from it).
func TestWholeFileDiff(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.go"), []byte("package a\n\nvar x = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.go"), []byte("package a"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := wholeFileDiff(dir, []string{"a.go", "b.go"})
	if err != nil {
		t.Fatal(err)
	}
	want := "diff --git a/a.go b/a.go\nnew file mode 100644\n--- /dev/null\n+++ b/a.go\n@@ -0,0 +1,3 @@\n+package a\n+\n+var x = 1\n" +
		"diff --git a/b.go b/b.go\nnew file mode 100644\n--- /dev/null\n+++ b/b.go\n@@ -0,0 +1,1 @@\n+package a\n\\ No newline at end of file\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := wholeFileDiff(dir, []string{"missing.go"}); err == nil {
		t.Fatal("a missing file was accepted")
	}
}
