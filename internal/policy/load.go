package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/internal/suggest"
)

// MaxFileSize is the largest policy file accepted, checked before parsing.
const MaxFileSize = 1 << 20

// maxDepth bounds nesting; a v1 policy is at most 7 levels deep.
const maxDepth = 16

// maxMapKey bounds a key of a policy's own mappings (tags, filters): an
// AWS tag key is at most 128 characters and a patch filter key far fewer.
// Every value under a key has a field path that repeats it, so an unbounded
// key (YAML's explicit "? key" has no length limit) times a long list under
// it made memory grow with their product: a 100,000-character filter key
// over 20,000 values allocated 4.3 GB.
const maxMapKey = 128

// Problem is one thing wrong with a policy file.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Path    string `json:"path,omitempty"` // field path, e.g. spec.phases[1].maxErrors
	Message string `json:"message"`
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Message)
}

// Problems is every problem found, sorted by file and position.
type Problems []Problem

func (ps Problems) Error() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

func (ps Problems) sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Set is the policies loaded from a directory or files, in file order.
type Set struct {
	Policies []*Policy
	// Files are every file read, valid or not.
	Files []string
	// Problems are every problem in every file; a file with problems
	// contributes no policy.
	Problems Problems
}

// Lookup returns the policy called name.
func (s *Set) Lookup(name string) *Policy {
	for _, p := range s.Policies {
		if p.Metadata.Name == name {
			return p
		}
	}
	return nil
}

