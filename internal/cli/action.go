package cli

import (
	"context"
	"flag"

	"github.com/sethvargo/go-githubactions"

	"github.com/patchgate/patchgate/internal/escape"
	"github.com/patchgate/patchgate/internal/ghaction"
)

// actionCommand is `patchgate action`.
func actionCommand() *Command {
	return &Command{
		Name:    "action",
		Summary: "The GitHub Action's entrypoint (reads INPUT_* and the event)",
		Usage: "patchgate action\n\n" +
			"Run by the Docker action (action.yml). Reads the inputs (INPUT_MODE, INPUT_POLICIES, ...) and the event,\n" +
			"routes mode auto by event (pull_request -> plan, push to the default branch -> sync, schedule or\n" +
			"workflow_dispatch -> run; run and sync are refused on pull_request events), runs that command with the\n" +
			"same flags the CLI takes, and writes the step outputs, the job summary and the sticky comments.",
		Flags: func(fs *flag.FlagSet) any { return nil },
		Run: func(ctx context.Context, env Env, _ any, _ []string) int {
			a := githubactions.New(githubactions.WithWriter(escape.CommandWriter(env.Stdout)), githubactions.WithGetenv(env.Getenv))
			return ghaction.Run(ctx, ghaction.Deps{
				Action: a, Getenv: env.Getenv,
				Invoke: func(ctx context.Context, args []string) int { return Main(ctx, args, env) },
				Comments: func(token string) (*ghaction.Comments, error) {
					return ghaction.NewComments(token, env.Getenv("GITHUB_API_URL"), env.Getenv("GITHUB_REPOSITORY"))
				},
			})
		},
	}
}
