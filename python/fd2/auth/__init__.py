"""Authentication (API keys, JWTs) and claim-based authorisation, decided per route at compile."""
