"""The response cache's parts: settings, the stored entry, the Redis store, the per-worker
single flight. The step that uses them is `fd2.pipeline.cache` (docs/cache.md)."""
