"""Workflow configs for the module tests, and a model that answers at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from fd2_workflows.config import load_config
from fd2_workflows.graph import Graph, compile_graph
from fd2_workflows.state import StateSchema


def build(**config: Any) -> tuple[Graph, StateSchema]:
    modules = config.pop("modules", None)
    parsed = load_config({"workflow_name": "w", **config})
    schema = StateSchema(parsed.state_schema)
    modules = modules or parsed.inference_modules or ["llm"]
    return compile_graph(parsed, schema, modules), schema


def fn(node_id: str, function: str, **options: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "function", "function": function, "config": options}


def llm(node_id: str, template: str, **options: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "llm",
        "inference_module": "llm",
        "prompt_template": template,
        "config": options,
    }


class Model:
    """Answers each prompt with `"<prompt>!"`, recording the calls and the most at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.prompts: list[str] = []
        self.bodies: list[Mapping[str, Any]] = []
        self.delay = delay
        self.running = 0
        self.most = 0

    async def __call__(self, node: str, module: str, body: Mapping[str, Any]) -> str:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        prompt = body["messages"][-1]["content"]
        self.prompts.append(prompt)
        self.bodies.append(body)
        return prompt + "!"
