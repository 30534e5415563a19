"""A route's request pipeline: steps (authenticate, authorise, limits, ...) composed in front of
the module's handler once, when the route is compiled.

Every step has one call shape, `(request, send, call_next)`, and is a small class testable alone.
`compose` binds each step to the next at compile time, so nothing is decided per request, and a
route without steps stores the module's handler itself.
"""

from fd2.pipeline.step import Step, compose

__all__ = ["Step", "compose"]
