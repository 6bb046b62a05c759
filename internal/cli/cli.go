// Package cli maps patchgate's command line onto the internal packages. Each
// subcommand lives in its own file; commandTable lists them all, in the
// order the help shows them.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/patchgate/patchgate/internal/escape"
	"github.com/patchgate/patchgate/internal/exitcode"
	suggestpkg "github.com/patchgate/patchgate/internal/suggest"
	"github.com/patchgate/patchgate/internal/version"
)

// Exit codes, from the one table in internal/exitcode.
const (
	ExitOK     = exitcode.OK
	ExitFailed = exitcode.Failed
	ExitUsage  = exitcode.Usage
)

// Env is the process environment a command sees; tests supply their own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string

	// simNet is where the demo serves its simulator and the HTTP client
	// that reaches it (nil client: the SDK's own); nil: loopback. Tests
	// pass an in-memory network, to run the demo on synctest's clock.
	simNet func() (net.Listener, aws.HTTPClient, error)
}

// Command is one subcommand.
type Command struct {
	Name    string
	Summary string // one line for the top-level help
	Usage   string // "patchgate NAME [flags] ARGS" plus any explanation
	// Flags declares the command's flags on fs; it may be nil.
	Flags func(fs *flag.FlagSet) any
	// Run executes the command with the parsed flag values and positional args.
	Run func(ctx context.Context, env Env, opts any, args []string) int
}

// commandTable is every command, in the order the help lists them.
func commandTable() []*Command {
	return []*Command{
		actionCommand(),
		demoCommand(),
		planCommand(),
		reportCommand(),
		runCommand(),
		schemaCommand(),
		simCommand(),
		syncCommand(),
		unlockCommand(),
		validateCommand(),
		versionCommand(),
	}
}

// lookup finds the command called name.
func lookup(name string) (*Command, bool) {
	for _, c := range commandTable() {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}

// Main runs patchgate with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	// Everything printed passes through a LogWriter: no input-derived text
	// can start a workflow command or carry a \r or terminal escape; the
	// commands patchgate means go through escape.CommandWriter.
	if _, wrapped := env.Stdout.(*escape.LogWriter); !wrapped && env.Stdout != nil && env.Stderr != nil {
		out, errOut := escape.NewLogWriter(env.Stdout), escape.NewLogWriter(env.Stderr)
		defer out.Flush()
		defer errOut.Flush()
		env.Stdout, env.Stderr = out, errOut
	}
	if len(args) == 0 {
		topHelp(env.Stderr)
		return ExitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		if len(args) > 1 {
			if c, ok := lookup(args[1]); ok {
				commandHelp(env.Stdout, c)
				return ExitOK
			}
		}
		topHelp(env.Stdout)
		return ExitOK
	case "--version", "-version":
		name = "version"
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(env.Stderr, "patchgate: unknown command %q%s\nRun 'patchgate --help' for the list of commands.\n", name, suggest(name))
		return ExitUsage
	}
	fs := flag.NewFlagSet("patchgate "+c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var opts any
	if c.Flags != nil {
		opts = c.Flags(fs)
	}
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandHelp(env.Stdout, c)
			return ExitOK
		}
		fmt.Fprintf(env.Stderr, "patchgate %s: %v\n", c.Name, err)
		fmt.Fprintf(env.Stderr, "Run 'patchgate %s --help' for usage.\n", c.Name)
		return ExitUsage
	}
	return c.Run(ctx, env, opts, positional)
}

// parseInterspersed lets flags follow positional arguments
// ("patchgate validate policies/ --format json"), as users of most CLIs expect;
// the standard flag package stops at the first positional. "--" ends flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func topHelp(w io.Writer) {
	fmt.Fprintf(w, "patchgate %s: reviewed, staged, verified AWS patching from policy files.\n\nUsage: patchgate <command> [flags] [args]\n\nCommands:\n", version.String())
	for _, c := range commandTable() {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\nRun 'patchgate <command> --help' for a command's flags.\n")
}

func commandHelp(w io.Writer, c *Command) {
	fmt.Fprintf(w, "%s\n\nUsage: %s\n", c.Summary, c.Usage)
	if c.Flags == nil {
		return
	}
	fs := flag.NewFlagSet("patchgate "+c.Name, flag.ContinueOnError)
	c.Flags(fs)
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	if b.Len() > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", b.String())
	}
}

// suggest names the closest command to a mistyped one.
func suggest(name string) string {
	names := make([]string, 0, len(commandTable()))
	for _, c := range commandTable() {
		names = append(names, c.Name) // table order breaks ties
	}
	return suggestpkg.DidYouMean(name, names, 2)
}
