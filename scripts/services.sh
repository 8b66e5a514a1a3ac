#!/usr/bin/env bash
# Make sure a PostgreSQL and a Redis are reachable and provisioned for Passerelle,
# then write .dev/env (KEY=value lines, sourceable by bash).
#
#   scripts/services.sh          ensure servers + provisioning, write .dev/env
#   scripts/services.sh stop     stop the private servers started under .dev/ (if any)
#
# Environment:
#   DATABASE_URL / DATABASE_OWNER_URL   use this database as is (no provisioning)
#   REDIS_URL                           use this Redis as is
#   PASSERELLE_FORCE_PRIVATE=1          ignore localhost:5432 / localhost:6379, use private servers
#   PASSERELLE_PG_PORT                  port of the private PostgreSQL (default 55432)
#   PASSERELLE_REDIS_PORT               port of the private Redis (default 56379)
#
# Idempotent; a second run only checks that everything answers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
DEV="$ROOT/.dev"
ENV_FILE="$DEV/env"

PG_PORT="${PASSERELLE_PG_PORT:-55432}"
REDIS_PORT="${PASSERELLE_REDIS_PORT:-56379}"
FORCE_PRIVATE="${PASSERELLE_FORCE_PRIVATE:-0}"
PG_SYSTEM_USER="passerelle-dev"
DB_NAME="passerelle"
OWNER_ROLE="passerelle_owner"
APP_ROLE="passerelle_app"

say() { printf 'services: %s\n' "$*" >&2; }
die() {
    printf 'services: error: %s\n' "$*" >&2
    exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }
have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
    # apt_install <what-for> <package>...
    local what="$1"
    shift
    if ! is_root || ! have apt-get; then
        die "$what is not installed and cannot be installed automatically (needs root and apt-get). Install: $*"
    fi
    say "installing $* with apt-get (for $what)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null ||
        die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
        die "apt-get install $* failed"
}

# Value of KEY in .dev/env as written there (raw, quotes included), empty if absent.
env_file_raw() {
    [[ -f "$ENV_FILE" ]] || return 0
    local line
    line="$(grep -E "^$1=" "$ENV_FILE" | tail -n 1 || true)"
    printf '%s' "${line#*=}"
}

# Unquoted value (for our own plain values, which never contain quotes).
env_file_value() {
    local raw
    raw="$(env_file_raw "$1")"
    raw="${raw#\'}"
    raw="${raw%\'}"
    printf '%s' "$raw"
}

# check_given_url <postgres|redis> <NAME> <url>: a URL the person gave must answer, or we stop
# with one line naming it (rather than the migrations' stack of errors later). The check uses
# the application's own drivers, from .venv.
check_given_url() {
    local python="$ROOT/.venv/bin/python" out
    if [[ ! -x "$python" ]]; then
        say "warning: $python not found (run 'make install'); $2 not checked"
        return 0
    fi
    if ! out="$("$python" "$ROOT/scripts/check_url.py" "$1" "$2" "$3" 2>&1 9>&-)"; then
        die "${out:-$2 does not answer}"
    fi
}

# ---------------------------------------------------------------- PostgreSQL helpers

PG_BIN=""

# Highest /usr/lib/postgresql/<version>/bin that has a server (or only $1 if given).
find_pg_bin() {
    local want="${1:-}" dir best="" best_ver=-1 ver
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/pg_ctl" && -x "$dir/initdb" ]] || continue
        ver="$(basename "$(dirname "$dir")")"
        [[ "$ver" =~ ^[0-9]+$ ]] || continue
        if [[ -n "$want" ]]; then
            [[ "$ver" == "$want" ]] && {
                printf '%s' "$dir"
                return 0
            }
            continue
        fi
        if ((ver > best_ver)); then
            best_ver="$ver"
            best="$dir"
        fi
    done
    [[ -n "$best" ]] && printf '%s' "$best"
    return 0
}

# Client tools: from PATH, else from the server binaries directory.
pg_tool() {
    if have "$1"; then
        command -v "$1"
        return 0
    fi
    local bin
    bin="$(find_pg_bin)"
    if [[ -n "$bin" && -x "$bin/$1" ]]; then
        printf '%s' "$bin/$1"
        return 0
    fi
    return 1
}

ensure_pg_client() {
    if ! pg_tool psql >/dev/null || ! pg_tool pg_isready >/dev/null; then
        apt_install "the PostgreSQL client" postgresql
    fi
    PSQL="$(pg_tool psql)" || die "psql not found after installation"
    PG_ISREADY="$(pg_tool pg_isready)" || die "pg_isready not found after installation"
}

