"""`python -m bench [NAME ...]`: run the named benchmarks, or all of them.

BENCH_RUNS=N runs each one N times (the machine is shared and noisy) and ends with the median
and the spread of its headline figures; BENCH_PROFILE=1 samples the servers with py-spy.

Exit status: 0 when every benchmark ran (whatever its figures), 1 when one failed to run,
2 for an unknown name. A benchmark is a module with `run() -> None` that raises on failure.
"""

from __future__ import annotations

import importlib
import json
import shutil
import statistics
import sys
import traceback

from bench.common import RESULTS, BenchError, env_int

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
    runs = env_int("BENCH_RUNS", 1)
    for name in names:
        try:
            module = importlib.import_module(BENCHMARKS[name])
            figures: list[dict[str, float]] = []
            for run in range(1, runs + 1):
                if runs > 1:
                    print(f"\n#### bench {name}: run {run} of {runs}", flush=True)
                module.run()
                figures.append(_headline(name, getattr(module, "HEADLINE", ()), run))
            if runs > 1:
                _summarize(name, figures)
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


def _headline(name: str, keys: tuple[str, ...], run: int) -> dict[str, float]:
    """The run's headline figures (keys of its results file, dotted for nested ones: "run.ratio"),
    which is kept as <name>.run<N>.json."""
    path = RESULTS / f"{name}.json"
    shutil.copyfile(path, RESULTS / f"{name}.run{run}.json")
    data = json.loads(path.read_text())
    figures = {}
    for key in keys:
        value = data
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            figures[key] = float(value)
    return figures


def _summarize(name: str, figures: list[dict[str, float]]) -> None:
    print(f"\n== bench {name}: {len(figures)} runs, median (spread min..max) ==")
    for key in figures[0]:
        values = [f[key] for f in figures if key in f]
        print(
            f"   {key}: {statistics.median(values):.3f} ({min(values):.3f}..{max(values):.3f})"
            f"   runs: {', '.join(f'{v:.3f}' for v in values)}"
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
