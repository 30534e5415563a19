import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fd2.control.manifests.placeholders import (
    EnvironmentAllowList,
    PlaceholderContext,
    PlaceholderError,
    resolve_value,
)
from fd2.telemetry.logs import redact

ENVIRONMENTS = {
    "common": {"secrets": {"key": "env:SHARED"}, "region": "eu"},
    "development": {"urls": {"llm": "http://dev:9100/v1"}, "limits": {"rps": 20}},
    "production": {"urls": {"llm": "http://prod/v1"}, "region": "us"},
}


def ctx(environment="dev", environ=None, reached=None, allow=("HOME_REGION",)):
    return PlaceholderContext(
        environments=ENVIRONMENTS,
        environment=environment,
        environ=environ or {"HOME_REGION": "north"},
        on_reached_string=reached,
        env_allow=EnvironmentAllowList(allow),
    )


def test_nested_environment_placeholder_uses_the_served_environment():
    value = "${environments.${environment}.urls.llm}/chat/completions"
    assert resolve_value(value, ctx("dev")) == "http://dev:9100/v1/chat/completions"
    assert resolve_value(value, ctx("prod")) == "http://prod/v1/chat/completions"


def test_environment_placeholder_spells_the_name_as_the_manifest_does():
    assert resolve_value("${environment}", ctx("dev")) == "development"
    assert resolve_value("${environment}", ctx("qa")) == "qa"


def test_named_environment_and_common_fallback():
    assert resolve_value("${environments.common.region}", ctx()) == "eu"
    # development has no region: common's applies; production overrides it.
    assert resolve_value("${environments.${environment}.region}", ctx("dev")) == "eu"
    assert resolve_value("${environments.${environment}.region}", ctx("prod")) == "us"


def test_whole_placeholder_keeps_the_type_of_what_it_reaches():
    assert resolve_value("${environments.development.limits}", ctx()) == {"rps": 20}
    assert resolve_value("${environments.development.limits.rps}", ctx()) == 20


def test_numbers_inside_longer_strings_become_text():
    assert resolve_value("rps=${environments.development.limits.rps}", ctx()) == "rps=20"


def test_upper_case_names_read_the_process_environment_when_allowed():
    assert resolve_value("r-${HOME_REGION}", ctx()) == "r-north"


ENVIRON = {
    "FD2_MANIFEST_REGION": "north-east-1",
    "OTHER_PROJECT_SECRET": "sk-other-project-0123456789",
    "ACME_URL": "http://acme.internal/v1",
    "FD2_MANIFEST_TTL": "60",
}


@pytest.mark.parametrize(
    ("allow", "name", "readable"),
    [
        ((), "FD2_MANIFEST_REGION", True),  # the prefix needs no opt-in
        ((), "OTHER_PROJECT_SECRET", False),  # anything else does
        ((), "ACME_URL", False),
        ((), "FD2_MANIFEST_TTL", False),  # fd2's own settings variables are not manifest data
        (("ACME_URL",), "ACME_URL", True),
        (("ACME_*",), "ACME_URL", True),
        (("ACME_*",), "OTHER_PROJECT_SECRET", False),
        (("*",), "OTHER_PROJECT_SECRET", False),  # a bare `*` is no prefix
    ],
)
def test_only_allowed_variables_are_read(allow, name, readable):
    context = ctx(environ=ENVIRON, allow=allow)
    if readable:
        assert resolve_value(f"${{{name}}}", context) == ENVIRON[name]
    else:
        with pytest.raises(PlaceholderError, match="may read only") as info:
            resolve_value(f"${{{name}}}", context)
        assert ENVIRON[name] not in info.value.message


def test_values_read_from_the_environment_are_masked_in_logs():
    resolve_value("${FD2_MANIFEST_REGION}", ctx(environ=ENVIRON))
    assert redact("region north-east-1 chosen") == "region *** chosen"


