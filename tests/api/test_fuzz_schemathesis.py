"""Fuzz every operation of the running API with schemathesis, as the owner of an agency.

A real `passerelle serve` on loopback (the suite's settings, a database of its own) and the
schemathesis CLI pointed at its /openapi.json, in two passes with a time budget each: the
stateless phases (explicit examples, coverage of every boundary of the schema, random
fuzzing), then the stateful phase, which follows the OpenAPI links of api/openapi_links.py to
chain created objects into the operations that take their ids. Fixed seed, derandomized.

It passes only with no server error and no response that breaks the document: status code,
content type, headers and body schema. The configuration is tests/support/schemathesis.toml.
To see the counts of a passing run: `pytest tests/api/test_fuzz_schemathesis.py -rP`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import redis

from tests.conftest import TEST_DB
from tests.support.factories import PASSWORD, make_brand, make_client, make_post, new_agency
from tests.support.fuzz import private_database, run_schemathesis, serve, server_errors

CONFIG = Path(__file__).parents[1] / "support" / "schemathesis.toml"
# What the run must prove; the other checks of schemathesis judge API design choices (for
# example that every schema-valid body is accepted), not correctness.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# Seconds of each pass: about three minutes with the server's start.
PASSES = (("stateless", "examples,coverage,fuzzing", 90), ("stateful", "stateful", 60))
# The suite's settings, but no login limit per e-mail: the fuzzer logs in again after each
# POST /v1/auth/logout it sends.
SERVER_SETTINGS = {"LOGIN_RATE_LIMIT_PER_EMAIL": "100000/60"}


async def _seed(base_url: str) -> dict[str, str]:
    """An agency with a client, a brand and a post: list operations then have items."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        agency = await new_agency(client)
        headers = agency.owner.headers
        owned = await make_client(client, headers)
        brand = await make_brand(client, headers, owned["id"])
        await make_post(client, headers, brand["id"])
    return {
        "PASSERELLE_FUZZ_EMAIL": agency.owner.email,
        "PASSERELLE_FUZZ_PASSWORD": PASSWORD,
        "PASSERELLE_FUZZ_TENANT": agency.slug,
    }


def test_schemathesis_finds_no_server_error_and_no_nonconforming_response(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with (
        private_database(f"{TEST_DB}_fuzz") as database_env,
        serve({**database_env, **SERVER_SETTINGS}, log) as server,
    ):
        credentials = asyncio.run(_seed(server.url))
        os.environ.update(credentials)
        try:
            results = [
                run_schemathesis(
                    label,
                    f"{server.url}/openapi.json",
                    CONFIG,
                    tmp_path,
                    phases=phases,
                    max_time=seconds,
                    extra=["--checks", ",".join(CHECKS)],
                )
                for label, phases, seconds in PASSES
            ]
        finally:
            for name in credentials:
                os.environ.pop(name, None)
            # Jobs the server queued belong to its own database: later tests' workers must
            # not find them.
            redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    for result in results:
        print(result.counts())
    failed = [result for result in results if not result.passed]
    assert not failed, "\n\n".join(
        [*(result.summary() for result in results)]
        + [f"--- {result.label}: exit {result.exit_code}\n{result.details()}" for result in failed]
        + [f"--- server errors (log)\n{server_errors(log)}"]
    )
