// Package patchgate holds what the binary carries from the repository
// root: the example policies, so that `patchgate demo` works from any
// directory. Embedding the whole policies/ directory picks up every policy
// added there without a list to keep in step.
package patchgate

import "embed"

// ExamplePolicies is the repository's policies/ directory (read it at "policies").
//
//go:embed policies
var ExamplePolicies embed.FS
