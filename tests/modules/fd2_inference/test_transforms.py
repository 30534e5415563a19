"""The pure request transforms: validation, manifest defaults, passthrough, base URL derivation."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fd2.serving.errors import BadRequest, ConfigError
from fd2_inference.config import InferenceConfig
from fd2_inference.transforms import (
    Defaults,
    Prepared,
    UpstreamTarget,
    defaults_from,
    display_url,
    prepare_chat,
    prepare_completion,
    prepare_embedding,
    upstream_body,
    upstream_target,
)

FULL = Defaults(
    model="gpt-4o-mini",
    max_tokens=1024,
    temperature=0.2,
    top_p=0.9,
    system_prompt="You are ACME's helpful assistant.",
)
NONE = Defaults()
USER = {"role": "user", "content": "hi"}

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"])
messages = st.lists(
    st.fixed_dictionaries({"role": roles, "content": st.text(max_size=10)}), min_size=1, max_size=6
)
SAMPLING = ("max_tokens", "temperature", "top_p")


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


defaults_strategy = st.builds(
    Defaults,
    model=maybe(st.text(min_size=1, max_size=10)),
    max_tokens=maybe(st.integers(1, 100_000)),
    temperature=maybe(st.floats(0, 2)),
    top_p=maybe(st.floats(0, 1)),
    system_prompt=maybe(st.text(min_size=1, max_size=20)),
)


@st.composite
def chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": draw(messages)}
    if draw(st.booleans()):
        body["model"] = draw(st.text(min_size=1, max_size=10))
    for key in (*SAMPLING, "max_completion_tokens", "n", "user", "stream_options"):
        if draw(st.booleans()):
            body[key] = draw(json_values)
    if draw(st.booleans()):
        body["stream"] = draw(st.booleans())
    return body


# --- defaults apply only where the request does not set them --------------------------------


@given(body=chat_bodies(), defaults=defaults_strategy)
def test_chat_defaults_fill_only_absent_keys(body: dict[str, Any], defaults: Defaults) -> None:
    if "model" not in body and defaults.model is None:
        with pytest.raises(BadRequest):
            prepare_chat(body, defaults)
        return
    before = copy.deepcopy(body)
    prepared = prepare_chat(body, defaults)
    payload = prepared.payload

    assert body == before, "the client's request must not be mutated"
    for key, value in body.items():
        if key != "messages":
            assert payload[key] == value, f"client's {key} was overridden"
    assert payload["model"] == body.get("model", defaults.model)
    if "temperature" not in body:
        assert payload.get("temperature") == defaults.temperature
    if "top_p" not in body:
        assert payload.get("top_p") == defaults.top_p
    if "max_tokens" not in body:
        expected = None if "max_completion_tokens" in body else defaults.max_tokens
        assert payload.get("max_tokens") == expected
    assert prepared.stream is (body.get("stream") is True)


@given(body=chat_bodies())
def test_no_defaults_means_unchanged(body: dict[str, Any]) -> None:
    body.setdefault("model", "m")
    prepared = prepare_chat(body, NONE)
    assert not prepared.changed
    assert prepared.payload is body


def test_chat_defaults_applied_to_a_minimal_request() -> None:
    prepared = prepare_chat({"messages": [USER]}, FULL)
    assert prepared.changed
    assert prepared.payload == {
        "messages": [{"role": "system", "content": FULL.system_prompt}, USER],
        "model": "gpt-4o-mini",
        "max_tokens": 1024,
        "temperature": 0.2,
        "top_p": 0.9,
    }


@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_default_skipped_when_client_limits_tokens(key: str) -> None:
    payload = prepare_chat({"messages": [USER], key: 5}, FULL).payload
    assert payload[key] == 5
    assert ("max_tokens" in payload) is (key == "max_tokens")


def test_explicit_null_is_the_clients_choice() -> None:
    payload = prepare_chat(
        {"model": "x", "messages": [USER], "temperature": None, "top_p": None, "max_tokens": None},
        Defaults(temperature=1.0, top_p=0.5, max_tokens=9),
    ).payload
    assert payload["temperature"] is None
    assert payload["top_p"] is None
    assert payload["max_tokens"] is None


@pytest.mark.parametrize("model", [None, ""])
def test_empty_or_null_model_takes_the_default(model: str | None) -> None:
    payload = prepare_chat({"model": model, "messages": [USER]}, Defaults(model="m1")).payload
    assert payload["model"] == "m1"


def test_completion_defaults_have_no_system_prompt() -> None:
    prepared = prepare_completion({"prompt": "Say hi"}, FULL)
    assert prepared.payload == {
        "prompt": "Say hi",
        "model": "gpt-4o-mini",
        "max_tokens": 1024,
        "temperature": 0.2,
        "top_p": 0.9,
    }


def test_embedding_defaults_are_model_only() -> None:
    prepared = prepare_embedding({"input": ["a", "b"]}, FULL)
    assert prepared.payload == {"input": ["a", "b"], "model": "gpt-4o-mini"}
    assert not prepared.stream
    unchanged = prepare_embedding({"input": "a", "model": "e"}, FULL)
    assert not unchanged.changed


# --- system prompt ----------------------------------------------------------------------------


@given(history=messages, prompt=st.text(min_size=1, max_size=20))
def test_system_prompt_prepended_iff_no_instruction_message(
    history: list[dict[str, Any]], prompt: str
) -> None:
    before = copy.deepcopy(history)
    payload = prepare_chat(
        {"model": "m", "messages": history}, Defaults(system_prompt=prompt)
    ).payload
    has_instructions = any(m["role"] in ("system", "developer") for m in history)
    if has_instructions:
        assert payload["messages"] is history
    else:
        assert payload["messages"] == [{"role": "system", "content": prompt}, *history]
    assert history == before


@pytest.mark.parametrize("role", ["system", "developer"])
def test_system_prompt_kept_out_when_client_instructs(role: str) -> None:
    history = [USER, {"role": role, "content": "be terse"}]
    prepared = prepare_chat({"model": "m", "messages": history}, Defaults(system_prompt="p"))
    assert not prepared.changed
    assert prepared.payload["messages"] == history


def test_empty_manifest_strings_mean_unset() -> None:
    defaults = defaults_from(InferenceConfig(model_name="", system_prompt=""))
    assert defaults.model is None
    assert defaults.system_prompt is None
    full = defaults_from(
        InferenceConfig(model_name="m", system_prompt="p", max_tokens=3, temperature=0, top_p=1)
    )
    assert full == Defaults(model="m", system_prompt="p", max_tokens=3, temperature=0, top_p=1)


# --- original bytes passthrough ---------------------------------------------------------------


@given(body=chat_bodies(), defaults=defaults_strategy)
def test_upstream_body_is_original_bytes_unless_changed(
    body: dict[str, Any], defaults: Defaults
) -> None:
    body.setdefault("model", "m")
    original = orjson.dumps(body, option=orjson.OPT_INDENT_2)
    prepared = prepare_chat(orjson.loads(original), defaults)
    sent = upstream_body(original, prepared)
    if prepared.changed:
        assert orjson.loads(sent) == prepared.payload
    else:
        assert sent is original


def test_upstream_body_refuses_what_cannot_be_reserialised() -> None:
    deep: Any = []
    for _ in range(300):
        deep = [deep]
    prepared = Prepared(
        {"model": "m", "messages": [USER], "tools": deep}, changed=True, stream=False
    )
    with pytest.raises(BadRequest):
        upstream_body(b"{}", prepared)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [USER]}, "model"),
        ({"model": "", "messages": [USER]}, "model"),
        ({"model": None, "messages": [USER]}, "model"),
        ({"model": 4, "messages": [USER]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": {"role": "user"}}, "messages"),
        ({"model": "m", "messages": [USER, "hi"]}, "messages"),
        ({"model": "m", "messages": [USER], "stream": "true"}, "stream"),
        ({"model": "m", "messages": [USER], "stream": 1}, "stream"),
    ],
)
def test_chat_validation(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        prepare_chat(body, NONE)
    assert caught.value.param == param
    assert caught.value.status == 400


def test_stream_null_is_not_streaming() -> None:
    assert prepare_chat({"model": "m", "messages": [USER], "stream": None}, NONE).stream is False
    assert prepare_completion({"model": "m", "prompt": "x", "stream": True}, NONE).stream is True


@pytest.mark.parametrize(
    ("prepare", "body", "param"),
    [
        (prepare_completion, {"model": "m"}, "prompt"),
        (prepare_completion, {"model": "m", "prompt": None}, "prompt"),
        (prepare_completion, {"prompt": "x"}, "model"),
        (prepare_completion, {"model": "m", "prompt": "x", "stream": "yes"}, "stream"),
        (prepare_embedding, {"model": "m"}, "input"),
        (prepare_embedding, {"model": "m", "input": None}, "input"),
        (prepare_embedding, {"input": "x"}, "model"),
    ],
)
def test_completion_and_embedding_validation(
    prepare: Any, body: dict[str, Any], param: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        prepare(body, NONE)
    assert caught.value.param == param


def test_model_default_covers_missing_model() -> None:
    assert prepare_embedding({"input": "x"}, Defaults(model="e")).payload["model"] == "e"


# --- upstream target ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint_url", "base"),
    [
        ("http://127.0.0.1:9100/v1/chat/completions", "http://127.0.0.1:9100/v1"),
        ("http://127.0.0.1:9100/v1/completions", "http://127.0.0.1:9100/v1"),
        ("http://127.0.0.1:9100/v1/embeddings", "http://127.0.0.1:9100/v1"),
        ("http://127.0.0.1:9100/v1/models", "http://127.0.0.1:9100/v1"),
        ("https://api.example.com/v1/chat/completions/", "https://api.example.com/v1"),
        ("  http://h/openai/v1/embeddings ", "http://h/openai/v1"),
    ],
)
def test_an_openai_endpoint_url_gives_the_base_of_every_endpoint(
    endpoint_url: str, base: str
) -> None:
    assert upstream_target(None, endpoint_url) == UpstreamTarget(base, chat_only=False)


@pytest.mark.parametrize(
    "endpoint_url",
    [
        "http://localhost:8000/sas2py/convert",  # the Control Tower's sample
        "https://api.example.com/v1",
        "https://api.example.com/v1/",
        "http://h:9/",
        "https://az.example.com/openai/deployments/gpt/chat?api-version=2024-02-15",
    ],
)
def test_any_other_endpoint_url_is_the_chat_endpoint_itself(endpoint_url: str) -> None:
    assert upstream_target(None, endpoint_url) == UpstreamTarget(endpoint_url, chat_only=True)


def test_primary_endpoint_wins_and_is_taken_as_a_base() -> None:
    assert upstream_target("http://p:1/v1/", "http://other/v1/chat/completions") == UpstreamTarget(
        "http://p:1/v1"
    )
    assert upstream_target("http://p:1/v1/models", None) == UpstreamTarget("http://p:1/v1/models")
    assert upstream_target("", "http://h/v1/embeddings") == UpstreamTarget("http://h/v1")


@pytest.mark.parametrize("endpoint_url", [None, "", "   "])
def test_no_upstream_is_a_config_error(endpoint_url: str | None) -> None:
    with pytest.raises(ConfigError):
        upstream_target(None, endpoint_url)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h/v1",
        "h/v1/chat/completions",
        "/v1/chat/completions",
        "http:///v1",
        "${environments.dev.urls.llm_base_url}/chat/completions",
        "http://h/v1?api-version=1/chat/completions#x",
        "http://h/v1#x",
    ],
)
def test_unusable_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        upstream_target(None, url)


@pytest.mark.parametrize("primary", ["http://h/v1?api-version=1", "http://h/v1#x"])
def test_a_base_url_takes_no_query(primary: str) -> None:
    with pytest.raises(ConfigError):
        upstream_target(primary, None)


def test_url_errors_and_display_hide_credentials() -> None:
    with pytest.raises(ConfigError) as caught:
        upstream_target(None, "gopher://user:hunter22@h/v1")
    assert "hunter22" not in caught.value.message
    assert display_url("http://user:hunter22@h:9/v1") == "http://h:9/v1"
    assert display_url("http://h:9/v1") == "http://h:9/v1"


@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5})?", fullmatch=True),
    prefix=st.from_regex(r"(/[a-z0-9_-]{1,8}){0,3}", fullmatch=True),
    suffix=st.sampled_from(["/chat/completions", "/completions", "/embeddings", "/models"]),
    slash=st.booleans(),
)
def test_base_url_strips_exactly_one_endpoint_suffix(
    host: str, prefix: str, suffix: str, slash: bool
) -> None:
    base = f"https://{host}{prefix}"
    target = upstream_target(None, base + suffix + ("/" if slash else ""))
    assert target == UpstreamTarget(base.rstrip("/"), chat_only=False)


@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5})?", fullmatch=True),
    path=st.from_regex(r"(/[a-z0-9_-]{1,8}){0,3}/?", fullmatch=True),
)
def test_a_url_without_an_endpoint_suffix_is_used_exactly(host: str, path: str) -> None:
    url = f"https://{host}{path}"
    if path.rstrip("/").endswith(("/completions", "/embeddings", "/models")):
        return  # an OpenAI path, covered above
    assert upstream_target(None, url) == UpstreamTarget(url, chat_only=True)
