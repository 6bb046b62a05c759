// Command mutate runs gremlins (mutation testing) over the packages that
// decide what patchgate sends and what it reports as passed, one package at
// a time, and writes one machine-readable summary: killed, lived, timed out,
// not covered and efficacy per package and per file, the statement coverage
// of the package's own tests, how long it took, and every survivor.
//
// `make mutate` runs it; see docs/testing.md. It is a developer tool, not
// part of patchgate: nothing under internal/ imports it.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == fixCoverFlag {
		if err := fixCoverFile(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "mutate:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(1)
	}
}

type options struct {
	gremlins    string
	base        string
	out         string
	equivalents string
	workers     int
	coefficient int
	pkgs        []string
	shimDir     string
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mutate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.gremlins, "gremlins", "gremlins", "the gremlins binary (v0.5.0)")
	fs.StringVar(&o.base, "base", "", "mutate only lines changed since this commit (git diff --merge-base BASE)")
	fs.StringVar(&o.out, "out", ".cache/mutate", "directory for each package's gremlins output and summary.json")
	fs.StringVar(&o.equivalents, "equivalents", "docs/testing.md", "file listing equivalent mutants as `- pkg/file.go:line:col TYPE: why`")
	fs.IntVar(&o.workers, "workers", 0, "gremlins workers (0: one per CPU)")
	fs.IntVar(&o.coefficient, "timeout-coefficient", 0, "gremlins timeout coefficient (0: gremlins' default, 3)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.pkgs = fs.Args()
	if len(o.pkgs) == 0 {
		return errors.New("no packages given: name them, as in mutate ./internal/gate ./internal/verify")
	}
	root, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("reading the working directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("run mutate from the module root (no go.mod in %s): %w", root, err)
	}
	if !filepath.IsAbs(o.out) {
		o.out = filepath.Join(root, o.out)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", o.out, err)
	}
	equiv, err := readEquivalents(o.equivalents)
	if err != nil {
		return err
	}

	shimDir, err := writeShims(o.out)
	if err != nil {
		return err
	}
	o.shimDir = shimDir

	sum := Summary{Base: o.base, Workers: o.workers, TimeoutCoefficient: o.coefficient}
	start := time.Now()
	for _, pkg := range o.pkgs {
		p, err := mutatePackage(root, pkg, o, equiv, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", pkg, err)
		}
		sum.Packages = append(sum.Packages, p)
	}
	sum.Seconds = time.Since(start).Seconds()

	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the summary: %w", err)
	}
	out := filepath.Join(o.out, "summary.json")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	printTable(stdout, sum)
	fmt.Fprintf(stdout, "summary: %s\n", out)
	return nil
}

// Summary is summary.json.
type Summary struct {
	Base               string    `json:"base,omitempty"`
	Workers            int       `json:"workers"`
	TimeoutCoefficient int       `json:"timeout_coefficient"`
	Seconds            float64   `json:"seconds"`
	Packages           []Package `json:"packages"`
}

// Counts are mutants by gremlins status. Equivalent are LIVED mutants that
// docs/testing.md lists as equivalent; they are not in Lived.
type Counts struct {
	Killed     int `json:"killed"`
	Lived      int `json:"lived"`
	Equivalent int `json:"equivalent"`
	TimedOut   int `json:"timed_out"`
	NotCovered int `json:"not_covered"`
	NotViable  int `json:"not_viable"`
	Skipped    int `json:"skipped"`
	// Efficacy is killed / (killed + lived), in percent, as gremlins
	// counts it but with the listed equivalent mutants left out; -1 when
	// no mutant was tested.
	Efficacy float64 `json:"efficacy"`
	// MutantCoverage is (killed + lived + equivalent) / (those + not covered).
	MutantCoverage float64 `json:"mutant_coverage"`
}

