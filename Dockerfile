# patchgate's GitHub Action image. Releases are built by
# .github/workflows/release.yml for linux/amd64 and linux/arm64 and used by
# digest; the default branch's action.yml builds this file (development).
# Pin the bases by digest in a fork that must not follow their tags
# (docker buildx imagetools inspect golang:1.26.8-alpine).

# Build stage (not in the image): the Go toolchain cross-compiles for the
# target platform, so an arm64 image needs no emulated compiler.
FROM --platform=$BUILDPLATFORM golang:1.26.8-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
    -ldflags "-s -w -X github.com/patchgate/patchgate/internal/version.Version=${VERSION}" \
    -o /out/patchgate ./cmd/patchgate

# Runtime: alpine (~8 MB) because `plan` reads the base commit's policies
# with the git command line (every ref syntax, shallow-clone diagnostics),
# and git is not static; a distroless/static base would lose plan.
#   layer 1: alpine base
#   layer 2: git (plan) and CA certificates (AWS and GitHub over TLS);
#            time zones are compiled into the binary (time/tzdata), so no
#            tzdata package. safe.directory: the runner mounts the
#            workspace owned by another uid.
#   layer 3: the static patchgate binary (~16 MB, stripped)
FROM alpine:3.22
RUN apk add --no-cache git ca-certificates \
    && git config --system --add safe.directory '*'
COPY --from=build /out/patchgate /usr/local/bin/patchgate
# Runs as root on purpose: GitHub's Docker container actions must run as the
# default (root) user, or they cannot write GITHUB_WORKSPACE, GITHUB_OUTPUT and
# GITHUB_STEP_SUMMARY, which the runner mounts owned by its own user. The
# image CI checks those writes leave the files the runner's.
ENTRYPOINT ["/usr/local/bin/patchgate"]
