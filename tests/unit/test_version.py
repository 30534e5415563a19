"""`fd2 --version` (python/fd2/version.py): versions, native build info, installed module types."""

import pytest

from fd2 import _native
from fd2.cli.main import main


def test_version_prints_fd2_native_build_and_module_types(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("fd2 ")
    build = _native.build_info()
    assert lines[1].startswith(f"fd2._native {build['version']} ({build['profile']}, opt-level ")
    assert build["rustc"].startswith("rustc ") and build["rustc"] in lines[1]
    assert build["target"] in lines[1]
    assert lines[2].startswith("CPython 3.")
    assert lines[3] == (
        "module types: inference_endpoint, inference_openai, jwt_config, langgraph_workflow, "
        "model_server, rag_service, structured_prompt"
    )


def test_build_info_is_a_fresh_dict_of_strings():
    first = _native.build_info()
    first["version"] = "changed"
    again = _native.build_info()
    assert again["version"] != "changed"
    assert set(again) == {"version", "rustc", "target", "profile", "opt_level", "debug_assertions"}
    assert all(isinstance(value, str) for value in again.values())
    assert again["debug_assertions"] in {"on", "off"}
