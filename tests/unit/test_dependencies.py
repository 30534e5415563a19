import pytest

from fd2.control.dependencies import dependency_problems


def problems(graph: dict[str, list[str]], disabled: tuple[str, ...] = ()) -> dict[str, str]:
    statuses = {name: "disabled" if name in disabled else "enabled" for name in graph}
    return dependency_problems(graph, statuses)


def test_a_sound_graph_has_no_problems() -> None:
    assert problems({"auth": [], "chat": ["auth"], "embed": ["auth", "chat"]}) == {}


def test_unknown_names_are_named() -> None:
    found = problems({"chat": ["auth", "ghost"], "auth": []})
    assert found == {"chat": "depends on unknown module(s): ghost"}


@pytest.mark.parametrize(
    ("graph", "member", "cycle"),
    [
        ({"a": ["a"]}, "a", "a -> a"),
        ({"a": ["b"], "b": ["a"]}, "a", "a -> b -> a"),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, "b", "b -> c -> a -> b"),
    ],
)
def test_cycles_are_shown_as_a_path(graph: dict[str, list[str]], member: str, cycle: str) -> None:
    assert problems(graph)[member] == f"dependency cycle: {cycle}"


def test_a_module_depending_on_a_broken_one_is_broken_too_and_others_are_not() -> None:
    found = problems({"a": ["b"], "b": ["a"], "c": ["a"], "d": []})
    assert set(found) == {"a", "b", "c"}
    assert found["c"].startswith("dependency 'a' is unusable (dependency cycle:")


def test_a_disabled_dependency_cannot_be_handed_over() -> None:
    found = problems({"auth": [], "chat": ["auth"]}, disabled=("auth",))
    assert found == {"chat": "depends on module(s) that are not enabled: auth"}
