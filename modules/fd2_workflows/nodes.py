"""The two node kinds, compiled from their manifest entries: `function` and `llm`.

A node reads the state (never changes it) and returns the fields it writes; the executor merges
them. `llm` nodes render their prompt template and ask their inference module; with
`config.parallel` they do so once per item of a list field (the chunks), at most `batch_size` at
a time, and write the answers as a list in the items' order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any, Protocol

import msgspec

from fd2.serving.errors import ConfigError
from fd2_workflows.concurrency import all_or_first_error
from fd2_workflows.config import NodeSpec, convert_options
from fd2_workflows.errors import NodeFailed, TooManyItems
from fd2_workflows.functions import FUNCTIONS, Function, Updates
from fd2_workflows.llm import ModelCaller
from fd2_workflows.state import METADATA, StateSchema
from fd2_workflows.templates import PromptTemplate

# The earlier front door's fields for the summarizer: a parallel node maps `chunks`, one item
# at a time named `chunk`, into `summaries`; a single call writes `final_summary`.
_PARALLEL_OUTPUT = "summaries"
_SINGLE_OUTPUT = "final_summary"
_INPUT_ALIAS = "input"
"""`{input}` in a template is the `document` unless the state has an `input` field."""


class LlmOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    parallel: bool = False
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=64)] = 5
    max_items: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1_000
    """At most this many items (one model call each) in one run: a huge input is refused with a
    400 rather than turned into thousands of calls."""
    over: str = "chunks"
    item: str = "chunk"
    output: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None


class Node(Protocol):
    id: str
    writes: tuple[str, ...] | None

    async def run(self, state: Mapping[str, Any], call_model: ModelCaller) -> Updates: ...


class FunctionNode:
    def __init__(self, spec: NodeSpec, schema: StateSchema) -> None:
        where = f"node {spec.id!r}"
        if spec.function is None:
            raise ConfigError(f"{where}: a function node names its function")
        function = FUNCTIONS.get(spec.function)
        if function is None:
            raise ConfigError(
                f"{where}: unknown function {spec.function!r} "
                f"(allowed: {', '.join(sorted(FUNCTIONS))})"
            )
        self.id = spec.id
        self._function: Function = function
        try:
            self._options = convert_options(spec.config, function.options, where)
        except ValueError as exc:  # __post_init__ checks across options
            raise ConfigError(f"{where}: config is invalid: {exc}") from None
        self.writes = function.writes(self._options)
        self._schema = schema

    async def run(self, state: Mapping[str, Any], call_model: ModelCaller) -> Updates:
        updates = self._function.run(state, self._options, self.id)
        if self.writes is None:  # writes what its input holds: only the declared fields
            updates = {
                name: value
                for name, value in updates.items()
                if name != METADATA and self._schema.declares(name)
            }
        return updates


class LlmNode:
    def __init__(self, spec: NodeSpec, schema: StateSchema, default_module: str | None) -> None:
        where = f"node {spec.id!r}"
        module = spec.inference_module or default_module
        if not module:
            raise ConfigError(f"{where}: an llm node names its inference_module")
        if spec.prompt_template is None:
            raise ConfigError(f"{where}: an llm node needs a prompt_template")
        options = convert_options(spec.config, LlmOptions, where)
        self.id = spec.id
        self.module = module
        self._options = options
        self._template = PromptTemplate(spec.prompt_template, where)
        output = options.output or (_PARALLEL_OUTPUT if options.parallel else _SINGLE_OUTPUT)
        self.writes: tuple[str, ...] | None = (output,)
        self._output = output
        known = {options.item} if options.parallel else set()
        if not schema.open:
            known |= set(schema.fields) | {_INPUT_ALIAS}
            unknown = sorted(self._template.fields - known)
            if unknown:
                raise ConfigError(
                    f"{where}: prompt_template names {', '.join(unknown)}, "
                    "which state_schema does not declare"
                )
            if options.parallel and not schema.declares(options.over):
                raise ConfigError(f"{where}: 'over' names {options.over!r}, not in state_schema")
        self._base = _request_base(options)

    async def run(self, state: Mapping[str, Any], call_model: ModelCaller) -> Updates:
        values = dict(state)
        if _INPUT_ALIAS not in values:
            values[_INPUT_ALIAS] = state.get("document", "")
        if not self._options.parallel:
            return {self._output: await self._ask(values, call_model)}
        items = state.get(self._options.over)
        if not isinstance(items, list):
            raise NodeFailed(self.id, f"{self._options.over!r} is not a list")
        if len(items) > self._options.max_items:
            raise TooManyItems(self.id, len(items), self._options.max_items)
        gate = asyncio.Semaphore(self._options.batch_size)

        async def one(item: Any) -> str:
            async with gate:
                return await self._ask({**values, self._options.item: item}, call_model)

        return {self._output: await all_or_first_error([one(item) for item in items])}

    async def _ask(self, values: Mapping[str, Any], call_model: ModelCaller) -> str:
        prompt = self._template.render(values)
        messages: list[dict[str, str]] = []
        if self._options.system_prompt is not None:
            messages.append({"role": "system", "content": self._options.system_prompt})
        messages.append({"role": "user", "content": prompt})
        return await call_model(self.id, self.module, {**self._base, "messages": messages})


def _request_base(options: LlmOptions) -> dict[str, Any]:
    """The fixed part of each chat request; the inference module fills what is left out."""
    base: dict[str, Any] = {}
    for name in ("model", "max_tokens", "temperature", "top_p"):
        value = getattr(options, name)
        if value is not None:
            base[name] = value
    return base


def compile_node(spec: NodeSpec, schema: StateSchema, default_module: str | None) -> Node:
    if spec.type == "function":
        return FunctionNode(spec, schema)
    return LlmNode(spec, schema, default_module)
