"""Micro-benchmark: decoding one project manifest (20 modules, 3 environments) into typed structs.

fd2's `decode_manifest` (msgspec: bytes -> dict -> validated structs, so the format can be told by
its keys) against msgspec decoding straight into the struct in one pass, and against the
standard library's `json.loads`, which only parses (no types, no validation) and so is the floor
any pure-Python decoder would start from. All must agree on the content.
"""

from __future__ import annotations

import json

import msgspec
import pytest
from synthetic_manifest import manifest_bytes

from fd2.control.manifests.decode import decode_manifest
from fd2.control.manifests.models import ProjectManifest

DATA = manifest_bytes()
_ONE_PASS = msgspec.json.Decoder(ProjectManifest)


def fd2_decode(data: bytes) -> object:
    return decode_manifest(data, origin="bench")


def one_pass_decode(data: bytes) -> object:
    return _ONE_PASS.decode(data)


def stdlib_parse_only(data: bytes) -> object:
    return json.loads(data)


def _module_names(decoded: object) -> list[str]:
    if isinstance(decoded, dict):
        return [module["name"] for module in decoded["modules"]]
    assert isinstance(decoded, ProjectManifest)
    return [module.name for module in decoded.modules or []]


@pytest.mark.parametrize(
    "decode",
    [fd2_decode, one_pass_decode, stdlib_parse_only],
    ids=["fd2", "msgspec-one-pass", "stdlib-json-parse-only"],
)
def test_manifest_decode(benchmark, decode) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "manifest decode (20 modules x 3 environments)"
    decoded = benchmark(decode, DATA)
    assert _module_names(decoded) == [f"chat-{i}" for i in range(20)]
    if not isinstance(decoded, dict):
        assert decoded == fd2_decode(DATA)
