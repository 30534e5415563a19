"""The `langgraph_workflow` config (the Control Tower's `LangGraphWorkflowModule`), typed.

Top-level fields and defaults are the Control Tower's; it may add fields, so unknown top-level
keys are ignored. Nodes and edges are free-form dicts in the Control Tower's model (they reach fd2
as written), so they are checked strictly here: a misspelt key is a ConfigError, not a node that
silently does something else. Values reached through placeholders can arrive as strings, hence
the lax conversion of numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from fd2.serving.errors import ConfigError

WorkflowType = Literal["sequential", "parallel", "conditional"]
T = TypeVar("T")


class NodeSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    type: Literal["function", "llm"]
    description: str | None = None
    function: str | None = None
    """`function` nodes: a name from the allow-listed registry (fd2_workflows.functions)."""
    inference_module: str | None = None
    """`llm` nodes: the inference module called; the first of `inference_modules` when absent."""
    prompt_template: str | None = None
    config: dict[str, Any] = msgspec.field(default_factory=dict)


class EdgeSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    from_: str = msgspec.field(name="from")
    to: str
    condition: str | dict[str, Any] | None = None
    description: str | None = None


class WorkflowConfig(msgspec.Struct, frozen=True, kw_only=True):
    workflow_name: str
    workflow_type: WorkflowType = "sequential"
    # Bounded so a manifest cannot make set-up (graph checks, compiled templates) expensive.
    nodes: Annotated[list[NodeSpec], msgspec.Meta(max_length=256)] = msgspec.field(
        default_factory=list
    )
    edges: Annotated[list[EdgeSpec], msgspec.Meta(max_length=1024)] = msgspec.field(
        default_factory=list
    )
    state_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    jwt_module: str | None = None
    inference_modules: list[str] = msgspec.field(default_factory=list)
    max_iterations: Annotated[int, msgspec.Meta(ge=1)] = 10
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 300
    enable_checkpointing: bool = False
    retry_on_error: bool = True
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 3
    tracing_enabled: bool = True
    log_intermediate_results: bool = True


def load_config(raw: Mapping[str, Any]) -> WorkflowConfig:
    """Decode a module config; ConfigError names the offending field."""
    try:
        config = msgspec.convert(dict(raw), WorkflowConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"langgraph_workflow config is invalid: {exc}") from None
    if not config.nodes:
        raise ConfigError("langgraph_workflow config has no nodes")
    if config.enable_checkpointing:
        # Asked for and not given would be a silent loss of what the manifest promises.
        raise ConfigError(
            "langgraph_workflow config sets enable_checkpointing: fd2 runs workflows without "
            "checkpoints (set it to false)"
        )
    return config


def convert_options(raw: Mapping[str, Any], kind: type[T], where: str) -> T:
    """A node's `config` as `kind` (strict keys); ConfigError names the node."""
    try:
        return msgspec.convert(dict(raw), kind, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: config is invalid: {exc}") from None
