"""fd2._native.presented_credential against the Python reference it replaced, on hostile and
random headers: the same credential, or the same refusal."""

from __future__ import annotations

import random
import re

import pytest

from fd2._native import presented_credential as native
from fd2.auth.credentials import presented_credential
from fd2.serving.errors import Unauthorized

_TOKEN_CHARS = re.compile(rb"[\x21-\x7e]+")


def reference(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The former Python search (fd2 before the native one), kept as the specification."""
    found: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, rest = value.partition(b" ")
            if scheme.lower() != b"bearer":
                raise ValueError
            candidate = rest.strip(b" ")
        elif name in (b"api-key", b"x-api-key"):
            candidate = value.strip(b" ")
        else:
            continue
        if found is not None and candidate != found:
            raise ValueError
        found = candidate
    if found is None:
        return None
    if len(found) > 16 * 1024 or not _TOKEN_CHARS.fullmatch(found):
        raise ValueError
    return found.decode("ascii")


def outcome(search, headers):  # type: ignore[no-untyped-def]
    try:
        return search(headers)
    except ValueError:
        return ValueError


PIECES = [b"Bearer", b"bearer", b"BEARER", b"Basic", b" ", b"  ", b"fd2_k", b"k2", b"a.b.c"]
PIECES += [b"\r\n", b"\x00", b"\xc3\xa9", b"\t", b"\x7f", b"", b"x" * 16_384, b"=", b"Bearer "]
NAMES = [b"authorization", b"api-key", b"x-api-key", b"host", b"Authorization", b"api_key"]


def test_the_native_search_agrees_with_the_reference_on_random_headers() -> None:
    rng = random.Random(29)
    for _ in range(20_000):
        headers = [
            (rng.choice(NAMES), b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4))))
            for _ in range(rng.randint(0, 4))
        ]
        assert outcome(native, headers) == outcome(reference, headers), headers


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"authorization", b"Bearer fd2_abc")], "fd2_abc"),
        ([(b"api-key", b"  fd2_abc ")], "fd2_abc"),
        ([(b"host", b"x")], None),
        ([(b"authorization", b"Bearer " + b"k" * 16_384)], "k" * 16_384),
    ],
)
def test_credentials_are_found(headers, expected) -> None:  # type: ignore[no-untyped-def]
    assert presented_credential({"headers": headers}) == expected


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Basic Zm9v")],
        [(b"authorization", b"Bearer a\r\nb")],
        [(b"api-key", b"k1"), (b"x-api-key", b"k2")],
        [(b"authorization", b"Bearer " + b"k" * 16_385)],
        [(b"x-api-key", b"caf\xc3\xa9")],
    ],
)
def test_malformed_credentials_are_401(headers) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unauthorized):
        presented_credential({"headers": headers})
