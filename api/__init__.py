"""The HTTP edge: app factory, routers, auth dependencies, errors, middleware."""
