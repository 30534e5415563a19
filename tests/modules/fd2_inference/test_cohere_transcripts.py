"""The Cohere conformance transcripts, replayed against the provider alone (see
test_gemini_transcripts, whose replay this uses)."""

from __future__ import annotations

import pytest

from .test_gemini_transcripts import (
    ERRORS,
    REQUESTS,
    check_chat,
    check_embeddings,
    check_error,
)


@pytest.mark.parametrize("scenario", sorted(REQUESTS))
def test_chat(scenario: str) -> None:
    check_chat("cohere", scenario)


def test_embeddings() -> None:
    check_embeddings("cohere")


@pytest.mark.parametrize("scenario", sorted(ERRORS))
def test_errors(scenario: str) -> None:
    check_error("cohere", scenario)
