"""The social platforms simulator, one module per platform as in ``social/connectors/``:
``figures`` (the deterministic accounts and posts), ``core`` (requests, tokens, replies and the
``Dialect`` base), one dialect per platform, and ``simulator`` (the server). See
``devtools.platforms.simulator`` for what it speaks."""

from devtools.platforms.figures import METRICS, PLATFORMS, Account, Post
from devtools.platforms.simulator import PlatformSimulator

__all__ = ["METRICS", "PLATFORMS", "Account", "PlatformSimulator", "Post"]