// IsPolicyFile reports whether name is read as a policy (*.yaml, *.yml).
func IsPolicyFile(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// Load reads the given paths from fsys: a directory contributes its
// *.yaml/*.yml files (not recursively, sorted), a file itself. Problems
// with the policies are in Set.Problems; the error is for paths that cannot
// be read at all.
func Load(fsys fs.FS, paths ...string) (*Set, error) {
	var files []string
	seen := map[string]bool{}
	for _, p := range paths {
		p = path.Clean(strings.TrimPrefix(p, "./"))
		st, err := fs.Stat(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		if !st.IsDir() {
			if !seen[p] {
				files, seen[p] = append(files, p), true
			}
			continue
		}
		ents, err := fs.ReadDir(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("reading directory %s: %w", p, err)
		}
		for _, e := range ents {
			f := path.Join(p, e.Name())
			if !e.IsDir() && IsPolicyFile(e.Name()) && !seen[f] {
				files, seen[f] = append(files, f), true
			}
		}
	}
	set := &Set{Files: files}
	for _, f := range files {
		data, err := readCapped(fsys, f)
		if err != nil {
			var tooBig errTooBig
			if errors.As(err, &tooBig) {
				set.Problems = append(set.Problems, Problem{File: f, Line: 1, Col: 1, Message: err.Error()})
				continue
			}
			return nil, err
		}
		p, probs := Parse(f, data)
		set.Problems = append(set.Problems, probs...)
		if len(probs) == 0 && p != nil {
			set.Policies = append(set.Policies, p)
		}
	}
	set.Problems = append(set.Problems, checkSet(set.Policies)...)
	set.Problems.sort()
	return set, nil
}

type errTooBig struct{ size int64 }

func (e errTooBig) Error() string {
	return fmt.Sprintf("file is larger than %d bytes (1 MiB): split it, one policy per file", MaxFileSize)
}

// readCapped reads at most MaxFileSize+1 bytes, so a huge file is refused
// without being read into memory.
func readCapped(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, errTooBig{int64(len(data))}
	}
	return data, nil
}

// MaxProblemsPerFile bounds the problems reported for one file: past it,
// one more problem says how many were left out.
const MaxProblemsPerFile = 50

// Parse parses and validates one policy document. The policy is returned
// with defaults applied only when there are no problems. Problems with the
// same message are reported once, with a count, and at most
// MaxProblemsPerFile are reported.
func Parse(file string, data []byte) (*Policy, Problems) {
	p, probs := parse(file, data)
	return p, probs.compact()
}

// compact folds problems with the same message into the first of them,
// counting the rest, and caps what is left at MaxProblemsPerFile. The
// problems are sorted by position, so what is kept is the first of each.
func (ps Problems) compact() Problems {
	if len(ps) < 2 {
		return ps
	}
	type group struct {
		at   int // index in out
		more int
		next Problem
	}
	groups := make(map[string]*group, len(ps))
	out := make(Problems, 0, min(len(ps), MaxProblemsPerFile+1))
	var order []*group
	for _, p := range ps {
		key := p.File + "\x00" + p.Message
		if g := groups[key]; g != nil {
			if g.more == 0 {
				g.next = p
			}
			g.more++
			continue
		}
		g := &group{at: len(order)}
		groups[key] = g
		order = append(order, g)
		out = append(out, p)
	}
	for _, g := range order {
		if g.more > 0 {
			out[g.at].Message += fmt.Sprintf(" (and %s more like it, the next at %d:%d)", thousands(g.more), g.next.Line, g.next.Col)
		}
	}
	if len(out) > MaxProblemsPerFile {
		first := out[MaxProblemsPerFile]
		hidden := len(out) - MaxProblemsPerFile
		out = append(out[:MaxProblemsPerFile], Problem{File: first.File, Line: first.Line, Col: first.Col,
			Message: fmt.Sprintf("%s more %s not shown (at most %d a file): fix the ones above and validate again", thousands(hidden), pluralize(hidden, "problem", "problems"), MaxProblemsPerFile)})
	}
	return out
}

// thousands writes n with thousands separators: 95000 -> "95,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func pluralize(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func parse(file string, data []byte) (*Policy, Problems) {
	if len(data) > MaxFileSize {
		return nil, Problems{{File: file, Line: 1, Col: 1, Message: errTooBig{int64(len(data))}.Error()}}
	}
	if pr, bad := encodingProblem(file, data); bad {
		return nil, Problems{pr}
	}
	d := &decoder{file: file, pos: map[string]Pos{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{File: file, Line: 1, Col: 1, Message: "file is empty: a policy needs apiVersion, kind, metadata and spec"}}
		}
		return nil, Problems{yamlProblem(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		line := extra.Line
		if extra.Kind == yaml.DocumentNode && len(extra.Content) > 0 {
			line = extra.Content[0].Line
		}
		return nil, Problems{{File: file, Line: max(line-1, 1), Col: 1, Message: "more than one YAML document (---): put each policy in its own file"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, Problems{yamlProblem(file, err)}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, Problems{{File: file, Line: 1, Col: 1, Message: "file is empty: a policy needs apiVersion, kind, metadata and spec"}}
		}
		root = root.Content[0]
	}
	d.hazards(root, 0)
	if len(d.problems) > 0 {
		d.problems.sort()
		return nil, d.problems
	}
	var p Policy
	d.decode(root, reflect.ValueOf(&p).Elem(), "")
	p.Source = Source{File: file, pos: d.pos}
	if len(d.problems) == 0 {
		d.problems = append(d.problems, validate(&p)...)
	}
	d.problems.sort()
	if len(d.problems) > 0 {
		return nil, d.problems
	}
	ApplyDefaults(&p)
	return &p, nil
}

// encodingProblem finds the first byte the YAML reader would refuse
// (invalid UTF-8, NUL, a control character) and says where it is: the
// reader itself reports these without a position. It accepts exactly what
// yaml.v3's reader accepts, so no file that loaded before is refused. A file
// with a UTF-16 byte order mark is left to the reader, which decodes it.
func encodingProblem(file string, data []byte) (Problem, bool) {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return Problem{}, false
	}
	line, col, i := 1, 1, 0
	if bytes.HasPrefix(data, []byte("\uFEFF")) {
		i = 3 // the reader drops a UTF-8 byte order mark; it takes no column
	}
	for i < len(data) {
		r, size := utf8.DecodeRune(data[i:])
		var msg string
		switch {
		case r == utf8.RuneError && size <= 1:
			msg = fmt.Sprintf("byte 0x%02X is not valid UTF-8: save the file as UTF-8 text", data[i])
		case r == 0:
			msg = "NUL byte (0x00): a policy is UTF-8 text; the file looks binary or UTF-16 without a byte order mark: save it as UTF-8"
		case !yamlPrintable(r):
			msg = fmt.Sprintf("control character %U is not allowed in a policy file: delete it (a tab, newline or carriage return is fine)", r)
		}
		if msg != "" {
			return Problem{File: file, Line: line, Col: col, Message: msg}, true
		}
		i += size
		switch {
		case r == '\r' && i < len(data) && data[i] == '\n':
			// \r\n is one line break; the \n ends it.
		case r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029:
			line, col = line+1, 1
		default:
			col++
		}
	}
	return Problem{}, false
}

// yamlPrintable is the YAML reader's set of accepted characters.
func yamlPrintable(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || (r >= 0x20 && r <= 0x7E) || r == 0x85 ||
		(r >= 0xA0 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// yamlProblem turns a yaml.v3 syntax error ("yaml: line 3: ...") into a Problem.
func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	line := 1
	msg = strings.TrimPrefix(msg, "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, e := strconv.Atoi(rest[:i]); e == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return Problem{File: file, Line: line, Col: 1, Message: "invalid YAML: " + msg}
}

type decoder struct {
	file     string
	pos      map[string]Pos
	problems Problems
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: n.Line, Col: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
}

var standardTags = map[string]bool{"!!str": true, "!!int": true, "!!bool": true, "!!float": true, "!!null": true, "!!map": true, "!!seq": true, "!!timestamp": true, "": true}

// hazards rejects YAML features a policy has no use for and that can hide
// or multiply content: anchors, aliases, merge keys, custom tags, and
// nesting deeper than any policy needs.
func (d *decoder) hazards(n *yaml.Node, depth int) {
	if depth > maxDepth {
		d.errorf(n, "", "nesting deeper than %d levels: a policy is never this deep", maxDepth)
		return
	}
	if n.Kind == yaml.AliasNode {
		d.errorf(n, "", "YAML alias *%s is not allowed: write the value out in full", n.Value)
		return
	}
	if n.Anchor != "" {
		d.errorf(n, "", "YAML anchor &%s is not allowed: write values out in full", n.Anchor)
	}
	switch {
	case n.Tag == "!!merge":
		d.errorf(n, "", "YAML merge key << is not allowed: write the keys out in full")
	case !standardTags[n.Tag]:
		d.errorf(n, "", "custom YAML tag %s is not allowed: remove it", n.Tag)
	}
	if n.Style&yaml.TaggedStyle != 0 && n.Tag != "" && standardTags[n.Tag] && n.Kind == yaml.ScalarNode {
		// An explicit standard tag (!!int "5") is harmless, but a policy
		// never needs one; reject it so files stay plain.
		d.errorf(n, "", "explicit YAML tag %s is not allowed: write the plain value", n.Tag)
	}
	for _, c := range n.Content {
		d.hazards(c, depth+1)
	}
}

var durationType = reflect.TypeOf(Duration{})

// decode fills v from n, recording the position of every field and
// reporting type mismatches, unknown and duplicate keys.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.pos[path] = Pos{n.Line, n.Column}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && v.Kind() != reflect.Pointer {
		return // an empty value: the default applies
	}
	switch {
	case v.Type() == durationType:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "%s must be a duration like \"90s\", \"30m\" or \"2h\"", label(path))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.errorf(n, path, "%s: %q is not a duration; write it like \"90s\", \"30m\" or \"2h\"", label(path), n.Value)
			return
		}
		v.Set(reflect.ValueOf(Duration{dur}))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			return
		}
		ptr := reflect.New(v.Type().Elem())
		d.decode(n, ptr.Elem(), path)
		v.Set(ptr)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "%s must be a mapping of keys to values, not %s", label(path), kindName(n))
			return
		}
		fields := map[string]int{}
		var names []string
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			tag := t.Field(i).Tag.Get("yaml")
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = i
			names = append(names, tag)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := k.Value
			fp := join(path, key)
			if seen[key] {
				d.errorf(k, fp, "duplicate key %q: remove one of them", key)
				continue
			}
			seen[key] = true
			idx, ok := fields[key]
			if !ok {
				d.errorf(k, fp, "unknown key %q in %s%s", key, labelOr(path, "the policy"), didYouMean(key, names))
				continue
			}
			d.pos[fp] = Pos{k.Line, k.Column}
			d.decode(val, v.Field(idx), fp)
			d.pos[fp] = Pos{val.Line, val.Column}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "%s must be a list (e.g. [a, b]), not %s", label(path), kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "%s must be a mapping of keys to values, not %s", label(path), kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.errorf(k, path, "keys of %s must be plain strings", label(path))
				continue
			}
			if n := utf8.RuneCountInString(k.Value); n > maxMapKey {
				d.errorf(k, path, "a key of %s has %s characters; keys here are at most %d (an AWS tag key's limit): shorten it", label(path), thousands(n), maxMapKey)
				continue
			}
			fp := join(path, k.Value)
			if seen[k.Value] {
				d.errorf(k, fp, "duplicate key %q: remove one of them", k.Value)
				continue
			}
			seen[k.Value] = true
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, fp)
			d.pos[fp] = Pos{k.Line, k.Column}
			m.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "%s must be a single value, not %s", label(path), kindName(n))
			return
		}
		if n.Tag != "!!str" && isQuotedOnly(path) {
			d.errorf(n, path, "%s %s must be quoted (\"%s\"): unquoted, YAML reads it as a number and drops leading zeros", label(path), n.Value, n.Value)
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.errorf(n, path, "%s must be a whole number, not %q", label(path), n.Value)
			return
		}
		i, err := strconv.Atoi(n.Value)
		if err != nil {
			d.errorf(n, path, "%s must be a whole number, not %q", label(path), n.Value)
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.errorf(n, path, "%s must be true or false, not %q", label(path), n.Value)
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	default:
		d.errorf(n, path, "%s: unsupported value", label(path))
	}
}

// isQuotedOnly names fields whose values must be YAML strings, because an
// unquoted number would silently change them.
func isQuotedOnly(path string) bool {
	return strings.HasSuffix(path, ".id") && strings.HasPrefix(path, "spec.accounts[") || accountPath(path)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func label(path string) string {
	if path == "" {
		return "the policy"
	}
	return path
}

func labelOr(path, def string) string {
	if path == "" {
		return def
	}
	return path
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("the value %q", n.Value)
}

// didYouMean suggests the closest known key to a misspelt one.
func didYouMean(key string, known []string) string {
	if best, ok := suggest.Closest(key, known, 2); ok {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Sprintf(" (known keys: %s)", strings.Join(known, ", "))
}