func (c *Counts) add(status string) {
	switch status {
	case "KILLED":
		c.Killed++
	case "LIVED":
		c.Lived++
	case "EQUIVALENT":
		c.Equivalent++
	case "TIMED OUT":
		c.TimedOut++
	case "NOT COVERED":
		c.NotCovered++
	case "NOT VIABLE":
		c.NotViable++
	case "SKIPPED":
		c.Skipped++
	}
}

func (c *Counts) finish() {
	c.Efficacy = percent(c.Killed, c.Killed+c.Lived)
	tested := c.Killed + c.Lived + c.Equivalent
	c.MutantCoverage = percent(tested, tested+c.NotCovered)
}

func percent(n, d int) float64 {
	if d == 0 {
		return -1
	}
	return float64(int(float64(n)/float64(d)*1000+0.5)) / 10
}

// Package is one package's result.
type Package struct {
	Package string `json:"package"`
	// Only: the files mutated, when not all of the package's.
	Only []string `json:"only,omitempty"`
	// Unchanged: with a base, no non-test Go file of the package changed,
	// so gremlins did not run.
	Unchanged bool `json:"unchanged,omitempty"`
	Counts
	// StatementCoverage is `go test -cover` of the package's own tests,
	// in percent; -1 when not measured (unchanged).
	StatementCoverage float64    `json:"statement_coverage"`
	Seconds           float64    `json:"seconds"`
	Files             []File     `json:"files,omitempty"`
	Survivors         []Mutation `json:"survivors,omitempty"`
	NotCoveredAt      []Mutation `json:"not_covered_at,omitempty"`
}

// File is one source file's counts.
type File struct {
	File              string  `json:"file"`
	StatementCoverage float64 `json:"statement_coverage"`
	Counts
}

// Mutation is one mutant, at file:line:col.
type Mutation struct {
	At   string `json:"at"`
	Type string `json:"type"`
}

