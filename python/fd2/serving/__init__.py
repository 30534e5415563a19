"""The hot path: the ASGI app, routing, the request and its answers."""
