#!/usr/bin/env bash
# Run the test suite with the process clock moved to another date, so a test that depends on
# today's real date fails today rather than on the day it starts to rot.
#
#   scripts/test-at.sh "2028-02-29 12:00" [pytest arguments...]
#   make test-at DATE="2028-02-29 12:00"
#
# The date is local time in America/Montreal (TEST_AT_TZ to change it), and the clock keeps
# running from there. Needs the settings of .dev/env in the environment (make test-at loads
# them) and libfaketime (Debian's faketime package, see scripts/system-packages.sh).
#
# Only pytest's processes are moved: PostgreSQL and Redis keep the real time, which is why no
# business rule may read the database's now() (business time is infra.clock.utcnow()).
#
# How libfaketime is set up, and why:
#   FAKETIME="@<date>"              start at that date, then tick in real time
#   FAKETIME_DONT_FAKE_MONOTONIC=1  asyncio, asyncpg and thread waits time out on the monotonic
#                                   clock; faked, a lock wait with a timeout never returns
#   FAKETIME_DONT_RESET=1           pytest-xdist workers are child processes: they continue the
#                                   parent's clock instead of each starting again at <date>
#   TZ                              how <date> is read, and the local zone of the processes
#   PYTHONPATH += scripts/faketime-python: a sitecustomize that works around libfaketime's
#                                   broken time.sleep under Python 3.11 (see that file)
# FAKETIME_NO_CACHE is not needed: FAKETIME is fixed for the whole run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    printf 'test-at: error: %s\n' "$*" >&2
    exit 1
}

[[ $# -ge 1 && -n "$1" ]] || die 'usage: scripts/test-at.sh "YYYY-MM-DD HH:MM" [pytest arguments...]'
when_text=$1
shift
zone=${TEST_AT_TZ:-America/Montreal}

find_libfaketime() {
    local candidate
    if command -v dpkg >/dev/null 2>&1; then
        candidate=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketime\.so\.1$' | head -n1 || true)
        [[ -n "$candidate" && -f "$candidate" ]] && {
            echo "$candidate"
            return
        }
    fi
    for candidate in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 \
        /usr/local/lib/faketime/libfaketime.so.1; do
        [[ -f "$candidate" ]] && {
            echo "$candidate"
            return
        }
    done
    return 1
}

lib=$(find_libfaketime) || die "libfaketime not found: run scripts/system-packages.sh (Debian: apt-get install faketime)"
# Normalised (and checked) by date(1) in the target zone: libfaketime wants seconds.
when=$(TZ=$zone date -d "$when_text" '+%Y-%m-%d %H:%M:%S') || die "not a date: $when_text"
[[ -n "${DATABASE_URL:-}" ]] || die "DATABASE_URL is not set: run it through \`make test-at DATE=...\`"

echo "test-at: the clock of the test processes starts at $when $zone" >&2
export TZ=$zone
export FAKETIME="@$when"
export FAKETIME_DONT_FAKE_MONOTONIC=1
export FAKETIME_DONT_RESET=1
export PYTHONPATH="$PWD/scripts/faketime-python${PYTHONPATH:+:$PYTHONPATH}"
export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
exec .venv/bin/pytest -n 2 --dist loadfile "$@"
