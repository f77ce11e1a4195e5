# syntax=docker/dockerfile:1
# The tether image: one static binary on distroless, as a non-root user,
# with no shell. Build it from the repository's root:
#
#   docker build -t tether .
#   docker run --rm tether version
#
# The build stamps the binary with the checkout's revision when the
# build context holds the .git directory (a plain clone; a git worktree's
# .git is a file pointing elsewhere, and then `tether version` shows no
# revision). See "Install" in README.md and deploy/compose.yaml.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Modules first, so that a change to the code does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
# The code is bind-mounted, not copied: no layer keeps the sources.
# safe.directory: the context belongs to another user than the build's.
RUN --mount=type=bind,target=/src \
    --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    git config --global --add safe.directory /src && \
    go build -ldflags='-s -w' -o /out/tether ./cmd/tether && \
    /out/tether version

# distroless/static: CA certificates, /etc/passwd with "nonroot", no shell,
# no package manager. The binary is static (CGO_ENABLED=0).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tether /usr/local/bin/tether
USER nonroot:nonroot
# 8080: the balancer's listen; 8081: the manager; 9090: metrics.listen.
EXPOSE 8080 8081 9090
ENTRYPOINT ["/usr/local/bin/tether"]
CMD ["serve", "--config", "/etc/tether/tether.yaml"]
