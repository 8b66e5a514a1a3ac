"""Spell checking from many threads at once, as the API's thread pool does under load.

Enchant's broker is not thread-safe: before `_BROKER_LOCK`, eight threads asking for their
first speller at the same moment crashed the interpreter (a segmentation fault, or glibc's
`malloc_consolidate(): unaligned fastbin chunk detected` in `passerelle serve`). A crash kills
the process, so the race runs in a child interpreter and the test reads how it ended.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support.walk import ROOT

RACE = textwrap.dedent(
    """
    import threading
    from workflows.checks import Speller

    start = threading.Barrier(8)

    def check(i):
        start.wait()
        for _ in range(5):
            speller = Speller.for_language("fr" if i % 2 else "en")
            speller.check("bonjour")
            speller.suggest("bonjuor")

    threads = [threading.Thread(target=check, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("ok")
    """
)


def test_first_spell_checks_in_eight_threads_at_once_do_not_crash_the_process():
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", RACE], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr[-2000:]
