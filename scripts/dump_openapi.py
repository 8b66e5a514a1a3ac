"""Write the API's OpenAPI document as JSON: `python scripts/dump_openapi.py PATH`.

Builds the application object and calls `app.openapi()`; nothing connects to PostgreSQL or
Redis (that happens in the lifespan, which does not run here). The settings are placeholders:
the document does not depend on them, so this needs no `.dev/env` and works in a fresh clone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from api.app import create_app
from infra.settings import Settings

PLACEHOLDER_SETTINGS = Settings(
    _env_file=None,
    database_url="postgresql://openapi@localhost/openapi",
    redis_url="redis://localhost:6379/0",
    jwt_private_keys='{"keys": []}',
)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTPUT.json", file=sys.stderr)
        return 2
    document = create_app(PLACEHOLDER_SETTINGS).openapi()
    out = Path(argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
