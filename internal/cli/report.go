package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/patchgate/patchgate/internal/exitcode"
	"github.com/patchgate/patchgate/internal/plan"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

type reportOpts struct {
	input  string
	format string
	link   string
}

// reportCommand is `patchgate report`.
func reportCommand() *Command {
	return &Command{
		Name:    "report",
		Summary: "Render a run result (or plan) JSON as a job summary, a comment or JSON",
		Usage: "patchgate report --input result.json [--format summary|comment|json]\n\n" +
			"Reads the JSON written by `run --report` (or `plan --json`) and renders it. summary fits GitHub's 1 MiB\n" +
			"job-summary limit and comment the 65,536-character comment limit, at any fleet size.\n\n" +
			"Exit codes: the run's own exit code (0 passed, 1 failed, 3 inconclusive, ...), or 2 when the input cannot be read.",
		Flags: func(fs *flag.FlagSet) any {
			o := &reportOpts{}
			fs.StringVar(&o.input, "input", "", "run result (or plan) JSON; - for standard input")
			fs.StringVar(&o.format, "format", "summary", "summary, comment or json")
			fs.StringVar(&o.link, "link", "", "link to the run for what does not fit (plans; runs carry their own)")
			return o
		},
		Run: runReport,
	}
}

func runReport(_ context.Context, env Env, opts any, args []string) int {
	o := opts.(*reportOpts)
	if o.input == "" && len(args) == 1 {
		o.input = args[0]
	}
	if o.input == "" {
		fmt.Fprintln(env.Stderr, "patchgate report: --input FILE is required")
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
	if o.format == "json" {
		printRun(env.Stdout, &r, "json")
	} else {
		end := untrustedBlock(env)
		fmt.Fprint(env.Stdout, report.Run(&r, kind[o.format]))
		end()
	}
	return exitcode.ForStatus(r.Status)
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
