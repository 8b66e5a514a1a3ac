"""How every bare baseline server starts: as `main/cli.py serve` does (one worker, loop and
HTTP left to uvicorn, no access log), so the baseline differs from the full stack only in the
code under test."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn


def serve(app: Any, description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        loop="auto",
        http="auto",
        proxy_headers=True,
        access_log=False,
        log_config=None,
        log_level="warning",
    )
