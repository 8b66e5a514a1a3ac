"""The heap a process starts with, kept out of the garbage collector's way."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Once a process has imported and built what it serves with (the app's routes and
    models, pydantic's validators, SQLAlchemy's mappers: hundreds of thousands of objects that
    live as long as it does), move them out of the collector's generations. The cyclic
    collector otherwise walks them all again on every full collection, which a busy process
    triggers often; `gc.freeze` is the standard library's way to say they are permanent (and
    keeps their pages shared after a fork)."""
    gc.collect()
    gc.freeze()
