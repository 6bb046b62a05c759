# patchgate's developer entry points. CI runs `bash .ci/run`, which calls these.
GO ?= go
STATICCHECK_VERSION := v0.8.2
GOBIN ?= $(shell $(GO) env GOPATH)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/patchgate/patchgate/internal/version.Version=$(VERSION)

.PHONY: build test integration lint fuzz tools bench gremlins mutate

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/patchgate ./cmd/patchgate

test:
	$(GO) test -race -shuffle=on -count=1 ./...

# Wire-compatibility tests against moto (a third-party AWS emulator, installed
# into .cache/ by the script): `make integration INTEGRATION_ARGS="-run Lock ./internal/lock"`.
integration:
	GO=$(GO) bash scripts/moto.sh $(INTEGRATION_ARGS)

tools:
	@test -x $(GOBIN)/staticcheck && $(GOBIN)/staticcheck -version | grep -q "$(STATICCHECK_VERSION:v%=%)" || \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: tools
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...  # the moto tests build only with the tag
	$(GOBIN)/staticcheck ./...

# Each fuzz target runs its budget of inputs; `go test -fuzz` takes one
# target at a time. Budgets are counts, not durations: with a duration, Go
# 1.26's fuzz coordinator can fail a clean run with "context deadline
# exceeded" when the deadline races a busy worker (golang/go#75804, fixed
# in Go 1.27), and a count means the same pass on a slow machine. A target
# runs FUZZ_BUDGETS' count for it, else FUZZ_EXECS; FUZZTIME (a count "Nx"
# or, for a long local run, a duration) overrides both.
FUZZ_EXECS ?= 500x
FUZZ_BUDGETS ?= FuzzLoad=30000x FuzzDecode=30000x FuzzCell=2000x FuzzLogWriter=2000x
FUZZ_MINIMIZE ?= 200x
FUZZTIME ?=
fuzz:
	@for dir in $$($(GO) list -f '{{.Dir}}' ./...); do \
		for fz in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | cut -d' ' -f2); do \
			budget="$(FUZZTIME)"; \
			if [ -z "$$budget" ]; then budget=$(FUZZ_EXECS); \
				for kv in $(FUZZ_BUDGETS); do [ "$${kv%%=*}" = "$$fz" ] && budget="$${kv#*=}"; done; fi; \
			echo "fuzz $$dir $$fz ($$budget)"; \
			(cd $$dir && $(GO) test -run '^$$' -fuzz "^$$fz\$$" -fuzztime "$$budget" -fuzzminimizetime $(FUZZ_MINIMIZE) .) || exit 1; \
		done; done

# Fleet-scale benchmarks (internal/bench): full runs of 100 to 50,000
# instances (and 200,000 over 40 account-regions) against the simulator's
# realistic fleet model on a fake clock, beside the competent script, the
# waiter reference and the computed floor; writes BENCHMARKS.md and fails
# when a target is missed. BENCH_ARGS narrows it: "-fleet.sizes=10000
# -fleet.extra=" (no 200k case), "-fleet.naive-max=0" (no waiter; it runs
# up to 10,000 by default: ~5 min of wall time per case at 50,000),
# "-fleet.ways=patchgate".
BENCH_ARGS ?=
bench:
	@mkdir -p .cache
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./internal/policy ./internal/plan ./internal/report ./internal/awssim | \
		grep -E '^(Benchmark|goos|goarch|cpu)' | awk '!seen[$$0]++' | tee .cache/gobench.txt
	$(GO) test -count=1 -timeout 90m -run '^TestFleet$$' ./internal/bench -args -fleet -fleet.check \
		-fleet.out=$(CURDIR)/BENCHMARKS.md -fleet.gobench=$(CURDIR)/.cache/gobench.txt $(BENCH_ARGS)

# Mutation testing (docs/testing.md): gremlins changes one operator at a
# time in the packages that decide what is sent and what is reported as
# passed, and reruns each package's tests. MUTATE_BASE=<commit> mutates
# only the lines changed since it (use it before committing to these
# packages); MUTATE_PKGS narrows the list, and an entry dir:a.go,b.go
# mutates those files only. Writes .cache/mutate/summary.json and prints a
# table. Too slow for .ci/run.
GREMLINS_VERSION := v0.5.0
MUTATE_PKGS ?= ./internal/gate ./internal/exitcode ./internal/policy:compile.go,types.go ./internal/lock \
	./internal/verify ./internal/report ./internal/rollout
MUTATE_BASE ?=
MUTATE_WORKERS ?= 0
# gremlins times each mutant's tests at this multiple of the unmutated
# coverage run; a mutant must also compile, which a warm coverage run
# does not, so gremlins' default of 3 reports slow compiles as timeouts.
MUTATE_TIMEOUT_COEFFICIENT ?= 10

gremlins:
	@test -x $(GOBIN)/gremlins && $(GO) version -m $(GOBIN)/gremlins | grep -q "mod.*github.com/go-gremlins/gremlins.*$(GREMLINS_VERSION)" || \
		$(GO) install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)

mutate: gremlins
	$(GO) run ./scripts/mutate -gremlins $(GOBIN)/gremlins -base "$(MUTATE_BASE)" -out .cache/mutate \
		-workers $(MUTATE_WORKERS) -timeout-coefficient $(MUTATE_TIMEOUT_COEFFICIENT) $(MUTATE_PKGS)

ACTIONLINT_VERSION := v1.7.7
# Lints this repository's workflow and the example workflows users copy.
actionlint:
	@test -x $(GOBIN)/actionlint && $(GOBIN)/actionlint -version | grep -q "$(ACTIONLINT_VERSION:v%=%)" || \
		$(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	$(GOBIN)/actionlint -shellcheck= .github/workflows/*.yml examples/workflows/*.yml
