package cli

import (
	"io"

	"github.com/patchgate/patchgate/internal/escape"
)

// untrustedBlock starts a block of text derived from input (a plan, a run
// report, policy problems); the returned func ends it. Under GitHub Actions
// the runner is told to run no workflow command until the block ends, with
// a fresh token (::stop-commands::), as GitHub recommends, on top of the
// line-by-line neutralisation every output already gets (Main).
func untrustedBlock(env Env) (end func()) {
	if env.Getenv("GITHUB_ACTIONS") != "true" {
		return func() {}
	}
	resume := escape.StopCommands(env.Stdout)
	return func() {
		if l, ok := env.Stdout.(*escape.LogWriter); ok {
			l.Flush()
		}
		_, _ = io.WriteString(escape.CommandWriter(env.Stdout), resume)
	}
}
