package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/patchgate/patchgate/internal/exitcode"
	"github.com/patchgate/patchgate/internal/history"
	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

type reportOpts struct {
	input   string
	format  string
	link    string
	out     string
	history int
	store   string
	policy  string
	aws     awsFlags
}

// reportCommand is `patchgate report`.
func reportCommand() *Command {
	return &Command{
		Name:    "report",
		Summary: "Render a run result (or plan) JSON as a job summary, a comment or JSON",
		Usage: "patchgate report --input result.json [--format summary|comment|json] [--history N --history-store s3://BUCKET/PREFIX]\n\n" +
			"Reads the JSON written by `run --report` (or `plan --json`) and renders it. summary fits GitHub's 1 MiB\n" +
			"job-summary limit and comment the 65,536-character comment limit, at any fleet size.\n\n" +
			"Exit codes: the run's own exit code (0 passed, 1 failed, 3 inconclusive, ...), or 2 when the input cannot be read.",
		Flags: func(fs *flag.FlagSet) any {
			o := &reportOpts{}
			fs.StringVar(&o.input, "input", "", "run result (or plan) JSON; - for standard input")
			fs.StringVar(&o.format, "format", "summary", "summary, comment or json")
			fs.StringVar(&o.link, "link", "", "link to the run for what does not fit (plans; runs carry their own)")
			fs.StringVar(&o.out, "out", "", "write to this file instead of standard output")
			fs.IntVar(&o.history, "history", 0, "add the last N runs of each policy from --history-store: trend, chart and table")
			fs.StringVar(&o.store, "history-store", "", "where run --history-store keeps results (s3://BUCKET/PREFIX)")
			fs.StringVar(&o.policy, "policy", "", "comma-separated policies for --history (default: those in --input)")
			o.aws.register(fs)
			return o
		},
		Run: runReport,
	}
}

func runReport(ctx context.Context, env Env, opts any, args []string) int {
	o := opts.(*reportOpts)
	if o.out == "" {
		return renderReport(ctx, env, o, args)
	}
	// --out: the rendering goes to the file whole, or not at all.
	var buf bytes.Buffer
	to := env
	to.Stdout = &buf
	code := renderReport(ctx, to, o, args)
	if buf.Len() > 0 {
		if err := writeFileAtomic(o.out, buf.Bytes()); err != nil {
			fmt.Fprintf(env.Stderr, "patchgate report: %v\n", err)
			return ExitUsage
		}
	}
	return code
}

func renderReport(ctx context.Context, env Env, o *reportOpts, args []string) int {
	if o.input == "" && len(args) == 1 {
		o.input = args[0]
	}
	if o.history < 0 || (o.history > 0) != (o.store != "") {
		fmt.Fprintln(env.Stderr, "patchgate report: --history N and --history-store s3://BUCKET/PREFIX go together (N >= 1)")
		return ExitUsage
	}
	if o.input == "" && o.history > 0 {
		return reportHistory(ctx, env, o, nil)
	}
	if o.input == "" {
		fmt.Fprintln(env.Stderr, "patchgate report: --input FILE (or --history N) is required")
		return ExitUsage
	}
	kind := map[string]report.Kind{"summary": report.Summary, "comment": report.Comment}
	if _, ok := kind[o.format]; !ok && o.format != "json" {
		fmt.Fprintf(env.Stderr, "patchgate report: --format %q: use summary, comment or json\n", o.format)
		return ExitUsage
	}
	var data []byte
	var err error
	if o.input == "-" {
		data, err = readAllCapped(env.Stdin)
	} else {
		data, err = os.ReadFile(o.input)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate report: %v\n", err)
		return ExitUsage
	}
	var probe struct {
		SchemaVersion string          `json:"schemaVersion"`
		Policies      json.RawMessage `json:"policies"`
		Base          *string         `json:"base"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		fmt.Fprintf(env.Stderr, "patchgate report: %s is not JSON: %v\n", o.input, err)
		return ExitUsage
	}
	if probe.SchemaVersion == "" && probe.Base != nil {
		var p plan.Plan
		if err := json.Unmarshal(data, &p); err != nil {
			fmt.Fprintf(env.Stderr, "patchgate report: %s: %v\n", o.input, err)
			return ExitUsage
		}
		if o.format == "json" {
			// Re-indented, not passed through: a \r between tokens (a file
			// saved with CRLF) would reach the log as a visible "\r".
			var buf bytes.Buffer
			_ = json.Indent(&buf, bytes.TrimSpace(data), "", "  ")
			fmt.Fprintln(env.Stdout, buf.String())
		} else {
			end := untrustedBlock(env)
			fmt.Fprint(env.Stdout, report.Plan(&p, kind[o.format], o.link))
			end()
		}
		return planExit(&p, false, false)
	}
	if probe.SchemaVersion != result.SchemaVersion {
		fmt.Fprintf(env.Stderr, "patchgate report: %s has schemaVersion %q; this patchgate reads %q\n", o.input, probe.SchemaVersion, result.SchemaVersion)
		return ExitUsage
	}
	var r result.Run
	if err := json.Unmarshal(data, &r); err != nil {
		fmt.Fprintf(env.Stderr, "patchgate report: %s: %v\n", o.input, err)
		return ExitUsage
	}
	if o.history > 0 {
		if code := reportHistory(ctx, env, o, &r); code != ExitOK {
			return code
		}
		return exitcode.ForStatus(r.Status)
	}
	if o.format == "json" {
		printRun(env.Stdout, &r, "json")
	} else {
		end := untrustedBlock(env)
		fmt.Fprint(env.Stdout, report.Run(&r, kind[o.format]))
		end()
	}
	return exitcode.ForStatus(r.Status)
}

// reportHistory renders the last --history runs of each policy (named by
// --policy, else those of r), after r's own report when there is one.
func reportHistory(ctx context.Context, env Env, o *reportOpts, r *result.Run) int {
	if o.format == "json" {
		fmt.Fprintln(env.Stderr, "patchgate report: --history renders markdown (summary or comment), not json")
		return ExitUsage
	}
	var names []string
	for _, n := range strings.Split(o.policy, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 && r != nil {
		for _, p := range r.Policies {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(env.Stderr, "patchgate report: --history needs --policy NAME or --input with the run's policies")
		return ExitUsage
	}
	cfg, _, err := o.aws.connect(ctx, env, o.aws.session("patchgate-report"), maskerFor(env))
	var st *history.Store
	if err == nil {
		st, err = historyStore(cfg, o.store, o.aws.endpoint)
	}
	var hist string
	if err == nil {
		hist, err = renderHistory(ctx, st, names, o.history)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate report: --history: %v\n", err)
		return ExitUsage
	}
	var b strings.Builder
	if r != nil {
		kind := map[string]report.Kind{"summary": report.Summary, "comment": report.Comment}[o.format]
		b.WriteString(report.Run(r, kind))
		b.WriteString("\n")
	}
	b.WriteString(hist)
	fmt.Fprint(env.Stdout, b.String())
	return ExitOK
}

// maxInput bounds what report reads from standard input (a 50,000-instance
// result is about 30 MiB).
const maxInput = 512 << 20

func readAllCapped(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err == nil && len(data) > maxInput {
		return nil, fmt.Errorf("standard input is over %d MiB", maxInput>>20)
	}
	return data, err
}
