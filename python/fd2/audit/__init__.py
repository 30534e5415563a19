"""The audit trail: one record per request, written off the hot path to a JSON Lines file and
a bounded Redis Stream (docs/privacy.md). The step is `fd2.pipeline.audit`."""
