"""``python -m devtools.platforms --port N``: the platform simulator in its own process."""

from devtools.platforms.simulator import main

main()
