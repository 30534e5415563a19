"""A job's record: the identity it runs as survives Redis, and the view never shows it."""

from __future__ import annotations

from fd2.auth.identity import Identity
from fd2.jobs.records import identity_from_record, identity_record, job_view, new_id
from fd2.limits.specs import LimitSpec


def test_the_identity_survives_the_record() -> None:
    identity = Identity(
        "key:abc123",
        models=frozenset({"gpt-4o"}),
        endpoints=frozenset({"/v1/chat/completions"}),
        limit_specs=(LimitSpec("k", "requests", 10, 6_000_000),),
    )
    back = identity_from_record(identity_record(identity))
    assert back is not None
    assert back.credential == identity.credential
    assert back.models == identity.models
    assert back.endpoints == identity.endpoints
    assert back.limit_specs == identity.limit_specs
    assert identity_from_record(identity_record(None)) is None


def test_the_view_shows_neither_identity_nor_body() -> None:
    record = {
        "id": "job_1",
        "status": "queued",
        "module": "chat",
        "endpoint": "/v1/chat/completions",
        "created_at": "1",
        "expires_at": "2",
        "attempts": "0",
        "identity": identity_record(Identity("key:secret-key-id")),
        "body": '{"messages": "private"}',
    }
    view = job_view(record)
    assert "key:secret-key-id" not in str(view)
    assert "private" not in str(view)
    assert view["job_id"] == "job_1" and view["webhook"] is None


def test_ids_are_unique_and_prefixed() -> None:
    ids = {new_id("job") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("job_") for i in ids)
