# One image for the three processes; the command picks which one runs:
#   docker run IMAGE                                     -> api (default)
#   docker run IMAGE node --enable-source-maps dist/worker/main.js
#   docker run IMAGE node --enable-source-maps dist/health/main.js
# Build: docker build -t order-fleet .

# Node 24 LTS on Debian slim (glibc: the prebuilt native add-ons of the dependencies load as they are).
# The three stages name the same base image; change them together.

# --- build: all dependencies, compile TypeScript to dist/ ---------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# deps/ holds the msgpackr-extract stub that package.json's "overrides" point at (see its README).
COPY deps ./deps
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY common ./common
COPY api ./api
COPY worker ./worker
COPY health ./health
COPY scripts ./scripts
RUN npx tsc -p tsconfig.json

# --- deps: production dependencies only ----------------------------------------------------------
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY deps ./deps
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime ---------------------------------------------------------------------------------------
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Files stay owned by root and read-only to the process: it writes nothing to disk, which is what
# lets Kubernetes run it with readOnlyRootFilesystem.
COPY package.json ./
COPY --from=deps /app/deps ./deps
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/common ./dist/common
COPY --from=build /app/dist/api ./dist/api
COPY --from=build /app/dist/worker ./dist/worker
COPY --from=build /app/dist/health ./dist/health
COPY --from=build /app/dist/scripts/healthcheck.js ./dist/scripts/healthcheck.js
# The image's `node` user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# api, health, worker metrics
EXPOSE 3000 3001 9464
# Process-level check (see scripts/healthcheck.ts): /health/live for api and health, /metrics for a
# worker. Three misses 15 s apart leave start-up ample time; docker-compose.yml adds a start period.
HEALTHCHECK --interval=15s --timeout=5s --retries=3 \
  CMD ["node", "dist/scripts/healthcheck.js"]
# Node runs as PID 1 with no shell in between (exec form), so SIGTERM reaches it directly; every
# process installs its own SIGTERM/SIGINT handlers (graceful shutdown) and starts no children to reap.
STOPSIGNAL SIGTERM
CMD ["node", "--enable-source-maps", "dist/api/main.js"]
