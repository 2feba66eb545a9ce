# syntax=docker/dockerfile:1
# The ecr-operator image: a release build on Debian bookworm, run from distroless/cc as non-root
# (uid 65532), with no shell. Build: docker build -t <registry>/ecr-operator:<version> .
# (see docs/install.md); the release workflow (.github/workflows/release.yml) builds it for
# linux/amd64 and linux/arm64 with the VERSION, REVISION and CREATED below set from the tag.
# Without a container engine, `cargo xtask image` builds the same image (same user, entrypoint,
# command, environment, labels, binary and CA bundle paths, on a base of the same Debian
# packages) as an OCI archive; tests/image.rs compares it with this file and runs it with runc
# (docs/image.md).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# As `cargo xtask image` builds it: dependencies' source paths in the binary read /cargo/...
ENV CARGO_ENCODED_RUSTFLAGS=--remap-path-prefix=/usr/local/cargo=/cargo
# sharing=locked: a multi-platform build (the release workflow builds linux/amd64 and linux/arm64
# at once) runs this step once per platform on the same caches; locked, each platform builds and
# copies its own binary before the other starts, so neither copies the other's.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin ecr-operator \
 && cp target/release/ecr-operator /ecr-operator

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
# The commit time, RFC 3339 in UTC (docs/image.md shows the command).
ARG CREATED=unknown
LABEL org.opencontainers.image.title="ecr-operator" \
      org.opencontainers.image.description="Manage Amazon ECR with Kubernetes resources" \
      org.opencontainers.image.source="https://github.com/ecr-operator/ecr-operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /ecr-operator /ecr-operator
# Two glibc malloc arenas instead of up to 8 per core: peak RSS 59 MiB instead of 65 MiB with
# 1,000 Repositories (cargo xtask bench); no measurable cost in speed.
ENV MALLOC_ARENA_MAX=2
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/ecr-operator"]
CMD ["run"]
