# syntax=docker/dockerfile:1
# Passerelle's image: the same `passerelle` commands as the Makefile (serve, worker, migrate).
# Not built on the development machine, which has no container engine: tests/infra/test_deploy_files.py
# keeps this file, compose.yaml and the Makefile in step.
#
#   docker build -t passerelle .                  # the API, the worker and migrations
#   docker build --target dev -t passerelle:dev .  # + the dev group (the mail catcher, the tests)

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# --- builder: the virtual environment, exactly from uv.lock ---------------------------------
FROM python:${PYTHON_VERSION}-slim AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# The dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
# Installed in place (as `make install` does): main/cli.py finds alembic.ini and migrations/
# beside the code, and web/ its templates.
RUN uv sync --frozen --no-dev

FROM builder AS builder-dev
RUN uv sync --frozen --all-groups

# --- runtime: Python, the system libraries the code loads, the built /app -------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
# What scripts/system-packages.sh installs for run time: pyenchant's libenchant-2 and the
# dictionaries it reads (workflows/checks.py). faketime and chromium are for the tests only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libenchant-2-2 hunspell-fr hunspell-en-us \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home passerelle \
    && install -d -o passerelle -g passerelle /var/lib/passerelle/mail
WORKDIR /app
COPY --from=builder --chown=root:root /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER passerelle
EXPOSE 8000
ENTRYPOINT ["passerelle"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

# --- dev: the runtime plus the dev group (aiosmtpd for `python -m devtools`, pytest…) --------
FROM runtime AS dev
COPY --from=builder-dev --chown=root:root /app/.venv /app/.venv

# The default target is the production image.
FROM runtime
