"""Durable asynchronous work on Redis: jobs, their webhooks, and OpenAI's Batch API.

A job is one call of a module endpoint, run later in process through the same route (its steps
apply), with the caller's identity captured when it was submitted. Jobs live on a Redis Stream
read by a consumer group: at-least-once execution, one terminal result per job (written with a
compare-and-set), a job held by a worker that died is claimed again after a visibility timeout.
See docs/jobs.md.
"""