func mutatePackage(root, pkg string, o options, equiv map[string]bool, log io.Writer) (Package, error) {
	// "./internal/policy:compile.go,types.go" mutates those files only.
	pkg, only, _ := strings.Cut(pkg, ":")
	rel := filepath.ToSlash(filepath.Clean(strings.TrimPrefix(pkg, "./")))
	p := Package{Package: rel}
	if only != "" {
		p.Only = strings.Split(only, ",")
	}
	dir := filepath.Join(root, rel)
	name := strings.ReplaceAll(rel, "/", "_")
	start := time.Now()

	// gremlins' --diff names a ref it hands to `git diff --merge-base`;
	// the git shim (writeShims) answers with the diff written here instead,
	// with names relative to the package as gremlins compares them, and
	// only for the files asked for. Without a base or a file list there is
	// no diff and gremlins mutates every line.
	diffPath := ""
	switch {
	case o.base != "":
		changed, err := changedSources(root, o.base, rel, p.Only)
		if err != nil {
			return p, err
		}
		if len(changed) == 0 {
			p.Unchanged = true
			p.StatementCoverage = -1
			p.Counts.finish()
			fmt.Fprintf(log, "mutate %s: no source changed since %s, skipped\n", rel, o.base)
			return p, nil
		}
		cmd := exec.Command("git", append([]string{"diff", "--merge-base", o.base, "--relative=" + rel + "/", "--"}, changed...)...)
		cmd.Dir = root
		d, err := cmd.Output()
		if err != nil {
			return p, fmt.Errorf("git diff --merge-base %s: %w", o.base, err)
		}
		diffPath = filepath.Join(o.out, name+".diff")
		if err := os.WriteFile(diffPath, d, 0o644); err != nil {
			return p, fmt.Errorf("writing %s: %w", diffPath, err)
		}
	case len(p.Only) > 0:
		d, err := wholeFileDiff(dir, p.Only)
		if err != nil {
			return p, err
		}
		diffPath = filepath.Join(o.out, name+".diff")
		if err := os.WriteFile(diffPath, d, 0o644); err != nil {
			return p, fmt.Errorf("writing %s: %w", diffPath, err)
		}
	}

	fmt.Fprintf(log, "mutate %s: coverage...\n", rel)
	profile := filepath.Join(o.out, name+".cover")
	cover, perFile, err := statementCoverage(root, rel, profile, gremlinsGoFlags())
	if err != nil {
		return p, err
	}
	p.StatementCoverage = cover

	fmt.Fprintf(log, "mutate %s: gremlins (progress in %s)...\n", rel, filepath.Join(o.out, name+".log"))
	outJSON := filepath.Join(o.out, name+".json")
	_ = os.Remove(outJSON)
	logPath := filepath.Join(o.out, name+".log")
	args := []string{"unleash", "--output", outJSON}
	if o.workers > 0 {
		args = append(args, "--workers", strconv.Itoa(o.workers))
	}
	if o.coefficient > 0 {
		args = append(args, "--timeout-coefficient", strconv.Itoa(o.coefficient))
	}
	if diffPath != "" {
		args = append(args, "--diff", diffPath)
	}
	// gremlins needs an absolute path to find the module root from it.
	args = append(args, dir)
	cmd := exec.Command(o.gremlins, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GOFLAGS="+gremlinsGoFlags(),
		// The go and git shims (see writeShims) come first on PATH.
		"PATH="+o.shimDir+string(os.PathListSeparator)+os.Getenv("PATH"),
	)
	// Written as it runs: a long run's survivors so far can be read there.
	logFile, err := os.Create(logPath)
	if err != nil {
		return p, fmt.Errorf("creating %s: %w", logPath, err)
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	runErr := cmd.Run()
	if err := logFile.Close(); err != nil {
		return p, fmt.Errorf("writing %s: %w", logPath, err)
	}
	if runErr != nil {
		return p, fmt.Errorf("gremlins failed (its output is in %s): %w", logPath, runErr)
	}
	p.Seconds = time.Since(start).Seconds()

	res, err := readGremlins(outJSON)
	if err != nil {
		return p, err
	}
	tally(&p, res, equiv, perFile)
	return p, nil
}

// wholeFileDiff is a diff adding every line of files (in dir), as if new:
// gremlins then mutates those files only.
func wholeFileDiff(dir string, files []string) ([]byte, error) {
	var b bytes.Buffer
	for _, f := range files {
		src, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("reading %s to mutate it alone: %w", f, err)
		}
		lines := strings.SplitAfter(string(src), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "diff --git a/%[1]s b/%[1]s\nnew file mode 100644\n--- /dev/null\n+++ b/%[1]s\n@@ -0,0 +1,%[2]d @@\n", f, len(lines))
		for _, l := range lines {
			b.WriteString("+" + l)
			if !strings.HasSuffix(l, "\n") {
				b.WriteString("\n\\ No newline at end of file\n")
			}
		}
	}
	return b.Bytes(), nil
}

// gremlinsGoFlags are the GOFLAGS gremlins runs with. -count=1: a cached
// coverage run takes no time, and gremlins times each mutant's tests by
// it. -trimpath: each gremlins worker builds in its own copy of the
// module; without the directory in the build's cache key the copies share
// compiled packages. -vet=off: go test vets the package before running it,
// about a tenth of each mutant's build (0.4 of 3.7 CPU-seconds for rollout);
// a mutant is not a change to lint, and make lint vets the real code.
func gremlinsGoFlags() string {
	return strings.TrimSpace(os.Getenv("GOFLAGS") + " -count=1 -trimpath -vet=off")
}

// changedSources lists the package's non-test Go files (of only, if set)
// that differ between the merge base of base and the working tree. An
// untracked file is not in it: git add new files first.
func changedSources(root, base, rel string, only []string) ([]string, error) {
	cmd := exec.Command("git", "diff", "--name-only", "--merge-base", base, "--", rel)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("git diff --merge-base %s: %s: %w", base, strings.TrimSpace(string(ee.Stderr)), err)
		}
		return nil, fmt.Errorf("git diff --merge-base %s: %w", base, err)
	}
	var files []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := sc.Text()
		if path.Dir(f) == rel && strings.HasSuffix(f, ".go") && !strings.HasSuffix(f, "_test.go") &&
			(len(only) == 0 || slices.Contains(only, path.Base(f))) {
			files = append(files, f)
		}
	}
	return files, nil
}

