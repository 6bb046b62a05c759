package cli

import (
	"context"

	"github.com/patchgate/patchgate/internal/policy"
)

// schemaCommand is `patchgate schema`.
func schemaCommand() *Command {
	return &Command{
		Name:    "schema",
		Summary: "Print the JSON Schema of the policy format",
		Usage: "patchgate schema > policies/schema.json\n\n" +
			"Add `# yaml-language-server: $schema=./schema.json` to a policy file and editors validate it as you type.",
		Run: func(_ context.Context, env Env, _ any, _ []string) int {
			_, _ = env.Stdout.Write(policy.Schema)
			return ExitOK
		},
	}
}
