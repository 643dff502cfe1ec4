# One image for both roles (`headroom agent`, `headroom controller`), amd64 and arm64
# (HR-001): every dependency has wheels for both, so `docker buildx build
# --platform linux/amd64,linux/arm64 .` needs no compiler. No syntax directive on purpose:
# the frontend built into buildkit reads this file, so a build fetches no frontend image
# (tests/node/build-image.sh builds it with no registry at all).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- build: resolve exactly what uv.lock pins (with hashes), nothing else -------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY operator ./operator
RUN uv sync --locked --no-dev --no-editable

# ---- runtime: the virtualenv only; no uv, no compiler, no package manager cache --
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="headroom" \
      org.opencontainers.image.description="Headroom node agent and capacity controller" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 65532 headroom \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin headroom
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["headroom"]
CMD ["agent"]
