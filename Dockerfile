# syntax=docker/dockerfile:1
# Universe MCP in a container: one image for every role of the distributed layout (docs/DEPLOYMENT.md, "Containers")
# - `universe-mcp serve` (the default), `worker`, `scheduler`, `db upgrade`, `token ...` - and for the embedded mode
# (`docker run -p 8000:8000 -e UNIVERSE_MCP_AUTH=token ...`, SQLite in the /data volume).
#
#   docker build -t universe-mcp .
#   docker compose up -d                      # compose.yaml: PostgreSQL, Redis, migrations, 2 servers, worker, scheduler

# --- build: the wheel, with the shipped data (listings snapshot, migrations, dashboard) as package data -------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY core ./core
COPY server ./server
COPY tools ./tools
COPY services ./services
COPY providers ./providers
COPY storage ./storage
COPY workers ./workers
RUN python -m pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

# --- runtime: the wheel and the runtime dependencies at the versions constraints.txt pins, run as a non-root user ---
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /tmp/wheels
COPY constraints.txt /tmp/constraints.txt
RUN python -m pip install --constraint /tmp/constraints.txt /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /tmp/constraints.txt
COPY deploy/healthcheck.py /usr/local/lib/universe-mcp/healthcheck.py

# A fixed numeric uid, so that orchestrators can check runAsNonRoot; /data holds the SQLite store of the embedded mode.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/universe universe \
    && mkdir /data && chown universe:universe /data
USER 10001:10001
WORKDIR /home/universe
VOLUME ["/data"]

# Listen on every interface inside the container; a non-loopback bind refuses to start without UNIVERSE_MCP_AUTH.
ENV UNIVERSE_MCP_HOST=0.0.0.0 \
    UNIVERSE_MCP_PORT=8000 \
    UNIVERSE_MCP_DATA_DIR=/data
EXPOSE 8000

# serve: GET /readyz answers 200; worker: its heartbeat in Redis is fresh; scheduler: Redis answers (the script says
# which command runs here by itself).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/lib/universe-mcp/healthcheck.py"]

ENTRYPOINT ["universe-mcp"]
CMD ["serve"]
