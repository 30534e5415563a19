"""Request ids: a sane client id is kept; fd2's own are unique, also across a fork."""

from __future__ import annotations

import os
import re

from fd2.auth.api_keys import KeyHasher
from fd2.serving.request_ids import request_id_from


def test_a_sane_client_id_is_kept_and_a_bad_one_replaced() -> None:
    assert request_id_from(b"req-123") == b"req-123"
    made = request_id_from(b"bad id\r\nx")
    assert re.fullmatch(rb"[0-9a-f]{32}", made)


def test_made_ids_are_unique_over_several_batches() -> None:
    made = [request_id_from(None) for _ in range(2_000)]  # several batches of 256
    assert len(set(made)) == len(made)
    assert all(re.fullmatch(rb"[0-9a-f]{32}", one) for one in made)


def test_a_forked_worker_does_not_repeat_its_parents_ids() -> None:
    request_id_from(None)  # the parent holds a batch now
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(write_end, b"".join(request_id_from(None) for _ in range(8)))
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    in_child = os.read(read_end, 4096)
    os.close(read_end)
    in_parent = b"".join(request_id_from(None) for _ in range(8))
    assert len(in_child) == 8 * 32
    assert {in_child[i : i + 32] for i in range(0, 256, 32)}.isdisjoint(
        {in_parent[i : i + 32] for i in range(0, 256, 32)}
    )


def test_the_key_hasher_never_shows_its_pepper() -> None:
    hasher = KeyHasher(b"very-secret-pepper")
    assert "very-secret-pepper" not in repr(hasher)
    assert "very-secret-pepper" not in repr(hasher._keyed)
