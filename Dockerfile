# watchdog: one static binary on an empty image, run as a non-root user.
#
#   docker build -t watchdog .
#
# compiles it in the Rust image. CI, where no image can be pulled, builds the same final image
# from a binary it has just built: the `build` stage is replaced by a directory holding what it
# would have produced (see .ci/image):
#
#   podman build --format docker --build-context build=DIR -t watchdog .

ARG RUST_IMAGE=docker.io/library/rust:1-bookworm

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked --target x86_64-unknown-linux-gnu \
    && mkdir -p /out/etc/ssl/certs /out/var/lib/watchdog /out/usr/local/bin \
    && cp target/x86_64-unknown-linux-gnu/release/watchdog /out/usr/local/bin/watchdog \
    && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt \
    && echo 'watchdog:x:10001:10001:watchdog:/var/lib/watchdog:/nonexistent' > /out/etc/passwd \
    && echo 'watchdog:x:10001:' > /out/etc/group

FROM scratch
COPY --from=build /out/etc/ /etc/
COPY --from=build /out/usr/local/bin/watchdog /usr/local/bin/watchdog
COPY --from=build --chown=10001:10001 /out/var/lib/watchdog /var/lib/watchdog
ENV PATH=/usr/local/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    WATCHDOG_STATE_DIR=/var/lib/watchdog
USER 10001:10001
VOLUME ["/var/lib/watchdog"]
EXPOSE 19847
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["watchdog", "healthcheck"]
ENTRYPOINT ["watchdog"]
CMD ["run"]