# Run a command as the unprivileged owner of the private cluster, from inside $PG_BASE
# (the repo may not be readable by that user).
# The lock descriptor (9) is closed so that the server does not inherit and keep holding it.
as_pg_user() {
    if is_root; then
        (cd "$PG_BASE" && runuser -u "$PG_SYSTEM_USER" -- "$@" 9>&-)
    else
        (cd "$PG_BASE" && "$@" 9>&-)
    fi
}

ensure_pg_system_user() {
    is_root || return 0
    if ! id -u "$PG_SYSTEM_USER" >/dev/null 2>&1; then
        have useradd || die "useradd not found: cannot create the system user $PG_SYSTEM_USER"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_SYSTEM_USER" ||
            die "could not create the system user $PG_SYSTEM_USER"
        say "created system user $PG_SYSTEM_USER (PostgreSQL refuses to run as root)"
    fi
    have runuser || die "runuser not found: cannot run PostgreSQL as $PG_SYSTEM_USER"
}

repo_hash() {
    if have sha256sum; then
        printf '%s' "$ROOT" | sha256sum | cut -c1-12
    elif have shasum; then
        printf '%s' "$ROOT" | shasum -a 256 | cut -c1-12
    else
        printf '%s' "$ROOT" | cksum | cut -d' ' -f1
    fi
}

# Create a directory owned by the cluster user (mode 700).
make_pg_dir() {
    mkdir -p "$1"
    if is_root; then
        chown "$PG_SYSTEM_USER:" "$1"
    fi
    chmod 700 "$1"
}

# A directory under /tmp must be a real directory that we (or the cluster user) own.
check_tmp_dir() {
    [[ -L "$1" ]] && die "$1 is a symlink; refusing to use it (remove it)"
    [[ -e "$1" ]] || return 0
    [[ -d "$1" ]] || die "$1 exists and is not a directory; remove it"
    [[ -O "$1" ]] && return 0
    if is_root && [[ "$(stat -c %U "$1")" == "$PG_SYSTEM_USER" ]]; then
        return 0
    fi
    die "$1 is owned by $(stat -c %U "$1"); refusing to use it (remove it)"
}

