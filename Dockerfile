# syntax=docker/dockerfile:1
#
# Gantry, CPU image. One image, three roles (the CMD picks one):
#   node dist/src/cli.js api      HTTP API (default)
#   node dist/src/cli.js worker   inference worker (metrics, /health and /ready on GANTRY_WORKER_METRICS_PORT)
#   node dist/src/cli.js start    API + one worker in one process tree (single host, development)
#
# Build:  docker build -t gantry:0.1.0 .
# The GPU variant is Dockerfile.cuda.

ARG NODE_IMAGE=node:20-bookworm-slim

############################ build ############################
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# .npmrc carries onnxruntime-node-install=skip: the CPU build downloads no CUDA libraries. The environment
# variable says the same thing, and wins over any npm config, so the intent survives an edited .npmrc.
ENV ONNXRUNTIME_NODE_INSTALL=skip

COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json ./
COPY src ./src
# The web console's sources and its build script: npm run build bundles them into dist/console.
COPY console ./console
COPY scripts ./scripts
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

############################ runtime ############################
FROM ${NODE_IMAGE} AS runtime

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    GANTRY_GRPC_PORT=8081 \
    GANTRY_DATA_DIR=/data \
    GANTRY_WORKER_METRICS_PORT=9091 \
    GANTRY_DEVICE=cpu

WORKDIR /app

# package.json must ship: its "type": "module" makes Node load dist/**/*.js as ES modules.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The gRPC service's .proto files, read at start-up by the API role (GANTRY_GRPC_PORT).
COPY proto ./proto

# The model store (content-addressed blobs under $GANTRY_DATA_DIR/blobs). A fresh named volume mounted here
# takes this directory's owner, so the non-root user can write to it.
RUN mkdir -p /data && chown node:node /data

# The node user (uid 1000) comes with the base image. Dockerfile.cuda runs as uid 1000 too, so CPU and GPU
# containers can share one model volume.
USER node

EXPOSE 8080 8081 9091

# No curl in slim images: ask Node. This checks the API's liveness endpoint; worker containers override the
# healthcheck (docker-compose.yml) to probe http://127.0.0.1:$GANTRY_WORKER_METRICS_PORT/health instead.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/v2/health/live',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

CMD ["node", "dist/src/cli.js", "api"]
