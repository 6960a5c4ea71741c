# The twin server (and the simulated shop floor of the compose stack's "sim" profile).
#   docker build -t factory-twin .
#   docker run --rm factory-twin python -m twin_server serve --help
# See docs/deployment.md. Python 3.11 as in pyproject.toml; Debian bookworm as on the dev PCs.

# -- the viewer's three.js, from the npm lockfile (no CDN at run time) --------------------------
FROM node:20-bookworm-slim AS viewer
WORKDIR /replay
COPY replay/package.json replay/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# -- the server -----------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TWIN_REPLAY_DIR=/app/replay
WORKDIR /app

# Dependencies first, so code edits do not re-download them: install the [server] extra from
# pyproject.toml with empty packages, then the real code on top.
COPY pyproject.toml README.md ./
RUN mkdir -p edge_agent twin_server models3d \
 && touch edge_agent/__init__.py twin_server/__init__.py models3d/__init__.py \
 && pip install ".[server]" \
 && pip uninstall -y factory-twin \
 && rm -rf edge_agent twin_server models3d build *.egg-info

COPY edge_agent ./edge_agent
COPY twin_server ./twin_server
COPY examples ./examples
# Every page the server serves (viewer, commissioning, ...): the whole folder; .dockerignore
# leaves out node_modules and the node tests. tests/test_docs_and_packaging.py checks this.
COPY replay ./replay
COPY --from=viewer /replay/node_modules ./replay/node_modules
RUN pip install --no-deps . \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin twin \
 && mkdir -p /data && chown twin:twin /data

USER twin
VOLUME ["/data"]
EXPOSE 8080
# The compose file passes the site, broker, InfluxDB and data folder (docker-compose.yml).
CMD ["python", "-m", "twin_server", "serve", "--site", "/app/examples/pilot_site.yaml", \
     "--broker", "none", "--data-dir", "/data", "--host", "0.0.0.0", "--port", "8080"]
