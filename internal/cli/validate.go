package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/patchgate/patchgate/internal/annotate"
	"github.com/patchgate/patchgate/internal/escape"
	"github.com/patchgate/patchgate/internal/policy"
)

type validateOpts struct {
	format string
}

// validateCommand is `patchgate validate`.
func validateCommand() *Command {
	return &Command{
		Name:    "validate",
		Summary: "Check policy files against the v1 format",
		Usage: "patchgate validate [--format text|json] [PATH...]\n\n" +
			"PATH is a policy file or a directory of *.yaml/*.yml policies (default policies/).\n" +
			"Prints FILE:LINE:COL: message for every problem. Exit 0 valid, 1 invalid, 2 usage or I/O error.\n" +
			"With GITHUB_ACTIONS=true, problems are also written as ::error annotations on their lines.",
		Flags: func(fs *flag.FlagSet) any {
			o := &validateOpts{}
			fs.StringVar(&o.format, "format", "text", "output format: text or json")
			return o
		},
		Run: runValidate,
	}
}

// validationReport is validate's JSON output.
type validationReport struct {
	Valid    bool             `json:"valid"`
	Files    int              `json:"files"`
	Policies []string         `json:"policies"`
	Problems []policy.Problem `json:"problems"`
}

func runValidate(_ context.Context, env Env, opts any, args []string) int {
	o := opts.(*validateOpts)
	if o.format != "text" && o.format != "json" {
		fmt.Fprintf(env.Stderr, "patchgate validate: --format must be text or json, not %q\n", o.format)
		return ExitUsage
	}
	set, err := loadPolicies(args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate validate: %v\n", err)
		return ExitUsage
	}
	if len(set.Files) == 0 {
		fmt.Fprintf(env.Stderr, "patchgate validate: no *.yaml or *.yml policy files in %s\n", strings.Join(pathsOrDefault(args), ", "))
		return ExitUsage
	}
	if env.Getenv("GITHUB_ACTIONS") == "true" {
		as := make([]annotate.Annotation, len(set.Problems))
		for i, p := range set.Problems {
			as[i] = annotate.Annotation{Level: "error", File: p.File, Line: p.Line, Col: p.Col, Title: "patchgate policy", Message: p.Message}
		}
		annotate.Write(escape.CommandWriter(env.Stdout), as)
	}
	switch o.format {
	case "json":
		r := validationReport{Valid: len(set.Problems) == 0, Files: len(set.Files), Problems: set.Problems, Policies: []string{}}
		if r.Problems == nil {
			r.Problems = []policy.Problem{}
		}
		for _, p := range set.Policies {
			r.Policies = append(r.Policies, p.Metadata.Name)
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	default:
		end := untrustedBlock(env)
		for _, p := range set.Problems {
			fmt.Fprintln(env.Stdout, p.String())
		}
		end()
		fmt.Fprintln(env.Stdout, summaryLine(set))
	}
	if len(set.Problems) > 0 {
		return ExitFailed
	}
	return ExitOK
}

func summaryLine(set *policy.Set) string {
	if len(set.Problems) == 0 {
		return fmt.Sprintf("%d %s valid", len(set.Policies), plural(len(set.Policies), "policy", "policies"))
	}
	files := map[string]bool{}
	for _, p := range set.Problems {
		files[p.File] = true
	}
	return fmt.Sprintf("%d %s in %d of %d %s", len(set.Problems), plural(len(set.Problems), "problem", "problems"),
		len(files), len(set.Files), plural(len(set.Files), "file", "files"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func pathsOrDefault(args []string) []string {
	if len(args) == 0 {
		return []string{"policies"}
	}
	return args
}

// loadPolicies loads the policy set from paths (default policies/). Paths
// inside the working directory are read relative to it, so messages name
// them as the user typed them; others are read from the root.
func loadPolicies(args []string) (*policy.Set, error) {
	paths := pathsOrDefault(args)
	outside := false
	for _, p := range paths {
		c := filepath.ToSlash(filepath.Clean(p))
		if filepath.IsAbs(p) || c == ".." || strings.HasPrefix(c, "../") {
			outside = true
		}
	}
	if !outside {
		rel := make([]string, len(paths))
		for i, p := range paths {
			rel[i] = filepath.ToSlash(filepath.Clean(p))
		}
		return policy.Load(os.DirFS("."), rel...)
	}
	abs := make([]string, len(paths))
	for i, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		abs[i] = strings.TrimPrefix(filepath.ToSlash(a), "/")
	}
	set, err := policy.Load(os.DirFS("/"), abs...)
	if err != nil {
		return nil, err
	}
	for i := range set.Files {
		set.Files[i] = "/" + set.Files[i]
	}
	for i := range set.Problems {
		set.Problems[i].File = "/" + set.Problems[i].File
	}
	for _, p := range set.Policies {
		p.Source.File = "/" + p.Source.File
	}
	return set, nil
}
