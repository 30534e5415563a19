"""The allow-listed functions and the edge conditions."""

from __future__ import annotations

import pytest

from fd2.serving.errors import ConfigError
from fd2_workflows.conditions import Condition
from fd2_workflows.errors import NodeFailed
from fd2_workflows.functions import (
    MAX_ATTEMPTS,
    ExtractJsonOptions,
    JoinOptions,
    SplitOptions,
    combine_results,
    extract_json,
    split_into_chunks,
)


def test_split_overlaps_and_stops_at_the_end() -> None:
    text = "".join(str(i % 10) for i in range(25))
    out = split_into_chunks({"document": text}, SplitOptions(chunk_size=10, chunk_overlap=2), "s")
    assert out["chunks"] == [text[0:10], text[8:18], text[16:25]]
    assert out["metadata"] == {"num_chunks": 3}
    exact = split_into_chunks(
        {"document": "x" * 10}, SplitOptions(chunk_size=10, chunk_overlap=2), "s"
    )
    assert exact["chunks"] == ["x" * 10]  # no trailing chunk made only of overlap
    assert split_into_chunks({"document": ""}, SplitOptions(), "s")["chunks"] == []


def test_split_defaults_are_the_control_towers() -> None:
    options = SplitOptions()
    assert (options.chunk_size, options.chunk_overlap) == (2000, 200)
    with pytest.raises(ValueError, match="smaller"):
        SplitOptions(chunk_size=10, chunk_overlap=10)


def test_combine_results_joins_summaries_into_the_final_summary() -> None:
    assert combine_results({"summaries": ["a", "b"]}, JoinOptions(), "c") == {
        "final_summary": "a\n\nb"
    }


def test_extract_json_finds_the_first_value_in_prose_and_fences() -> None:
    text = 'Verdict:\n```json\n{"needs_improvement": false, "score": 8}\n```'
    assert extract_json({"final_summary": text}, ExtractJsonOptions(), "e") == {
        "needs_improvement": False,
        "score": 8,
    }
    assert extract_json({"v": "x [1, 2] y"}, ExtractJsonOptions(input="v", output="l"), "e") == {
        "l": [1, 2]
    }
    with pytest.raises(NodeFailed, match="holds no JSON"):
        extract_json({"final_summary": "{not json"}, ExtractJsonOptions(), "e")


def test_extract_json_tries_a_bounded_number_of_openings() -> None:
    # Each failed opening may read to the end: trying all of them would cost the square of the
    # text's length. Past MAX_ATTEMPTS openings the text holds no JSON as far as fd2 looks.
    late = "[x " * MAX_ATTEMPTS + '{"found": 1}'
    with pytest.raises(NodeFailed, match="holds no JSON"):
        extract_json({"v": late}, ExtractJsonOptions(input="v", output="o"), "e")
    early = "[x " * (MAX_ATTEMPTS - 1) + '{"found": 1}'
    assert extract_json({"v": early}, ExtractJsonOptions(input="v", output="o"), "e") == {
        "o": {"found": 1}
    }


@pytest.mark.parametrize("text", ["[" * 100_000, "[" * 300 + "]" * 300])
def test_extract_json_of_deep_nesting_is_a_node_failure(text: str) -> None:
    with pytest.raises(NodeFailed):
        extract_json({"v": text}, ExtractJsonOptions(input="v", output="o"), "e")


def test_conditions() -> None:
    assert Condition("needs_improvement", "e").holds({"needs_improvement": True})
    assert not Condition("needs_improvement", "e").holds({})
    assert Condition("!done", "e").holds({"done": False})
    assert Condition({"field": "n", "op": "lt", "value": 3}, "e").holds({"n": 2})
    assert not Condition({"field": "n", "op": "lt", "value": 3}, "e").holds({"n": "x"})
    assert Condition({"field": "tags", "op": "contains", "value": "a"}, "e").holds({"tags": ["a"]})


@pytest.mark.parametrize(
    "raw",
    ["a.b", "__import__('os')", {"field": "n", "op": "exec"}, {"field": "n", "code": "x"}],
)
def test_conditions_are_data_not_code(raw: object) -> None:
    with pytest.raises(ConfigError):
        Condition(raw, "edge 0")  # type: ignore[arg-type]
