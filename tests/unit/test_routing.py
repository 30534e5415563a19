import pytest
from hypothesis import given
from hypothesis import strategies as st

from fd2.serving.errors import InvalidRoute, NotFound
from fd2.serving.routing import (
    RouteKey,
    key_from_header,
    key_from_path,
    subdomain_candidates,
    typed_key,
)

NAMES = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")


def test_path_route_splits_project_module_and_endpoint():
    key = key_from_path(b"/acme/chat/v1/chat/completions")
    assert key == RouteKey("acme", "chat", "/v1/chat/completions")


def test_path_without_endpoint_gives_root_path():
    assert key_from_path(b"/acme/chat").path == "/"
    assert key_from_path(b"/acme/chat/").path == "/"


@pytest.mark.parametrize(
    "raw",
    [
        b"/../chat/v1/models",
        b"/acme/../v1/models",
        b"/ac%2Fme/chat/v1/models",
        b"/acme/ch%2fat/v1/models",
        b"//chat/v1/models",
        b"/acme//v1/models",
        b"/" + b"a" * 65 + b"/chat/v1",
        b"/acm\xc3\xa9/chat/v1",
        b"/acme/ch.at/v1",
        b"/acme/ch at/v1",
    ],
)
def test_bad_names_are_rejected_with_400(raw):
    with pytest.raises(InvalidRoute) as info:
        key_from_path(raw)
    assert info.value.status == 400


@pytest.mark.parametrize("raw", [b"/", b"/acme", b"", b"acme/chat/v1"])
def test_paths_that_name_no_module_are_404(raw):
    with pytest.raises(NotFound):
        key_from_path(raw)


@given(NAMES, NAMES, st.from_regex(r"\A(/[a-z0-9._-]{0,12}){0,4}\Z"))
def test_any_valid_names_round_trip(project, module, rest):
    raw = f"/{project}/{module}{rest}".encode()
    key = key_from_path(raw)
    assert (key.project, key.module) == (project, module)
    assert key.path == (rest or "/")


@given(st.binary(max_size=80), st.binary(max_size=20))
def test_arbitrary_bytes_never_escape_the_name_rule(first, second):
    raw = b"/" + first + b"/" + second + b"/v1/models"
    try:
        key = key_from_path(raw)
    except (InvalidRoute, NotFound):
        return
    for name in (key.project, key.module):
        assert 1 <= len(name) <= 64
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in name)
    # Nothing is lost or re-interpreted: the three parts put back together are the raw path.
    assert f"/{key.project}/{key.module}{key.path}".encode("latin-1") == raw


def test_header_route_uses_the_plain_path():
    key = key_from_header(b"acme/chat", b"/v1/chat/completions")
    assert key == RouteKey("acme", "chat", "/v1/chat/completions")


@pytest.mark.parametrize("value", [b"acme", b"acme/", b"/chat", b"acme/chat/x", b"../x", b"a b/c"])
def test_bad_header_is_400(value):
    with pytest.raises(InvalidRoute) as info:
        key_from_header(value, b"/v1/models")
    assert info.value.param == "X-Project-Module"


def test_subdomain_candidates_try_every_dash():
    found = subdomain_candidates(b"my-proj-chat.ai.example.com:8080", b"ai.example.com")
    assert found == [("my", "proj-chat"), ("my-proj", "chat")]


@pytest.mark.parametrize(
    "host",
    [
        b"acme-chat.other.com",
        b"a.acme-chat.ai.example.com",
        b"ai.example.com",
        b"acmechat.ai.example.com",
    ],
)
def test_subdomain_outside_the_base_or_without_dash_gives_nothing(host):
    assert subdomain_candidates(host, b"ai.example.com") == []


def test_subdomain_matching_is_case_insensitive_and_ignores_trailing_dot():
    assert subdomain_candidates(b"Acme-Chat.AI.example.com.", b"ai.example.com") == [
        ("acme", "chat")
    ]


def test_typed_paths_name_their_module_in_the_next_segment() -> None:
    assert typed_key(RouteKey("p", "rag", "/kb/query")) == RouteKey("p", "kb", "/query")
    assert typed_key(RouteKey("p", "workflow", "/summarizer")) == RouteKey("p", "summarizer", "/")
    assert typed_key(RouteKey("p", "models", "/m/v1/embeddings")) == RouteKey(
        "p", "m", "/v1/embeddings"
    )
    assert typed_key(RouteKey("p", "chat", "/kb/query")) is None  # not a prefix
    assert typed_key(RouteKey("p", "rag", "/")) is None
    assert typed_key(RouteKey("p", "rag", "/..%2Fx/query")) is None
