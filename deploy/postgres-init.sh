#!/usr/bin/env bash
# The official postgres image runs this once, on an empty data directory (compose.yaml mounts it
# in /docker-entrypoint-initdb.d). The same roles and grants as scripts/services.sh's
# provision_pg: an owner for migrations, an application role that owns nothing and has no
# BYPASSRLS, so that row-level security applies to the API and the worker. Passwords here,
# because the containers reach PostgreSQL over a network, not its local socket.
set -euo pipefail

psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
    -v owner_password="$PASSERELLE_OWNER_PASSWORD" -v app_password="$PASSERELLE_APP_PASSWORD" <<'SQL'
CREATE ROLE passerelle_owner;
ALTER ROLE passerelle_owner LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS;
ALTER ROLE passerelle_owner PASSWORD :'owner_password';
CREATE ROLE passerelle_app;
ALTER ROLE passerelle_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
ALTER ROLE passerelle_app PASSWORD :'app_password';
CREATE DATABASE passerelle OWNER passerelle_owner;
ALTER DATABASE passerelle OWNER TO passerelle_owner;
GRANT CONNECT ON DATABASE passerelle TO passerelle_app;
\connect passerelle
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO passerelle_owner;
GRANT USAGE ON SCHEMA public TO passerelle_app;
SQL
