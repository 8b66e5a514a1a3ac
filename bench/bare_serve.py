"""How every bare baseline server starts: as `main/cli.py serve` does (loop and HTTP left to
uvicorn, no access log, `--workers N` processes), so the baseline differs from the full stack
only in the code under test."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn


def serve(app: Any, description: str, *, import_string: str) -> None:
    """Serve `app`; with --workers above 1, uvicorn imports it in each process by
    `import_string` ("module:attribute"), as `passerelle serve --workers N` does."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        app if args.workers == 1 else import_string,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="auto",
        http="auto",
        proxy_headers=True,
        access_log=False,
        log_config=None,
        log_level="warning",
    )
