"""What a client may post to the token endpoint, and what fd2 sends the JWT service for it."""

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fd2.auth.token_contract import (
    KeyNotAllowed,
    Login,
    check_service_answer,
    parse_login,
    service_request,
    token_settings,
)
from fd2.control.secrets import Secret
from fd2.serving.errors import BadRequest, ConfigError, UpstreamError

KEY = bytes(range(32))
LOGIN = {"username": "alice", "password": "wonderland"}
CLAIMS = {
    "static": {"environment": "development", "models": ["gpt-4o-mini"], "rate_limit": 100},
    "dynamic": {"quota": {"type": "function", "module": "claims.quota", "function": "f"}},
}


def settings(**config):
    return token_settings(
        {"service_url": "http://jwt:5000/", **config}, project="acme", environment="development"
    )


def sent(login=LOGIN, claims=CLAIMS, **config) -> dict:
    chosen = settings(**config)
    return orjson.loads(service_request(parse_login(login, chosen), chosen, claims))


def test_the_service_gets_the_login_and_the_modules_claims():
    body = sent(id="acme-jwt", owner="team", algorithm="HS256", secret_key=Secret("s" * 32))
    assert body == {
        "username": "alice",
        "password": "wonderland",
        "api_key_config": {
            "id": "acme-jwt",
            "owner": "team",
            "claims": {
                "static": {"project": "acme", **CLAIMS["static"]},
                "dynamic": CLAIMS["dynamic"],
            },
        },
    }
    assert settings().service_url == "http://jwt:5000/token"


def test_issuer_and_audience_become_claims_unless_the_module_sets_them():
    static = sent(issuer="acme-jwt", audience="fd2")["api_key_config"]["claims"]["static"]
    assert (static["iss"], static["aud"]) == ("acme-jwt", "fd2")
    claims = {"static": {"project": "elsewhere", "environment": "prod", "iss": "mine"}}
    static = sent(claims=claims, issuer="acme-jwt")["api_key_config"]["claims"]["static"]
    assert static == {"project": "elsewhere", "environment": "prod", "iss": "mine"}


def test_no_claims_still_names_the_route():
    # An empty api_key_config would make the service fall back to its base key's claims.
    assert sent(claims=None)["api_key_config"] == {
        "claims": {"static": {"project": "acme", "environment": "development"}}
    }


def test_secrets_reached_in_claims_and_metadata_are_sent_as_values():
    claims = {"static": {"groq_api_key": Secret("gsk-123")}}
    body = sent(claims=claims, metadata={"token": Secret("m-456")})
    assert body["api_key_config"]["claims"]["static"]["groq_api_key"] == "gsk-123"
    assert body["api_key_config"]["metadata"] == {"token": "m-456"}


@pytest.mark.parametrize(
    ("claims", "path"),
    [
        ({"static": {"type": "access"}}, "config.claims.static.type"),
        ({"static": {"exp": 9999999999}}, "config.claims.static.exp"),
        ({"static": {"sub": "root"}}, "config.claims.static.sub"),
        ({"dynamic": {"fresh": {"type": "function"}}}, "config.claims.dynamic.fresh"),
        (
            {"dynamic": {"c": {"type": "formula", "formulas": {"nbf": "0"}}}},
            "config.claims.dynamic.c.formulas.nbf",
        ),
    ],
)
def test_claims_that_would_override_the_services_own_are_refused(claims, path):
    with pytest.raises(ConfigError, match=path.replace(".", r"\.")):
        sent(claims=claims)


@pytest.mark.parametrize("claims", ["text", {"static": ["a"]}, {"dynamic": 5}])
def test_claims_of_the_wrong_shape_are_refused(claims):
    with pytest.raises(ConfigError):
        sent(claims=claims)


def test_jwe_sends_the_key_the_service_decodes_to_the_same_bytes():
    for spelling in (KEY.hex(), base64.b64encode(KEY).decode()):
        jwe = {"enabled": True, "encryption_key": Secret(spelling), "compression": "DEF"}
        sent_jwe = sent(jwe_config=jwe)["api_key_config"]["jwe_config"]
        # no compression: fd2 accepts uncompressed tokens only
        assert sent_jwe == {
            "enabled": True,
            "encryption_key": base64.b64encode(KEY).decode(),
            "algorithm": "dir",
            "encryption": "A256GCM",
        }
    assert "jwe_config" not in sent(jwe_config={"enabled": False})["api_key_config"]
    assert "Secret(" in repr(
        settings(jwe_config={"enabled": True, "encryption_key": Secret("k" * 32)})
    )


