"""requirements/*.txt (the lock the image and CI install from) still covers pyproject.toml.

Offline and quick: every dependency fd2 declares is pinned, at a version its range allows. When
this fails, run `make lock` and commit requirements/.
"""

import itertools
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(name: str) -> dict[str, Version]:
    text = (REPO / "requirements" / name).read_text()
    return {canonicalize_name(m[1]): Version(m[2]) for m in _PIN.finditer(text)}


def unpinned(declared: list[str], locked: dict[str, Version]) -> list[str]:
    problems = []
    for line in declared:
        requirement = Requirement(line)
        version = locked.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name}: not in the lock")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}: locked {version}, wants {requirement.specifier}")
    return problems


def test_runtime_lock_pins_every_dependency_with_hashes():
    assert unpinned(PYPROJECT["project"]["dependencies"], pins("runtime.txt")) == []
    # The image installs it with --require-hashes: every pin needs its hashes.
    text = (REPO / "requirements" / "runtime.txt").read_text()
    starts = [m.start() for m in _PIN.finditer(text)] + [len(text)]
    for start, end in itertools.pairwise(starts):
        assert "--hash=sha256:" in text[start:end], text[start:end]


def test_dev_lock_pins_every_dev_tool_within_the_runtime_pins():
    dev = pins("dev.txt")
    assert unpinned(PYPROJECT["project"]["optional-dependencies"]["dev"], dev) == []
    runtime = pins("runtime.txt")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_build_lock_matches_the_build_system():
    assert unpinned(PYPROJECT["build-system"]["requires"], pins("build.txt")) == []
