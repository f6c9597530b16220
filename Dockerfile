# Syncplane server image.
#
#   docker build -t syncplane .
#   docker run -p 8080:8080 -p 9090:9090 syncplane
#
# Base images are pinned to exact tags; cmd/syncplane/dockerfile_test.go
# checks this file (pinned images, non-root user, healthcheck, static build).
# To pin by digest as well, append @sha256:<digest> to both FROM images.

FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src

# Modules in their own layer: only re-downloaded when go.mod/go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
# Set by BuildKit from --platform (no defaults: a default would override
# them); empty means the build container's own platform.
ARG TARGETOS
ARG TARGETARCH
# The version the binary reports (syncplane version, syncplane_build_info).
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/syncplane ./cmd/syncplane

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="syncplane" \
      org.opencontainers.image.description="Syncplane multi-tenant sync server" \
      org.opencontainers.image.source="https://github.com/syncplane/syncplane"
COPY --from=build /out/syncplane /syncplane
# distroless "nonroot" user
USER 65532:65532
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/syncplane", "healthcheck"]
ENTRYPOINT ["/syncplane"]
CMD ["serve"]
