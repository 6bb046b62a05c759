package motoenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	for _, tt := range []struct {
		env          map[string]string
		wantEndpoint string
		wantRequired bool
	}{
		{map[string]string{}, "", false},
		{map[string]string{EnvEndpoint: " http://127.0.0.1:5000/ "}, "http://127.0.0.1:5000", false},
		{map[string]string{EnvRequire: "1"}, "", true},
		{map[string]string{EnvRequire: "0"}, "", false},
		{map[string]string{"CI": "true"}, "", true},
		{map[string]string{"CI": "TRUE", EnvEndpoint: "http://127.0.0.1:1"}, "http://127.0.0.1:1", true},
		{map[string]string{"CI": "false"}, "", false},
	} {
		ep, req := Lookup(func(k string) string { return tt.env[k] })
		if ep != tt.wantEndpoint || req != tt.wantRequired {
			t.Errorf("%v: got %q %v, want %q %v", tt.env, ep, req, tt.wantEndpoint, tt.wantRequired)
		}
	}
}

// fakeTB records how Endpoint ended a test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func endpointWith(t *testing.T, env map[string]string) *fakeTB {
	t.Setenv(EnvEndpoint, env[EnvEndpoint])
	t.Setenv(EnvRequire, env[EnvRequire])
	t.Setenv("CI", env["CI"])
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Endpoint(f)
	}()
	<-done
	return f
}

func TestEndpointSkipsOrFails(t *testing.T) {
	if f := endpointWith(t, nil); !strings.Contains(f.skipped, "make integration") || f.failed != "" {
		t.Errorf("unset, not required: want a skip, got %+v", f)
	}
	if f := endpointWith(t, map[string]string{EnvRequire: "1"}); f.skipped != "" || !strings.Contains(f.failed, "is not set") {
		t.Errorf("unset, PATCHGATE_REQUIRE_MOTO=1: want a failure, got %+v", f)
	}
	if f := endpointWith(t, map[string]string{"CI": "true"}); f.skipped != "" || !strings.Contains(f.failed, "is not set") {
		t.Errorf("unset, CI=true: want a failure, got %+v", f)
	}
	// Port 1 on loopback: nothing listens there.
	if f := endpointWith(t, map[string]string{EnvEndpoint: "http://127.0.0.1:1"}); !strings.Contains(f.failed, "does not answer") {
		t.Errorf("unreachable: want a failure, got %+v", f)
	}
}
