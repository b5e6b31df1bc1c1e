# The image deploy/ runs: iga:latest, with the four binaries (`iga`,
# `command-service`, `query-service`, `projection-service`).
#   docker build -t iga:latest .
# Multi-stage: the workspace is built in the Rust image (no protoc needed:
# protox compiles the schemas), and only the binaries go into a distroless
# runtime (glibc, CA certificates, no shell) running as a non-root user.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target dir between builds on one host;
# the binaries are copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p iga --bins \
 && mkdir -p /out/bin /out/data \
 && cp target/release/iga target/release/command-service \
       target/release/query-service target/release/projection-service /out/bin/

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bin/ /usr/local/bin/
# The data dir: the embedded log and the read models (a volume in deploy/).
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV IGA_DATA_DIR=/data \
    IGA_LISTEN=0.0.0.0:8080 \
    IGA_LOG_FORMAT=json
EXPOSE 8080
# `iga health` asks this container's /healthz (IGA_LISTEN's port); there is no
# shell or curl in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["iga", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT []
CMD ["iga", "serve"]
