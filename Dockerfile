# One image for every component of the platform; the command selects which one runs:
#   docker run IMAGE services.identity serve      (gRPC, GOV_GRPC_PORT, default 50051)
#   docker run IMAGE services.identity migrate    (Alembic migrations, run once per release)
#   docker run IMAGE gateway                      (HTTP, GOV_HTTP_PORT, default 8080)
# The Helm chart in deploy/helm/gov-platform passes the module and its arguments as container args.

# Base image: python:3.11-slim by tag. Pin it by digest where the image can be inspected
# (`docker buildx imagetools inspect python:3.11-slim` prints the index digest), as
# `FROM python:3.11-slim@sha256:<digest>` in both stages; deploy/check.sh accepts tag@digest.
# The machines this repository is built and checked on cannot reach an image registry, so no digest
# is written here rather than one that could not be verified.

# ---------------------------------------------------------------------------------------------------
# build: tools (grpcio-tools) live in their own venv; the runtime venv gets requirements.txt only.
# ---------------------------------------------------------------------------------------------------
FROM python:3.11-slim AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src

COPY requirements.txt requirements-dev.txt ./

# Build tools: grpcio-tools and the rest of requirements-dev.txt (never copied to the final image).
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir -r requirements-dev.txt

# Runtime dependencies only, into a venv without pip; the same path is used in the final stage.
RUN python -m venv --without-pip /opt/venv \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-cache-dir -r requirements.txt

# Generated gRPC/protobuf code, same invocation as `make proto` (`python -m grpc_tools.protoc`
# adds the bundled google/protobuf include directory itself).
COPY proto/ /app/proto/
WORKDIR /app
RUN mkdir -p /app/gen \
    && find proto -name '*.proto' -exec /opt/build/bin/python -m grpc_tools.protoc -Iproto \
        --python_out=gen --pyi_out=gen --grpc_python_out=gen {} +

# The runtime packages only. Production data ships inside them (the public-holiday calendars in
# services/tickets/holidays); the demo street and its seeders (demo/) stay out of the image.
COPY govkit/ /app/govkit/
COPY services/ /app/services/
COPY gateway/ /app/gateway/

# Byte-compile once at build time: the root filesystem is read-only at run time.
# unchecked-hash pycs stay valid whatever the file timestamps become when copied between stages.
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /app/govkit /app/services /app/gateway /app/gen

# ---------------------------------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="gov-platform" \
      org.opencontainers.image.description="Community governance platform: identity, blocks, tickets, points, notifications and the HTTP gateway" \
      org.opencontainers.image.version="${VERSION}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app:/app/gen \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    GOV_GRPC_PORT=50051 \
    GOV_HTTP_HOST=0.0.0.0 \
    GOV_HTTP_PORT=8080

# Fixed numeric ids so that Kubernetes runAsNonRoot/runAsUser can verify them.
RUN groupadd --system --gid 10001 gov \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin gov

COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app

WORKDIR /app
USER 10001:10001

EXPOSE 50051 8080
STOPSIGNAL SIGTERM
# Liveness and readiness come from the orchestrator (Kubernetes grpc/httpGet probes).
HEALTHCHECK NONE

ENTRYPOINT ["python", "-m"]
CMD ["gateway"]
