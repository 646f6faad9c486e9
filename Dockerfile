# syntax=docker/dockerfile:1
#
# Meridian's container image: meridian, meridian-checker and meridianctl,
# built static (CGO_ENABLED=0) on distroless, which has no shell, and run
# as the unprivileged user nonroot (65532).
#
#   docker build -t meridian --build-arg VERSION=$(git describe --tags --always) .
#   docker run -p 53:5353/udp -p 53:5353/tcp -p 9153:9153 \
#       -e MERIDIAN_STORE_DATABASE=postgres://... meridian
#
# DNS listens on 5353 inside the container (no capability needed), and
# /metrics, /healthz and /readyz on 9153 (deploy/docker/meridian.yaml, the
# default /etc/meridian/meridian.yaml). /var/lib/meridian is writable for
# store.cache_file: mount a volume there. The same image runs the other
# commands: meridian-checker --listen 0.0.0.0:8080, meridianctl ...,
# meridian migrate. docker-compose.yml runs them all.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# The modules in a layer of their own: rebuilt only when go.mod or go.sum
# change, not on every source change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
ARG VERSION=devel
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/ \
        ./cmd/meridian ./cmd/meridian-checker ./cmd/meridianctl ./deploy/docker/httpprobe
# The state directory, owned by nonroot below (distroless has no mkdir).
RUN mkdir -p /state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY --from=build --chown=65532:65532 /state /var/lib/meridian
COPY deploy/docker/meridian.yaml /etc/meridian/meridian.yaml
USER nonroot:nonroot
WORKDIR /var/lib/meridian
EXPOSE 5353/udp 5353/tcp 9153/tcp 8080/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD ["/usr/local/bin/httpprobe", "http://127.0.0.1:9153/readyz"]
CMD ["/usr/local/bin/meridian", "serve", "--config", "/etc/meridian/meridian.yaml"]
