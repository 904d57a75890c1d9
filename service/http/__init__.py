"""The web layer: app factory and lifespan, routes, parsing, middleware, SSE, OpenAPI."""
