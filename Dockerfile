# patchgate's GitHub Action image. Pin the builder by digest for releases
# (docker buildx imagetools inspect golang:1.26.8-bookworm).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/patchgate/patchgate/internal/version.Version=${VERSION}" \
    -o /out/patchgate ./cmd/patchgate

# Not distroless/static: `plan` reads the base commit's policies with the git
# command line (every ref syntax, shallow-clone diagnostics), and git is not
# static. bookworm-slim + git + CA certificates + tzdata (schedules use IANA
# zones). safe.directory: the runner mounts the workspace owned by another uid.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory '*'
COPY --from=build /out/patchgate /usr/local/bin/patchgate
# Runs as root on purpose: GitHub's Docker container actions must run as the
# default (root) user, or they cannot write GITHUB_WORKSPACE, GITHUB_OUTPUT and
# GITHUB_STEP_SUMMARY, which the runner mounts owned by root.
ENTRYPOINT ["/usr/local/bin/patchgate"]
