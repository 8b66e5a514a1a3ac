"""Loaded by every Python process that scripts/test-at.sh starts (it is on PYTHONPATH there).

libfaketime 0.9.10 (Debian bookworm) with FAKETIME_DONT_FAKE_MONOTONIC=1 turns Python 3.11's
time.sleep, a clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) call, into EINVAL
(wolfcw/libfaketime#426). Waiting on a lock uses the same real monotonic clock without that
bug, so time.sleep waits on one instead. Nothing else is changed.
"""

import os
import threading
import time

if "libfaketime" in os.environ.get("LD_PRELOAD", ""):

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        threading.Event().wait(seconds)

    time.sleep = _sleep
