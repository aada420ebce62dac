# switchboard: build with cargo, run from a slim image as a non-root user.
#   docker build -t switchboard .
#   docker run --rm -p 5060:5060/udp -p 5060:5060/tcp -v "$PWD/config:/app/config:ro" switchboard
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
# A workspace member: cargo reads every member's manifest, even to build one binary.
COPY bench/sipload ./bench/sipload
RUN cargo build --release --locked --bin switchboard

FROM debian:bookworm-slim
# curl only for the health check below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin switchboard
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
WORKDIR /app
COPY config ./config
USER switchboard
# The image checks itself while it is built (scripts/build-image relies on
# this): the shipped data validates, and the server starts from the image's
# own settings and answers /healthz and /readyz. Ports 0: nothing else on
# the build host is disturbed. Nothing is left behind in the layer.
RUN set -e; \
    switchboard --version; \
    switchboard check config/routing.yaml; \
    switchboard serve --config config/switchboard.yaml --listen 127.0.0.1:0 \
        --admin 127.0.0.1:0 >/tmp/serve.out 2>&1 & pid=$!; \
    for i in $(seq 100); do \
        admin=$(sed -n 's/^listening on http //p' /tmp/serve.out); \
        [ -n "$admin" ] && break; sleep 0.1; \
    done; \
    curl -fsS --max-time 5 "http://$admin/healthz"; echo; \
    curl -fsS --max-time 5 "http://$admin/readyz"; echo; \
    kill "$pid"; wait "$pid"; rm -f /tmp/serve.out
# In a container: listen on every interface, admin on 9060 for the health
# check and Prometheus. Trust and flood exemptions stay loopback-only until
# you set them (SWITCHBOARD_TRUST, SWITCHBOARD_EXEMPT or the settings file).
ENV SWITCHBOARD_LISTEN=0.0.0.0:5060 \
    SWITCHBOARD_ADMIN=0.0.0.0:9060 \
    SWITCHBOARD_LOG_FORMAT=json
EXPOSE 5060/udp 5060/tcp 9060/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9060/healthz || exit 1
ENTRYPOINT ["switchboard"]
CMD ["serve", "--config", "config/switchboard.yaml"]