var coverLine = regexp.MustCompile(`coverage: ([0-9.]+)% of statements`)

// statementCoverage runs the package's own tests with a cover profile and
// returns the package's and each file's statement coverage in percent.
//
// It builds with gremlins' flags, so that the build cache is warm when
// gremlins times its own coverage run: gremlins gives each mutant that
// time times the coefficient, and a cold build (minutes on a busy machine)
// would make a hanging mutant cost as much.
func statementCoverage(root, rel, profile, goflags string) (float64, map[string]float64, error) {
	cmd := exec.Command("go", "test", "-cover", "-coverprofile", profile, "./"+rel+"/...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS="+goflags)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, nil, fmt.Errorf("the package's tests fail without any mutant; fix them first:\n%s%w", out, err)
	}
	m := coverLine.FindSubmatch(out)
	if m == nil {
		return 0, nil, fmt.Errorf("no coverage figure in go test's output:\n%s", out)
	}
	total, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return 0, nil, fmt.Errorf("reading coverage %q: %w", m[1], err)
	}
	f, err := os.Open(profile)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the cover profile: %w", err)
	}
	defer f.Close()
	perFile, err := fileCoverage(f)
	if err != nil {
		return 0, nil, fmt.Errorf("reading %s: %w", profile, err)
	}
	return total, perFile, nil
}

// fileCoverage reads a cover profile ("mode: set", then
// "import/path/file.go:l.c,l.c statements count" lines) into the percentage
// of each file's statements that ran, keyed by the file's base name.
func fileCoverage(r io.Reader) (map[string]float64, error) {
	type tally struct{ all, run int }
	files := map[string]*tally{}
	// A block appears once per test binary that covers it; count it once.
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "mode:") || line == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 || !strings.Contains(fields[0], ":") {
			return nil, fmt.Errorf("unexpected cover profile line %q", line)
		}
		colon := strings.LastIndex(fields[0], ":")
		if colon < 0 {
			return nil, fmt.Errorf("unexpected cover profile line %q", line)
		}
		stmts, err1 := strconv.Atoi(fields[1])
		count, err2 := strconv.Atoi(fields[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("unexpected cover profile line %q", line)
		}
		file := path.Base(fields[0][:colon])
		t := files[file]
		if t == nil {
			t = &tally{}
			files[file] = t
		}
		if !seen[fields[0]] {
			seen[fields[0]] = true
			t.all += stmts
		}
		if count > 0 && !seen["run "+fields[0]] {
			seen["run "+fields[0]] = true
			t.run += stmts
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(files))
	for f, t := range files {
		out[f] = percent(t.run, t.all)
	}
	return out, nil
}

// gremlinsResult is the part of gremlins v0.5.0's --output file read here.
type gremlinsResult struct {
	Files []gremlinsFile `json:"files"`
}

type gremlinsFile struct {
	File      string             `json:"file_name"`
	Mutations []gremlinsMutation `json:"mutations"`
}

