// Package version holds the build's version, stamped at link time with
// -ldflags "-X github.com/patchgate/patchgate/internal/version.Version=v1.2.3".
package version

import "runtime/debug"

// Version is overridden at link time; "dev" marks a local build.
var Version = "dev"

// String returns the stamped version, or the module version recorded by
// `go install`, or "dev".
func String() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}