@pytest.mark.parametrize(
    "jwe",
    [
        {"enabled": True},
        {"enabled": True, "encryption_key": Secret("short")},
        {"enabled": True, "encryption_key": Secret("k" * 32), "encryption": "A128GCM"},
        {"enabled": True, "encryption_key": Secret("k" * 32), "algorithm": "A256KW"},
    ],
)
def test_unusable_jwe_settings_are_config_errors(jwe):
    with pytest.raises(ConfigError):
        settings(jwe_config=jwe)


@pytest.mark.parametrize("url", [None, "", "jwt:5000", "ftp://jwt"])
def test_the_service_url_must_be_http(url):
    with pytest.raises(ConfigError, match="service_url"):
        token_settings({"service_url": url}, project="p", environment="development")


@pytest.mark.parametrize(
    "field",
    ["api_key_config", "secret", "claims", "dynamic", "project", "grant_type", "Username"],
)
def test_fields_that_shape_the_token_are_refused_by_name(field):
    with pytest.raises(BadRequest) as refused:
        parse_login({**LOGIN, field: {"static": {"rate_limit": 1_000_000}}}, settings())
    assert refused.value.param == field
    assert f"'{field}'" in refused.value.message
    assert refused.value.code == "unknown_parameter"


def test_an_unprintable_field_name_is_shown_safely():
    with pytest.raises(BadRequest) as refused:
        parse_login({**LOGIN, "x\n" * 50: 1}, settings())
    assert "\n" not in refused.value.message


@pytest.mark.parametrize(
    "login",
    [
        {"password": "p"},
        {"username": "alice"},
        {"username": "", "password": "p"},
        {"username": 5, "password": "p"},
        {"username": "alice", "password": ["p"]},
        {"username": "a" * 5000, "password": "p"},
    ],
)
def test_a_login_needs_two_non_empty_strings(login):
    with pytest.raises(BadRequest):
        parse_login(login, settings())


def test_api_key_logins_only_where_the_module_allows_them():
    with pytest.raises(BadRequest) as refused:
        parse_login({**LOGIN, "api_key": "svc"}, settings())
    assert refused.value.param == "api_key"
    allowing = settings(allowed_api_keys=["svc", Secret("hidden-name")])
    assert parse_login({**LOGIN, "api_key": "svc"}, allowing).api_key == "svc"
    assert parse_login({**LOGIN, "api_key": "hidden-name"}, allowing).api_key == "hidden-name"
    assert parse_login({**LOGIN, "api_key": None}, allowing).api_key is None
    assert "hidden-name" not in repr(allowing)
    with pytest.raises(KeyNotAllowed) as forbidden:
        parse_login({**LOGIN, "api_key": "other-ключ"}, allowing)
    assert forbidden.value.status == 403
    assert "other" not in forbidden.value.message


def test_an_api_key_login_sends_no_api_key_config():
    allowing = settings(allowed_api_keys=["svc"])
    login = parse_login({**LOGIN, "api_key": "svc"}, allowing)
    assert orjson.loads(service_request(login, allowing, CLAIMS)) == {**LOGIN, "api_key": "svc"}
    assert "wonderland" not in repr(login) and "svc" not in repr(login)


@pytest.mark.parametrize("value", [5, "svc", ["a", ""], {"a": 1}])
def test_allowed_api_keys_must_be_a_list_of_names(value):
    with pytest.raises(ConfigError, match="allowed_api_keys"):
        settings(allowed_api_keys=value)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@given(st.dictionaries(st.text(max_size=16), _JSON, max_size=6))
def test_whatever_a_client_posts_the_service_gets_only_the_modules_claims(extra):
    chosen = settings(id="acme-jwt")
    try:
        login = parse_login({**extra, **LOGIN}, chosen)
    except (BadRequest, KeyNotAllowed):
        return
    assert login == Login(username="alice", password="wonderland")
    body = orjson.loads(service_request(login, chosen, CLAIMS))
    assert set(body) == {"username", "password", "api_key_config"}
    assert body["api_key_config"] == sent(id="acme-jwt")["api_key_config"]


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (200, b'{"access_token": "a.b.c", "refresh_token": "d.e.f"}'),
        (401, b'{"error": "Invalid username or password"}'),
        (500, b'{"error": "JWE encryption failed: Invalid key size"}'),
    ],
)
def test_the_services_own_answers_pass(status, answer):
    check_service_answer(status, answer)


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (500, b"<!doctype html><title>500 Internal Server Error</title>"),
        (200, b'{"error": "no token here"}'),
        (200, b'["a.b.c"]'),
        (404, b'{"detail": "Not Found"}'),
        (302, b'{"error": "moved"}'),
        (200, b""),
    ],
)
def test_anything_else_is_a_bad_gateway(status, answer):
    with pytest.raises(UpstreamError):
        check_service_answer(status, answer)
