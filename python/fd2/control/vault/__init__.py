"""Vault KV v2 secret references (`vault:` / `vault://`), read through hvac off the event loop."""
