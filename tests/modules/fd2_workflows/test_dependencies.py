"""A workflow's `inference_modules` are its dependencies: the form that survives the Control
Tower (which drops a module's `dependencies`)."""

from __future__ import annotations

from types import SimpleNamespace

from fd2.control.dependencies import dependency_names


def test_inference_modules_count_as_dependencies() -> None:
    entry = SimpleNamespace(
        dependencies=["auth"],
        config={"workflow_name": "w", "inference_modules": ["summarize-llm", "", 3, "auth"]},
    )
    assert dependency_names(entry) == ("auth", "summarize-llm")


def test_a_config_without_them_adds_none() -> None:
    assert dependency_names(SimpleNamespace(config={"inference_modules": "not-a-list"})) == ()