def test_keys_of_maps_are_resolved_too():
    assert resolve_value({"${environment}-url": 1}, ctx("prod")) == {"production-url": 1}


def test_reached_strings_go_through_the_hook():
    seen = []

    def hook(value):
        seen.append(value)
        return f"<{value}>"

    assert resolve_value("${environments.common.secrets.key}", ctx(reached=hook)) == "<env:SHARED>"
    assert seen == ["env:SHARED"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("${environments.development.urls.missing}", "environments.development.urls.missing"),
        ("${environments.nowhere.x}", "environments.nowhere.x"),
        ("${NOT_SET_ANYWHERE}", "NOT_SET_ANYWHERE"),
        ("${lowercase}", "unknown placeholder"),
        ("${environments.development.urls", "unterminated"),
        ("x${environments.development.limits}y", "inside a longer string"),
    ],
)
def test_unresolvable_placeholders_name_themselves_and_their_path(value, fragment):
    with pytest.raises(PlaceholderError) as info:
        resolve_value({"outer": [value]}, ctx())
    assert fragment in info.value.message
    assert "$.outer[0]" in info.value.message


def test_cycles_are_bounded():
    looping = {"development": {"a": "${environments.development.a}"}}
    context = PlaceholderContext(environments=looping, environment="dev", environ={})
    with pytest.raises(PlaceholderError, match="too deeply"):
        resolve_value("${environments.development.a}", context)


TEXT = st.text(alphabet=string.ascii_letters + string.digits + " :/.-_{}", max_size=40)


@given(TEXT)
def test_strings_without_placeholders_are_untouched(text):
    assert resolve_value(text.replace("${", ""), ctx()) == text.replace("${", "")


@given(st.lists(st.sampled_from(["dev", "prod", "production", "development"]), min_size=1), TEXT)
def test_resolution_is_deterministic_and_literal_text_survives(envs, text):
    literal = text.replace("${", "")
    for environment in envs:
        value = f"{literal}${{environments.${{environment}}.urls.llm}}{literal}"
        first = resolve_value(value, ctx(environment))
        assert first == resolve_value(value, ctx(environment))
        assert first.startswith(literal)
        assert first.endswith(literal)


def test_a_secret_reached_inside_a_longer_string_makes_the_string_a_secret():
    from fd2.control.manifests.placeholders import PlaceholderContext, resolve_value
    from fd2.control.secrets import Secret, SecretResolver, is_secret_reference

    secrets = SecretResolver(environ={"KEY": "sk-composed-0123"})
    context = PlaceholderContext(
        environments={"common": {"secrets": {"key": "env:KEY"}}},
        environment="dev",
        environ={},
        on_reached_string=lambda v: secrets.resolve(v) if is_secret_reference(v) else v,
    )
    value = resolve_value("Bearer ${environments.common.secrets.key}", context, "headers")
    assert isinstance(value, Secret)
    assert value.reveal() == "Bearer sk-composed-0123"
    assert "sk-composed" not in repr(value)


@pytest.mark.parametrize(
    "inner",
    [
        "environments.${environment}.urls.llm",
        "environments.${ environment }.urls.llm",
        "${environment}",
        "environments.${environment}",
        "environments.${environment}.region",
    ],
)
def test_an_inner_text_around_the_environment_resolves_as_it_reads(inner):
    # `${environments.${environment}.x}` is built without resolving its inner text: the same
    # value, or the same error, as the inner text resolved first.
    environments = {**ENVIRONMENTS, "pre.prod": {"urls": {"llm": "http://dotted/v1"}}}
    for environment in ("development", "production", "qa", "pre.prod"):
        context = PlaceholderContext(environments=environments, environment=environment, environ={})
        named = resolve_value(inner, context)
        expected: object
        try:
            expected = resolve_value("${" + named + "}", context)
        except PlaceholderError as exc:
            expected = type(exc)
        try:
            got: object = resolve_value("${" + inner + "}", context)
        except PlaceholderError as exc:
            got = type(exc)
        assert got == expected
