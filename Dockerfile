# Multi-stage build: a Rust builder, then a small Debian runtime with a non-root user.
# The snippet, dashboard and demo are embedded in the binary (their builds are committed),
# so no Node is needed here.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY migrations migrations
COPY snippet/dist snippet/dist
COPY dashboard/dist dashboard/dist
COPY demo demo
RUN cargo build --release --locked --bin lookout && strip target/release/lookout

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /data lookout \
 && mkdir -p /data && chown lookout /data
COPY --from=build /src/target/release/lookout /usr/local/bin/lookout
USER lookout
WORKDIR /data
VOLUME ["/data"]
ENV LOOKOUT_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/lookout.db \
    LOOKOUT_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["lookout"]
CMD ["serve"]
