package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The binary users run must not carry test support: testing registers its
// flags and helpers in the process, and httptest serves on any interface
// it is handed. Test helpers live in _test.go files or in packages only
// tests import (internal/memnet serves the simulator without either).
func TestBinaryHasNoTestPackages(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the binary's packages: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || pkg == "net/http/httptest" {
			t.Errorf("patchgate's binary imports %s; run `go list -deps ./cmd/patchgate` and move the helper that needs it into a _test.go file", pkg)
		}
	}
}
