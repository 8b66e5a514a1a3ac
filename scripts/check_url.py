"""Does the server behind a URL a person gave answer? Used by scripts/services.sh for a
DATABASE_URL, DATABASE_OWNER_URL or REDIS_URL taken from the environment.

    python scripts/check_url.py postgres DATABASE_URL "$DATABASE_URL"
    python scripts/check_url.py redis REDIS_URL "$REDIS_URL"

Silent and exit 0 when it answers; otherwise one line naming the setting, the URL (password
hidden) and the reason, and exit 1. It connects with the drivers the application uses
(asyncpg, redis-py), so a URL that passes here is one the application can use.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg
import redis
from sqlalchemy.engine import make_url

TIMEOUT_SECONDS = 5


def shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(not a URL)"


async def check_postgres(url: str) -> None:
    parsed = make_url(url).set(drivername="postgresql")
    dsn = parsed.render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=TIMEOUT_SECONDS)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def check_redis(url: str) -> None:
    client = redis.Redis.from_url(
        url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()


def reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def main(kind: str, name: str, url: str) -> int:
    try:
        if kind == "postgres":
            asyncio.run(check_postgres(url))
        elif kind == "redis":
            check_redis(url)
        else:
            raise SystemExit(f"usage: {sys.argv[0]} postgres|redis NAME URL")
    except SystemExit:
        raise
    except BaseException as exc:
        print(f"{name} ({shown(url)}) does not answer: {reason(exc)}")
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(f"usage: {sys.argv[0]} postgres|redis NAME URL")
    raise SystemExit(main(*sys.argv[1:]))
