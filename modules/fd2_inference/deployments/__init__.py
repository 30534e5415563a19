"""Deployments: model aliases over several upstream targets, chosen per request by a strategy,
with fallbacks, a retry budget, circuit breakers and hedging (docs/routing.md)."""
