"""fd2.cache_keys: canonical JSON and SHA-256 keys, pinned vectors and properties."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jcs_reference import canonical as reference_canonical

from fd2.cache_keys import CACHE_KEY_VERSION, CacheKeyer, CacheKeyError
from fd2.serving.errors import Fd2Error
from fd2_inference import InferenceModule

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "cache_keys.json").read_text("utf-8")
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)
PLAIN = CacheKeyer()


def dumps(value: Any) -> bytes:
    # The stdlib writer: any int size, and \u escapes (surrogate pairs included) for non-ASCII.
    return json.dumps(value).encode()


@pytest.mark.parametrize("case", VECTORS, ids=lambda case: case["label"])
def test_pinned_vectors(case: dict[str, Any]) -> None:
    keyer = CacheKeyer(exclude=case["exclude"], namespace=case["namespace"])
    body = case["body"].encode()
    assert keyer.canonical(body).decode() == case["canonical"]
    prefix = f"{CACHE_KEY_VERSION}\0{case['namespace']}\0".encode()
    expected = hashlib.sha256(prefix + case["canonical"].encode()).hexdigest()
    assert case["key"] == expected  # the documented formula
    assert keyer.key(body) == expected


@settings(max_examples=300)
@given(value=JSON)
def test_matches_the_reference_and_is_idempotent(value: Any) -> None:
    body = dumps(value)
    canonical = PLAIN.canonical(body)
    assert canonical.decode() == reference_canonical(value)
    assert PLAIN.canonical(canonical) == canonical


@settings(max_examples=200)
@given(value=st.dictionaries(st.text(max_size=6), JSON, max_size=8), seed=st.integers(0, 99))
def test_member_order_and_spacing_do_not_matter(value: dict[str, Any], seed: int) -> None:
    items = list(value.items())
    random.Random(seed).shuffle(items)
    spaced = json.dumps(dict(items), indent=2, ensure_ascii=True).encode()
    assert PLAIN.key(spaced) == PLAIN.key(dumps(value))


@settings(max_examples=200)
@given(value=st.dictionaries(st.text(max_size=6), JSON, min_size=1, max_size=6), data=st.data())
def test_a_changed_field_changes_the_key(value: dict[str, Any], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(value)))
    other = data.draw(
        JSON.filter(lambda v: reference_canonical(v) != reference_canonical(value[name]))
    )
    changed = {**value, name: other}
    assert PLAIN.key(dumps(changed)) != PLAIN.key(dumps(value))


def test_equivalent_spellings_share_a_key() -> None:
    a = b'{"model":"m","temperature":1,"x":"\\u00e9\\/"}'
    b = b'{ "x" : "\xc3\xa9/", "temperature" : 1.0e0, "model" : "m" }'
    assert PLAIN.key(a) == PLAIN.key(b)
    assert PLAIN.key(b'{"n":9007199254740993}') != PLAIN.key(b'{"n":9007199254740992}')


def test_excluded_fields() -> None:
    # The inference module's declaration: fields that change delivery, not the answer.
    keyer = CacheKeyer(exclude=sorted(InferenceModule.cache_key_ignores))
    assert keyer.exclude == ["stream", "stream_options", "user"]
    a = b'{"model":"m","stream":true,"user":"a","stream_options":{"include_usage":true}}'
    b = b'{"model":"m","stream":false,"user":"b"}'
    assert keyer.key(a) == keyer.key(b)
    assert keyer.key(b'{"model":"m","metadata":{"user":"a"}}') != keyer.key(
        b'{"model":"m","metadata":{"user":"b"}}'
    )
    assert CacheKeyer(namespace="a").key(b"{}") != CacheKeyer(namespace="b").key(b"{}")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"a":1,"a":2}',
        b"NaN",
        b"1e99999999999",
        b'"\xff"',
        b'"\\ud800"',
        b"[1,]",
        b"1 2",
    ],
)
def test_refused_bodies(body: bytes) -> None:
    with pytest.raises(CacheKeyError):
        PLAIN.key(body)
    assert issubclass(CacheKeyError, Fd2Error)


def test_large_body_is_keyed_like_a_small_one() -> None:
    # Big enough to be canonicalised with the GIL released.
    messages = [{"role": "user", "content": f"message {i} " * 20} for i in range(600)]
    body = orjson.dumps({"model": "gpt-4o", "messages": messages})
    assert len(body) > 128 * 1024
    reordered = orjson.dumps({"messages": messages, "model": "gpt-4o"})
    assert PLAIN.key(body) == PLAIN.key(reordered)
    assert PLAIN.canonical(body).decode() == reference_canonical(orjson.loads(body))
