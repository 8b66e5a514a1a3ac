"""Publishing approved posts to the platforms: one publication per target account, published
at its planned time, at most once (see publishing.runner)."""
