"""The operator's side of fd2: readiness, metrics and the authenticated /admin endpoints."""
