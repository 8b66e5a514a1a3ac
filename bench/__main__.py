"""`python -m bench [NAME ...]`: run the named benchmarks, or all of them.

Exit status: 0 when every benchmark ran (whatever its figures), 1 when one failed to run,
2 for an unknown name. A benchmark is a module with `run() -> None` that raises on failure.
"""

from __future__ import annotations

import importlib
import sys
import traceback

from bench.common import BenchError

# name -> module; each module has `run()`. Imported lazily so one benchmark's imports
# cannot break another's.
BENCHMARKS: dict[str, str] = {
    "api": "bench.api",
    "budget": "bench.budget",
    "social": "bench.social",
    "publish": "bench.publish",
    "inbox": "bench.inbox",
}


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        print("benchmarks:", ", ".join(BENCHMARKS))
        return 0
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(
            f"bench: unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    failed: list[str] = []
    for name in names:
        try:
            importlib.import_module(BENCHMARKS[name]).run()
        except KeyboardInterrupt:
            print(f"\nbench {name}: interrupted", file=sys.stderr)
            return 130
        except BenchError as exc:
            print(f"\nbench {name}: FAILED: {exc}", file=sys.stderr)
            failed.append(name)
        except Exception:
            traceback.print_exc()
            print(f"\nbench {name}: FAILED (unexpected error above)", file=sys.stderr)
            failed.append(name)
    if failed:
        print(f"bench: failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
