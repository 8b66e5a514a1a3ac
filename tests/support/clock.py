"""Test control of the application clock.

Business rules read `infra.clock.utcnow()`; time-machine moves the whole process's clock
(`datetime.now`, `time.time`), so the application, JWT expiry checks and arq's scheduling agree
on the time a test sets. The database's own `now()` is not moved: no business rule reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine


class Clock:
    def __init__(self) -> None:
        self._travel: time_machine.travel | None = None
        self._coordinates: time_machine.Coordinates | None = None

    def set(self, when: datetime, *, tick: bool = True) -> datetime:
        """Move to `when` (aware); the clock keeps running from there unless tick=False."""
        if when.tzinfo is None:
            raise ValueError("set the clock with an aware datetime")
        self.stop()
        self._travel = time_machine.travel(when, tick=tick)
        self._coordinates = self._travel.start()
        return when

    def advance(self, delta: timedelta) -> None:
        if self._coordinates is None:
            self.set(datetime.now(UTC))
        assert self._coordinates is not None
        self._coordinates.shift(delta)

    def stop(self) -> None:
        if self._travel is not None:
            self._travel.stop()
            self._travel = None
            self._coordinates = None