# Decide where the private cluster lives; sets PG_BASE (a physical path the cluster user
# can reach). .dev/pg is either that directory or a symlink to it under /tmp.
setup_pg_base() {
    local link="$DEV/pg" target
    if [[ -L "$link" ]]; then
        target="$(readlink "$link")"
        case "$target" in
        /tmp/passerelle-dev-pg-*) ;;
        *) die "$link is a symlink to an unexpected place ($target); remove it" ;;
        esac
        check_tmp_dir "$target"
        make_pg_dir "$target"
        PG_BASE="$target"
    elif [[ -d "$link" ]]; then
        PG_BASE="$link"
        if is_root && ! runuser -u "$PG_SYSTEM_USER" -- test -w "$PG_BASE"; then
            die "$PG_BASE is not writable by $PG_SYSTEM_USER (repository moved?); run 'make clean' or remove .dev/pg"
        fi
    else
        # Can the cluster user reach .dev/ (every parent directory traversable)?
        # And is the socket path short enough (Unix socket paths are limited to ~107 bytes)?
        local sock_path="$link/sock/.s.PGSQL.$PG_PORT"
        if { ! is_root || runuser -u "$PG_SYSTEM_USER" -- test -x "$DEV"; } && ((${#sock_path} < 100)); then
            make_pg_dir "$link"
            PG_BASE="$link"
        else
            target="/tmp/passerelle-dev-pg-$(repo_hash)"
            check_tmp_dir "$target"
            make_pg_dir "$target"
            ln -s "$target" "$link"
            PG_BASE="$target"
        fi
    fi
    if is_root && [[ "$(stat -c %U "$PG_BASE")" != "$PG_SYSTEM_USER" ]]; then
        chown -R "$PG_SYSTEM_USER:" "$PG_BASE"
    fi
}

# Settings we control live in an included file, rewritten on each start.
write_pg_conf() {
    local conf="$PG_BASE/data/passerelle.conf" tmp
    tmp="$(mktemp "$PG_BASE/.conf.XXXXXX")"
    cat >"$tmp" <<EOF
# Written by scripts/services.sh: private development cluster, do not edit.
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_BASE/sock'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    if ! cmp -s "$tmp" "$conf" 2>/dev/null; then
        mv "$tmp" "$conf"
        is_root && chown "$PG_SYSTEM_USER:" "$conf"
        chmod 600 "$conf"
    else
        rm -f "$tmp"
    fi
}

start_private_pg() {
    ensure_pg_system_user
    mkdir -p "$DEV"
    setup_pg_base

    local data="$PG_BASE/data" ver=""
    if [[ -f "$data/PG_VERSION" ]]; then
        ver="$(cat "$data/PG_VERSION")"
        PG_BIN="$(find_pg_bin "$ver")"
        [[ -n "$PG_BIN" ]] || die "the private cluster in $data is PostgreSQL $ver but /usr/lib/postgresql/$ver/bin is missing; run 'make clean' to start over"
    else
        PG_BIN="$(find_pg_bin)"
        if [[ -z "$PG_BIN" ]]; then
            apt_install "a private PostgreSQL server" postgresql
            PG_BIN="$(find_pg_bin)"
            [[ -n "$PG_BIN" ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
        fi
        make_pg_dir "$PG_BASE/sock"
        rm -rf "$data"
        local locale_args=(--no-locale)
        if have locale && locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
            locale_args=(--locale=C.UTF-8)
        fi
        if ! as_pg_user "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 "${locale_args[@]}" \
            >"$PG_BASE/initdb.log" 2>&1; then
            tail -n 20 "$PG_BASE/initdb.log" >&2 || true
            die "initdb failed (full log: $PG_BASE/initdb.log)"
        fi
        printf "\ninclude_if_exists = 'passerelle.conf'\n" >>"$data/postgresql.conf"
        say "initialized a private PostgreSQL $(cat "$data/PG_VERSION") cluster in $PG_BASE"
    fi
    make_pg_dir "$PG_BASE/sock"
    write_pg_conf

    if ! as_pg_user "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        if ! as_pg_user "$PG_BIN/pg_ctl" -D "$data" -w -t 60 -l "$PG_BASE/log" start >/dev/null 2>&1; then
            tail -n 20 "$PG_BASE/log" >&2 || true
            die "could not start the private PostgreSQL (log: $DEV/pg/log; is port $PG_PORT already in use?)"
        fi
        say "started private PostgreSQL on 127.0.0.1:$PG_PORT"
    fi
    # The port it really listens on (line 4 of postmaster.pid), in case it was started with another.
    local running_port
    running_port="$(sed -n 4p "$data/postmaster.pid" 2>/dev/null || true)"
    [[ "$running_port" =~ ^[0-9]+$ ]] && PG_PORT="$running_port"
    PG_HOST="127.0.0.1"

    local i
    for ((i = 0; i < 60; i++)); do
        "$PG_ISREADY" -q -h "$PG_HOST" -p "$PG_PORT" && return 0
        sleep 0.5
    done
    die "the private PostgreSQL does not answer on $PG_HOST:$PG_PORT (log: $DEV/pg/log)"
}

provision_pg() {
    local out
    if ! out="$(PGOPTIONS='-c client_min_messages=warning' "$PSQL" -X -q -v ON_ERROR_STOP=1 \
        -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres 2>&1 <<SQL
SELECT 'CREATE ROLE $OWNER_ROLE'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$OWNER_ROLE') \gexec
ALTER ROLE $OWNER_ROLE LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS;
SELECT 'CREATE ROLE $APP_ROLE'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_ROLE') \gexec
ALTER ROLE $APP_ROLE LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
SELECT 'CREATE DATABASE $DB_NAME OWNER $OWNER_ROLE'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
ALTER DATABASE $DB_NAME OWNER TO $OWNER_ROLE;
GRANT CONNECT ON DATABASE $DB_NAME TO $APP_ROLE;
\connect $DB_NAME
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO $OWNER_ROLE;
GRANT USAGE ON SCHEMA public TO $APP_ROLE;
SQL
    )"; then
        printf '%s\n' "$out" >&2
        die "provisioning PostgreSQL at $PG_HOST:$PG_PORT as superuser 'postgres' failed"
    fi
}

ensure_postgres() {
    PG_ORIGIN=""
    # A DATABASE_URL that is the one this script wrote (e.g. .dev/env sourced into the shell)
    # does not count as "set": the server behind it may need starting again.
    if [[ -n "${DATABASE_URL:-}" ]] && ! {
        [[ "$DATABASE_URL" == "$(env_file_value DATABASE_URL)" ]] &&
            [[ "$DATABASE_URL" =~ ^postgresql\+asyncpg://$APP_ROLE@(localhost|127\.0\.0\.1):[0-9]+/$DB_NAME$ ]]
    }; then
        DB_URL="$DATABASE_URL"
        DB_OWNER_URL="${DATABASE_OWNER_URL:-}"
        check_given_url postgres DATABASE_URL "$DB_URL"
        if [[ -n "$DB_OWNER_URL" ]]; then
            check_given_url postgres DATABASE_OWNER_URL "$DB_OWNER_URL"
        fi
        PG_ORIGIN="DATABASE_URL from the environment"
        return 0
    fi
    ensure_pg_client
    if [[ "$FORCE_PRIVATE" != "1" ]] && "$PG_ISREADY" -q -h localhost -p 5432; then
        PG_HOST="localhost"
        PG_PORT=5432
        PG_ORIGIN="localhost:5432"
    else
        start_private_pg
        PG_ORIGIN="private, $PG_HOST:$PG_PORT"
    fi
    provision_pg
    DB_URL="postgresql+asyncpg://$APP_ROLE@$PG_HOST:$PG_PORT/$DB_NAME"
    DB_OWNER_URL="postgresql+asyncpg://$OWNER_ROLE@$PG_HOST:$PG_PORT/$DB_NAME"
}

# ---------------------------------------------------------------- Redis

# redis_ping <host> <port>: true when a Redis answers PONG.
redis_ping() {
    if have redis-cli; then
        [[ "$(redis-cli -h "$1" -p "$2" ping 2>/dev/null)" == "PONG" ]]
        return
    fi
    # No redis-cli: speak RESP over bash's /dev/tcp.
    local reply=""
    (
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf 'PING\r\n' >&3
        IFS= read -r -t 2 reply <&3 || exit 1
        [[ "${reply%$'\r'}" == "+PONG" ]]
    ) 2>/dev/null
}

start_private_redis() {
    local dir="$DEV/redis"
    mkdir -p "$dir"
    if redis_ping 127.0.0.1 "$REDIS_PORT"; then
        return 0
    fi
    if ! have redis-server; then
        apt_install "a private Redis" redis-server
        # The Debian package may start its own server on 6379; that is fine, we use ours.
    fi
    rm -f "$dir/redis.pid"
    if ! redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null 2>&1 9>&-; then
        die "could not start redis-server (log: $dir/redis.log)"
    fi
    local i
    for ((i = 0; i < 50; i++)); do
        if redis_ping 127.0.0.1 "$REDIS_PORT"; then
            say "started private Redis on 127.0.0.1:$REDIS_PORT"
            return 0
        fi
        sleep 0.2
    done
    tail -n 20 "$dir/redis.log" >&2 || true
    die "the private Redis does not answer on 127.0.0.1:$REDIS_PORT (is the port in use? log: $dir/redis.log)"
}

ensure_redis() {
    if [[ -n "${REDIS_URL:-}" ]] && ! {
        [[ "$REDIS_URL" == "$(env_file_value REDIS_URL)" ]] &&
            [[ "$REDIS_URL" =~ ^redis://127\.0\.0\.1:(6379|$REDIS_PORT)/0$ ]]
    }; then
        RD_URL="$REDIS_URL"
        check_given_url redis REDIS_URL "$RD_URL"
        REDIS_ORIGIN="REDIS_URL from the environment"
        return 0
    fi
    if [[ "$FORCE_PRIVATE" != "1" ]] && redis_ping 127.0.0.1 6379; then
        RD_URL="redis://127.0.0.1:6379/0"
        REDIS_ORIGIN="127.0.0.1:6379"
    else
        start_private_redis
        RD_URL="redis://127.0.0.1:$REDIS_PORT/0"
        REDIS_ORIGIN="private, 127.0.0.1:$REDIS_PORT"
    fi
}

# ---------------------------------------------------------------- .dev/env

jwt_keys_line() {
    local existing
    existing="$(env_file_raw JWT_PRIVATE_KEYS)"
    if [[ -n "$existing" ]]; then
        printf 'JWT_PRIVATE_KEYS=%s\n' "$existing"
        return 0
    fi
    local cli="$ROOT/.venv/bin/passerelle" value
    if [[ ! -x "$cli" ]]; then
        say "warning: $cli not found (run 'make install'); JWT_PRIVATE_KEYS not generated yet"
        return 0
    fi
    # The URLs are passed in case the CLI's settings insist on them at start-up.
    if ! value="$(DATABASE_URL="$DB_URL" DATABASE_OWNER_URL="$DB_OWNER_URL" REDIS_URL="$RD_URL" \
        "$cli" keys generate 9>&-)"; then
        die "'.venv/bin/passerelle keys generate' failed; cannot generate JWT_PRIVATE_KEYS"
    fi
    value="$(printf '%s' "$value" | tr -d '\r' | sed -e '/^[[:space:]]*$/d')"
    if [[ -z "$value" || "$value" == *$'\n'* || "$value" == *"'"* || "$value" =~ [[:space:]] ]]; then
        die "'passerelle keys generate' must print exactly one line without spaces or single quotes"
    fi
    say "generated JWT_PRIVATE_KEYS"
    printf "JWT_PRIVATE_KEYS='%s'\n" "$value"
}

# KEY=value, single-quoted when the value has characters the shell would interpret.
kv() {
    if [[ "$2" =~ ^[A-Za-z0-9_@%+=:,./?-]*$ ]]; then
        printf '%s=%s\n' "$1" "$2"
    else
        printf "%s='%s'\n" "$1" "${2//\'/\'\\\'\'}"
    fi
}

write_env() {
    mkdir -p "$DEV"
    ENV_TMP="$(mktemp "$DEV/.env.XXXXXX")"
    trap 'rm -f "$ENV_TMP"' EXIT
    local tmp="$ENV_TMP"
    chmod 600 "$tmp"
    {
        echo "# Written by scripts/services.sh. Lines other than the URLs are kept on rewrite."
        kv DATABASE_URL "$DB_URL"
        if [[ -n "$DB_OWNER_URL" ]]; then kv DATABASE_OWNER_URL "$DB_OWNER_URL"; fi
        kv REDIS_URL "$RD_URL"
        jwt_keys_line
        # A Fernet key (32 random bytes, URL-safe base64) for the platforms' tokens at rest.
        [[ -n "$(env_file_raw TOKEN_ENCRYPTION_KEYS)" ]] || kv TOKEN_ENCRYPTION_KEYS \
            "$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
        [[ -n "$(env_file_raw SMTP_HOST)" ]] || echo "SMTP_HOST=127.0.0.1"
        [[ -n "$(env_file_raw SMTP_PORT)" ]] || echo "SMTP_PORT=1025"
        if [[ -f "$ENV_FILE" ]]; then
            grep -vE '^(#|DATABASE_URL=|DATABASE_OWNER_URL=|REDIS_URL=|JWT_PRIVATE_KEYS=)' "$ENV_FILE" |
                grep -vE '^[[:space:]]*$' || true
        fi
    } >"$tmp"
    if cmp -s "$tmp" "$ENV_FILE" 2>/dev/null; then
        rm -f "$tmp"
    else
        mv "$tmp" "$ENV_FILE"
    fi
}

# ---------------------------------------------------------------- stop

stop_private() {
    local data="$DEV/pg/data" bin ver stopped=0
    if [[ -f "$data/PG_VERSION" ]]; then
        PG_BASE="$(cd "$DEV/pg" && pwd -P)"
        data="$PG_BASE/data"
        ver="$(cat "$data/PG_VERSION")"
        bin="$(find_pg_bin "$ver")"
        if [[ -z "$bin" ]]; then
            say "warning: PostgreSQL $ver binaries missing; cannot stop the private cluster"
        elif as_pg_user "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
            as_pg_user "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null ||
                die "could not stop the private PostgreSQL in $data"
            say "stopped private PostgreSQL"
            stopped=1
        fi
    fi
    local pidfile="$DEV/redis/redis.pid" pid i
    if [[ -f "$pidfile" ]]; then
        pid="$(cat "$pidfile")"
        if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
            [[ "$(ps -p "$pid" -o comm= 2>/dev/null)" == redis-server* ]]; then
            kill "$pid"
            for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && die "the private Redis (pid $pid) did not stop"
            say "stopped private Redis"
            stopped=1
        fi
        rm -f "$pidfile"
    fi
    ((stopped)) || say "no private server running"
}

# ---------------------------------------------------------------- main

lock() {
    mkdir -p "$DEV"
    if have flock; then
        exec 9>"$DEV/.lock"
        flock 9
    fi
}

main() {
    case "${1:-up}" in
    up)
        lock
        ensure_postgres
        ensure_redis
        write_env
        say "postgres: $PG_ORIGIN; redis: $REDIS_ORIGIN; settings in .dev/env"
        ;;
    stop)
        [[ -d "$DEV" ]] || exit 0
        lock
        stop_private
        ;;
    *)
        die "usage: $0 [up|stop]"
        ;;
    esac
}

main "$@"
