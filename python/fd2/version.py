"""`fd2 --version`: its version, how fd2._native was built, the module types it serves."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Any, NoReturn

from fd2.control.registry import ENTRY_POINT_GROUP


def version_text() -> str:
    """What `fd2 --version` prints (reads package metadata; imports no module class)."""
    from fd2 import __version__, _native

    try:
        installed = version("fd2")
    except PackageNotFoundError:  # run from a source tree that was never installed
        installed = __version__
    build = _native.build_info()
    # Entry-point names only: loading the classes would import every module's dependencies.
    types = sorted({point.name for point in entry_points(group=ENTRY_POINT_GROUP)})
    return "\n".join(
        (
            f"fd2 {installed}",
            f"fd2._native {build['version']} ({build['profile']}, opt-level {build['opt_level']}, "
            f"debug assertions {build['debug_assertions']}; {build['rustc']}; {build['target']})",
            f"{platform.python_implementation()} {platform.python_version()}",
            f"module types: {', '.join(types) or 'none (no fd2.modules entry points installed)'}",
        )
    )


class VersionAction(argparse.Action):
    """`--version` that builds its text only when asked (argparse's own builds it up front)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print versions and build info")

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> NoReturn:
        sys.stdout.write(version_text() + "\n")
        parser.exit()
