package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/patchgate/patchgate/internal/version"
)

// versionCommand is `patchgate version`.
func versionCommand() *Command {
	return &Command{
		Name:    "version",
		Summary: "Print patchgate's version",
		Usage:   "patchgate version",
		Run: func(_ context.Context, env Env, _ any, _ []string) int {
			fmt.Fprintf(env.Stdout, "patchgate %s (%s, %s/%s)\n", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return ExitOK
		},
	}
}
