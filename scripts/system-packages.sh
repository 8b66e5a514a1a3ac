#!/usr/bin/env bash
# Make sure the system packages the Python code needs at run time are installed.
#
#   scripts/system-packages.sh
#
# Today that is spell checking (workflows/checks.py): pyenchant loads the system libenchant-2,
# whose hunspell backend reads the French and US English dictionaries from /usr/share/hunspell.
# They are Debian packages rather than wheels, so `uv sync` cannot provide them.
# And libfaketime (the faketime package), which scripts/test-at.sh preloads to run the tests
# with the clock on another date.
# And Debian's chromium, the browser the end-to-end tests drive through Playwright
# (tests/support/browser.py): the machine's own, kept up to date by apt, never a build that a
# tool downloads (`playwright install` is not part of any recipe).
# And Debian's pgbouncer, which tests/infra/test_pgbouncer.py and the API benchmark start in
# transaction mode in front of the development PostgreSQL (devtools/pgbouncer.py).
#
# When every file is already there this does nothing (no apt, no sudo), so it is cheap to run
# on every `make install`. Otherwise it runs `apt-get install`, through sudo when not root, and
# runs `apt-get update` only if that first install fails (stale or empty package lists).
set -euo pipefail

PACKAGES=(libenchant-2-2 hunspell-fr hunspell-en-us faketime chromium pgbouncer)
DICTIONARIES=(/usr/share/hunspell/fr_FR.dic /usr/share/hunspell/en_US.dic)
# The path tests/support/browser.py launches.
CHROMIUM=/usr/bin/chromium
# The path devtools/pgbouncer.py runs.
PGBOUNCER=/usr/sbin/pgbouncer

say() { printf 'system-packages: %s\n' "$*" >&2; }
die() {
    printf 'system-packages: error: %s\n' "$*" >&2
    exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# The library is looked up by file rather than by package so that a libenchant-2 installed
# some other way (or a newer soname) also counts.
have_libenchant() {
    if have ldconfig && ldconfig -p 2>/dev/null | grep -q 'libenchant-2\.so'; then
        return 0
    fi
    compgen -G '/usr/lib/*/libenchant-2.so*' >/dev/null || compgen -G '/usr/lib/libenchant-2.so*' >/dev/null
}

have_libfaketime() {
    compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || compgen -G '/usr/lib/faketime/libfaketime.so.1' >/dev/null
}

all_present() {
    local dic
    for dic in "${DICTIONARIES[@]}"; do
        [[ -f "$dic" ]] || return 1
    done
    [[ -x "$CHROMIUM" ]] && [[ -x "$PGBOUNCER" ]] && have_libenchant && have_libfaketime
}

apt_get() {
    if [[ "$(id -u)" -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get "$@"
    elif have sudo; then
        sudo DEBIAN_FRONTEND=noninteractive apt-get "$@"
    else
        die "not root and no sudo: install ${PACKAGES[*]} yourself"
    fi
}

main() {
    if all_present; then
        return 0
    fi
    have apt-get || die "missing ${PACKAGES[*]} and no apt-get to install them; install them yourself"
    say "installing ${PACKAGES[*]}"
    if ! apt_get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; then
        say "apt-get install failed; updating the package lists and retrying"
        apt_get update -qq >/dev/null || die "apt-get update failed"
        apt_get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null ||
            die "apt-get install ${PACKAGES[*]} failed"
    fi
    all_present || die "installed ${PACKAGES[*]} but ${DICTIONARIES[*]}, $CHROMIUM, $PGBOUNCER, libenchant-2 or libfaketime is still missing"
    say "ok"
}

main "$@"
