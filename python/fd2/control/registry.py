"""Which Python class serves a `module_type`: installed entry points and allowed implementations.

Built-in modules and installed packages register classes under the `fd2.modules` entry-point group
(name = module_type). A manifest's `runtime.implementation` may name a class directly, but only
inside an allowed package, so a manifest can never make fd2 import arbitrary code.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points

from fd2.control.manifests.models import JWT_CONFIG_MODULE_TYPE
from fd2.module import Module
from fd2.serving.errors import ConfigError

ENTRY_POINT_GROUP = "fd2.modules"
# The module types fd2's own distribution serves: missing, the install itself is incomplete.
_BUILT_IN_TYPES = frozenset(
    {
        "inference_endpoint",
        "inference_openai",
        JWT_CONFIG_MODULE_TYPE,
        "rag_service",
        "model_server",
        "langgraph_workflow",
        "structured_prompt",
    }
)
_log = logging.getLogger("fd2.registry")
# Implementations that moved: a manifest written for an older fd2 keeps working.
_RENAMED_IMPLEMENTATIONS = {
    "inference_openai.InferenceOpenAIModule": "fd2_inference.InferenceModule"
}


class ModuleRegistry:
    def __init__(
        self,
        *,
        allowed_packages: Iterable[str] = (),
        classes: Mapping[str, type[Module]] | None = None,
    ) -> None:
        self._explicit_allowed = tuple(allowed_packages)
        self._classes: dict[str, type[Module]] | None = dict(classes) if classes else None

    def _by_type(self) -> dict[str, type[Module]]:
        if self._classes is None:
            self._classes = {}
            for point in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    cls = point.load()
                except Exception as exc:  # a broken plugin must not take the gateway down
                    _log.error(
                        "module entry point %s failed to load: %s", point.name, type(exc).__name__
                    )
                    continue
                if isinstance(cls, type) and issubclass(cls, Module):
                    self._classes[point.name] = cls
                else:
                    _log.error("module entry point %s is not an fd2 Module class", point.name)
        return self._classes

    @property
    def allowed_packages(self) -> tuple[str, ...]:
        builtin = {cls.__module__.split(".")[0] for cls in self._by_type().values()}
        return tuple(sorted(builtin | set(self._explicit_allowed)))

    def resolve(self, module_type: str, implementation: str | None) -> type[Module] | None:
        """The class for a module; None when fd2 does not serve this module type."""
        if implementation:
            implementation = _RENAMED_IMPLEMENTATIONS.get(implementation, implementation)
            return self._import_allowed(implementation)
        return self._by_type().get(module_type)

    @staticmethod
    def install_hint(module_type: str) -> str:
        """What to install so that a module type nothing here serves gets served."""
        if module_type in _BUILT_IN_TYPES:
            return "it is built into fd2: reinstall the fd2 package (pip install fd2)"
        return (
            f"install the package that provides it (one registering {module_type!r} in the "
            f"{ENTRY_POINT_GROUP!r} entry-point group)"
        )

    def _import_allowed(self, implementation: str) -> type[Module]:
        module_path, sep, attribute = implementation.replace(":", ".").rpartition(".")
        if not sep or not module_path or not attribute:
            raise ConfigError(
                f"runtime.implementation {implementation!r} is not a dotted class path"
            )
        allowed = self.allowed_packages
        if not any(module_path == pkg or module_path.startswith(pkg + ".") for pkg in allowed):
            raise ConfigError(
                f"runtime.implementation {implementation!r} is outside the allowed packages "
                f"({', '.join(allowed) or 'none'})"
            )
        try:
            cls = getattr(importlib.import_module(module_path), attribute)
        except (ImportError, AttributeError):
            raise ConfigError(
                f"runtime.implementation {implementation!r} cannot be imported"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise ConfigError(
                f"runtime.implementation {implementation!r} is not an fd2 Module class"
            )
        return cls
