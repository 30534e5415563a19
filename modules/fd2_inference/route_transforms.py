"""Pure request transforms of an APISIX route: ai-prompt-template, then ai-proxy's options.

`ai-prompt-template`: the request names a `template_name` and carries the template's variables
as top-level fields, as APISIX documents; the template's model and messages replace the
request's, its `{{variable}}` placeholders filled with those fields' values (as text: APISIX's
renderer would also HTML-escape them, fd2 does not). Other request fields (`stream`,
`temperature`, ...) are kept. `ai-proxy`'s `options.model` and other options overwrite the
request's fields, as APISIX's driver does.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from fd2.control.gateway.route import GatewayRoute, PromptTemplate
from fd2.serving.errors import BadRequest
from fd2_inference.transforms import Defaults, Prepared, prepare_chat

_PLACEHOLDER: Final = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def prepare_route_chat(body: dict[str, Any], defaults: Defaults, route: GatewayRoute) -> Prepared:
    """A chat request as the route sends it upstream (validated, defaults applied)."""
    changed = False
    if route.templates:
        body = apply_template(body, route.templates)
        changed = True
    prepared = prepare_chat(body, defaults)
    forced: dict[str, Any] = dict(route.body_options)
    if route.model is not None:
        forced["model"] = route.model
    if forced:
        return Prepared({**prepared.payload, **forced}, changed=True, stream=prepared.stream)
    if changed and not prepared.changed:
        return Prepared(prepared.payload, changed=True, stream=prepared.stream)
    return prepared


def apply_template(body: dict[str, Any], templates: tuple[PromptTemplate, ...]) -> dict[str, Any]:
    name = body.get("template_name")
    if name is None:
        raise BadRequest(
            "'template_name' is required: this endpoint fills a prompt template.",
            param="template_name",
        )
    if not isinstance(name, str):
        raise BadRequest("'template_name' must be a string.", param="template_name")
    template = next((t for t in templates if t.name == name), None)
    if template is None:
        known = ", ".join(repr(t.name) for t in templates)
        raise BadRequest(
            f"Template {name!r} is not configured (templates: {known}).", param="template_name"
        )
    missing = sorted(variable for variable in template.variables if variable not in body)
    if missing:
        raise BadRequest(
            f"Template {name!r} needs the field(s) {', '.join(missing)}.", param=missing[0]
        )
    used = {"template_name", *template.variables}
    out = {key: value for key, value in body.items() if key not in used}
    if template.messages:
        out["messages"] = [
            {"role": role, "content": _fill(content, body)} for role, content in template.messages
        ]
    if template.model is not None:
        out["model"] = _fill(template.model, body)
    return out


def _fill(text: str, values: dict[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda found: _as_text(values[found.group(1)]), text)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        raise BadRequest("A template variable is nested too deeply.") from None