type gremlinsMutation struct {
	Type   string `json:"type"`
	Status string `json:"status"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

func readGremlins(file string) (gremlinsResult, error) {
	var res gremlinsResult
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		// gremlins writes nothing when it found no mutant at all.
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("reading gremlins' output: %w", err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return res, fmt.Errorf("reading gremlins' output %s: %w", file, err)
	}
	return res, nil
}

// tally counts res into p, per package and per file, marking the LIVED
// mutants equiv lists as equivalent.
func tally(p *Package, res gremlinsResult, equiv map[string]bool, cover map[string]float64) {
	for _, f := range res.Files {
		file := File{File: p.Package + "/" + filepath.ToSlash(f.File), StatementCoverage: cover[path.Base(f.File)]}
		for _, m := range f.Mutations {
			at := fmt.Sprintf("%s:%d:%d", file.File, m.Line, m.Column)
			status := m.Status
			if status == "LIVED" && equiv[at+" "+m.Type] {
				status = "EQUIVALENT"
			}
			p.Counts.add(status)
			file.Counts.add(status)
			switch status {
			case "LIVED":
				p.Survivors = append(p.Survivors, Mutation{At: at, Type: m.Type})
			case "NOT COVERED":
				p.NotCoveredAt = append(p.NotCoveredAt, Mutation{At: at, Type: m.Type})
			}
		}
		file.Counts.finish()
		if file.Counts != (Counts{Skipped: file.Skipped, Efficacy: -1, MutantCoverage: -1}) {
			// A file of which every mutant was skipped (not in the diff) is left out.
			p.Files = append(p.Files, file)
		}
	}
	p.Counts.finish()
	sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].File < p.Files[j].File })
	for _, l := range [][]Mutation{p.Survivors, p.NotCoveredAt} {
		sort.Slice(l, func(i, j int) bool { return lessAt(l[i].At, l[j].At) })
	}
}

// lessAt orders file:line:col positions by file, then numerically.
func lessAt(a, b string) bool {
	fa, la, ca := splitAt(a)
	fb, lb, cb := splitAt(b)
	if fa != fb {
		return fa < fb
	}
	if la != lb {
		return la < lb
	}
	return ca < cb
}

func splitAt(s string) (string, int, int) {
	parts := strings.Split(s, ":")
	if len(parts) < 3 {
		return s, 0, 0
	}
	l, _ := strconv.Atoi(parts[len(parts)-2])
	c, _ := strconv.Atoi(parts[len(parts)-1])
	return strings.Join(parts[:len(parts)-2], ":"), l, c
}

var equivLine = regexp.MustCompile("^\\s*[-*]\\s+`?(internal/[^\\s`]+\\.go:\\d+:\\d+)\\s+([A-Z_]+)`?")

// readEquivalents reads the equivalent mutants listed in path, one a line:
// "- internal/gate/gate.go:84:19 CONDITIONALS_BOUNDARY: why". A missing
// file lists none.
func readEquivalents(file string) (map[string]bool, error) {
	out := map[string]bool{}
	if file == "" {
		return out, nil
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the equivalent mutants: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if m := equivLine.FindStringSubmatch(line); m != nil {
			out[m[1]+" "+m[2]] = true
		}
	}
	return out, nil
}

func fmtPct(v float64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "%"
}

func printTable(w io.Writer, s Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "package / file\tkilled\tlived\tequiv\ttimed out\tnot covered\tefficacy\tcoverage\tseconds\t")
	for _, p := range s.Packages {
		if p.Unchanged {
			fmt.Fprintf(tw, "%s\t\t\t\t\t\t(unchanged)\t\t\t\n", p.Package)
			continue
		}
		label := p.Package
		if len(p.Only) > 0 {
			label += " (" + strings.Join(p.Only, ", ") + " only)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%.0f\t\n", label, p.Killed, p.Lived, p.Equivalent, p.TimedOut, p.NotCovered,
			fmtPct(p.Efficacy), fmtPct(p.StatementCoverage), p.Seconds)
		for _, f := range p.Files {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\t\n", path.Base(f.File), f.Killed, f.Lived, f.Equivalent, f.TimedOut, f.NotCovered,
				fmtPct(f.Efficacy), fmtPct(f.StatementCoverage))
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "total %.0f s\n", s.Seconds)
	for _, p := range s.Packages {
		for _, m := range p.Survivors {
			fmt.Fprintf(w, "LIVED %s %s\n", m.At, m.Type)
		}
	}
}
