# syntax=docker/dockerfile:1
# scitags-collector: multi-stage build.
#   docker build -t scitags-collector .
#   docker run --rm -p 4739:4739/udp -p 2055:2055/udp -p 6343:6343/udp -p 10514:10514/udp -p 10514:10514/tcp -p 8080:8080 \
#     -e SCITAGS_API_BIND=:: -e SCITAGS_STORE=influx://influxdb:8086/scitags scitags-collector
# Both stages use the same image, Node 24 LTS on Debian bookworm, pinned by digest so a
# rebuild gets the same Node and libraries: the native modules compiled in the build stage
# (better-sqlite3, the batched-receive addon) run unchanged in the runtime stage.
# node:24-bookworm-slim 24.18.0 (linux/amd64 manifest list). To move to a newer Node 24:
#   docker buildx imagetools inspect node:24-bookworm-slim   # the "Digest:" line
# and replace both digests below (the deploy test checks that they are equal).
ARG NODE_IMAGE=node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

# ---- build: install everything, compile TypeScript, then drop the dev dependencies ----
FROM ${NODE_IMAGE} AS build
# The slim image has no compiler: node-gyp needs python3, make and g++.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json binding.gyp ./
COPY src ./src
COPY decoders ./decoders
COPY collectors ./collectors
COPY data/registry-snapshot.json ./data/registry-snapshot.json
# `npm ci` runs the package's `install` script (the batched-receive addon, node-gyp against the
# image's Node headers) and `prepare` (tsc into dist/).
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund \
 && test -f dist/src/cli.js \
 && test -f build/Release/scitags_recv.node \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: production dependencies and compiled code only, non-root ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/Release/scitags_recv.node ./build/Release/scitags_recv.node
COPY --from=build /app/data/registry-snapshot.json ./data/registry-snapshot.json
# Default configuration; mount your own over it (docker-compose.yml mounts deploy/config.yaml).
COPY deploy/config.yaml /etc/scitags-collector/config.yaml
RUN groupadd --system --gid 10001 scitags \
 && useradd --system --uid 10001 --gid scitags --home-dir /var/lib/scitags-collector --shell /usr/sbin/nologin scitags \
 && mkdir -p /var/lib/scitags-collector \
 && chown scitags:scitags /var/lib/scitags-collector
# The data directory: registry cache, decoder state, InfluxDB outage spool, crash fixtures,
# the embedded store when chosen (relative file paths in the configuration resolve here).
ENV SCITAGS_DATA_DIR=/var/lib/scitags-collector
VOLUME ["/var/lib/scitags-collector"]
WORKDIR /var/lib/scitags-collector
USER 10001:10001
# IPFIX, NetFlow v5/v9, sFlow v5, REST API (/health, /metrics, /api/v1). All above 1024: no
# capability is needed.
EXPOSE 4739/udp 2055/udp 6343/udp 10514/udp 10514/tcp 8080/tcp
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/health').then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
CMD ["serve", "--config", "/etc/scitags-collector/config.yaml"]
