package policy

import _ "embed"

// Schema is the JSON Schema (2020-12) of a v1 policy, for editors
// (yaml-language-server) and other tools. `patchgate schema` prints it and
// policies/schema.json is a copy; tests keep both in step with the loader.
//
//go:embed schema.json
var Schema []byte
