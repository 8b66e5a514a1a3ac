# Passerelle — developer and CI entry points.
#
#   make install        create .venv from uv.lock (all dependency groups)
#   make services       make sure PostgreSQL and Redis answer; write .dev/env
#   make migrate        apply the migrations
#   make run            demo data + worker + mail catcher (devtools) + API on :8000 (PORT=…; Ctrl-C stops all)
#   make test           the import contracts, the test suite (PYTEST_ARGS="-k foo -x"), then make client
#   make test-at        the test suite with the clock at DATE="2028-02-29 12:00" (Montréal time)
#   make bench          the benchmarks (BENCH=api for one of them)
#   make lint           ruff + mypy + the import contracts (lint-imports)
#   make client         TypeScript types from the OpenAPI document (openapi-typescript); tsc checks a usage file
#   make migration-sql  print the SQL of all migrations
#   make services-stop  stop the private servers started under .dev/
#   make clean          services-stop, then remove .venv and .dev
#
# Settings come from .dev/env (written by scripts/services.sh). It is loaded into each
# recipe's shell with `set -a; . .dev/env` rather than make's `include`, because its values
# may be quoted JSON that make would not parse.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
DATE ?=
BENCH ?=
PORT ?= 8000
LOAD_ENV := set -a; . ./.dev/env; set +a

.PHONY: help install services migrate run test test-at bench lint client migration-sql services-stop clean

help:
	@sed -n 's/^#   make /  make /p' $(firstword $(MAKEFILE_LIST))

install: $(VENV)/.installed

# System packages first (libenchant-2 and the hunspell dictionaries that pyenchant loads; a
# no-op when present). Then uv: from PATH, else `python3 -m uv` (installed with pip when
# missing). If pip refuses (externally managed Python), uv goes into a small private venv
# under .dev/.
$(VENV)/.installed: pyproject.toml uv.lock scripts/system-packages.sh
	@bash scripts/system-packages.sh
	if uv --version >/dev/null 2>&1; then
		uv=(uv)
	elif python3 -m uv --version >/dev/null 2>&1; then
		uv=(python3 -m uv)
	elif python3 -m pip install --quiet uv 2>/dev/null; then
		uv=(python3 -m uv)
	elif [ -x .dev/uv/bin/uv ] || { python3 -m venv .dev/uv && .dev/uv/bin/pip install --quiet uv; }; then
		uv=(.dev/uv/bin/uv)
	else
		echo "make: cannot find or install uv (tried PATH, python3 -m uv, pip, a venv)" >&2
		exit 1
	fi
	echo "+ $${uv[*]} sync --frozen --all-groups"
	"$${uv[@]}" sync --frozen --all-groups
	touch $@

services: install
	@bash scripts/services.sh

migrate: services
	@$(LOAD_ENV)
	$(BIN)/passerelle migrate

# The API runs in the background too, so that the summary (addresses, demo logins, where the
# e-mails go) is printed once it answers, after the start-up lines, not before them.
run: migrate
	@$(LOAD_ENV)
	base="http://127.0.0.1:$(PORT)"
	# E-mail links point at this server unless .dev/env names another address.
	export PUBLIC_BASE_URL="$${PUBLIC_BASE_URL:-$$base}"
	logins=$$($(BIN)/passerelle demo)
	mail_dir="$${DEV_MAIL_DIR:-.dev/mail}"
	$(BIN)/python -m devtools --smtp-port "$${SMTP_PORT:-1025}" --mail-dir "$$mail_dir" &
	tools=$$!
	# The worker's job lines would bury the summary below; they go to a file.
	worker_log=.dev/worker.log
	$(BIN)/passerelle worker >>"$$worker_log" 2>&1 &
	worker=$$!
	$(BIN)/passerelle serve --host 127.0.0.1 --port $(PORT) &
	api=$$!
	trap 'kill "$$api" "$$worker" "$$tools" 2>/dev/null || true; wait "$$api" "$$worker" "$$tools" 2>/dev/null || true' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	until (exec 3<>/dev/tcp/127.0.0.1/$(PORT)) 2>/dev/null; do
		if ! kill -0 "$$api" 2>/dev/null; then
			echo "make: the API did not start (is port $(PORT) in use?)" >&2
			exit 1
		fi
		sleep 0.2
	done
	row() { printf '  %-14s %s\n' "$$1" "$$2"; }
	echo
	echo "Passerelle is running; Ctrl-C stops the API, the worker and the mail catcher."
	echo
	row "API" "$$base/v1"
	row "API docs" "$$base/docs (and $$base/redoc)"
	row "Client portal" "$$base/portal/sign-in"
	row "E-mails" "$$base/dev/mail, or: $(BIN)/passerelle mail list"
	row "" "every e-mail (invitations, approval links) goes to the local SMTP catcher"
	row "" "on 127.0.0.1:$${SMTP_PORT:-1025} and is kept in $$mail_dir; none leaves this machine"
	row "Worker log" "$$worker_log"
	echo
	echo 'Demo agency "Agence Démo" (agence-demo), with every feature. Logins:'
	echo "$$logins"
	echo
	wait "$$api"

# The import contracts first (pyproject.toml, [tool.importlinter]): CI runs `make test`, and a
# broken layer fails it in seconds, before the suite's minutes.
test: services
	$(BIN)/lint-imports
	$(LOAD_ENV)
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)
	$(MAKE) --no-print-directory client

# The suite with the process clock moved (libfaketime), so a test that depends on the real
# date fails now rather than the day that date comes: see scripts/test-at.sh.
test-at: services
	@if [ -z "$(DATE)" ]; then echo 'make: test-at needs DATE="YYYY-MM-DD HH:MM"' >&2; exit 2; fi
	$(LOAD_ENV)
	bash scripts/test-at.sh "$(DATE)" $(PYTEST_ARGS)

bench: migrate
	if ! command -v wrk >/dev/null 2>&1; then
		if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
			echo "+ apt-get install wrk"
			DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
		else
			echo "make: warning: wrk is not installed (needs root and apt-get to install it here)" >&2
		fi
	fi
	$(LOAD_ENV)
	$(BIN)/python -m bench $(BENCH)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy main api web privacy infra tenants billing workflows social publishing inbox partners devtools bench
	$(BIN)/lint-imports

# The OpenAPI document must make a working TypeScript client: generate the types with
# openapi-typescript (versions in clients/typescript/package-lock.json) and type-check
# clients/typescript/usage.ts, a partner program, with tsc. The document is built from the
# app object with placeholder settings: no database, Redis or .dev/env needed.
client: install
	if ! command -v npm >/dev/null 2>&1; then
		echo "make: client needs Node.js (18 or later) and npm" >&2
		exit 1
	fi
	mkdir -p .dev
	$(BIN)/python scripts/dump_openapi.py .dev/openapi.json
	cd clients/typescript
	npm ci --no-audit --no-fund --loglevel=error
	npx --no -- openapi-typescript ../../.dev/openapi.json -o src/schema.d.ts
	npx --no -- tsc --noEmit -p .

# SQL goes to stdout, everything else to stderr: `make -s migration-sql > schema.sql`.
migration-sql: services
	@$(LOAD_ENV)
	$(BIN)/alembic upgrade head --sql

services-stop:
	bash scripts/services.sh stop

clean: services-stop
	@if [ -L .dev/pg ]; then
		target=$$(readlink .dev/pg)
		case "$$target" in /tmp/passerelle-dev-pg-*) rm -rf -- "$$target" ;; esac
	fi
	rm -rf -- $(VENV) .dev
	echo "removed $(VENV) and .dev"
