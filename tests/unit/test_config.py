"""One table of settings behind the flags and the FD2_* variables (python/fd2/config.py,
settings_table.py, cli_settings.py): every type, errors that name the flag or the variable,
precedence, and the grouped help."""

from pathlib import Path
from typing import Annotated

import msgspec
import pytest

from fd2.cli.main import build_parser, main
from fd2.cli.settings import settings_from_args
from fd2.config import GROUPS, SETTINGS_ENV, Settings, settings_from_environment
from fd2.settings_table import (
    Group,
    SettingsError,
    field_specs,
    from_sources,
    shown_default,
)


def parse(argv, environ=None, names=None):
    args = build_parser().parse_args(["serve", *argv])
    return settings_from_args(args, environ or {}, names)


def serve_help(monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "200")  # one line per flag: easier to read back
    subparsers = build_parser()._subparsers._group_actions[0]
    return subparsers.choices["serve"].format_help()


def test_defaults():
    settings = parse([])
    assert settings == Settings()
    assert settings.port == 8080 and settings.workers == 1
    assert settings.default_env == "development"
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.access_log is False and settings.vault_verify is True
    assert settings.manifest_env_allow == () and settings.manifests is None


def test_every_type_from_flags():
    settings = parse(
        [
            "--host=0.0.0.0",
            "--port",
            "9100",
            "--body-timeout",
            "2.5",
            "--access-log",
            "--no-vault-verify",
            "--default-auth",
            "NONE",
            "--module-packages",
            " acme_modules, ,other ",
            "--manifests",
            "/srv/m",
            "--health-port",
            "9101",
        ]
    )
    assert settings.host == "0.0.0.0"
    assert settings.port == 9100
    assert settings.body_timeout == 2.5
    assert settings.access_log is True
    assert settings.vault_verify is False
    assert settings.default_auth == "none"  # choices are matched without regard to case
    assert settings.module_packages == ("acme_modules", "other")
    assert settings.manifests == "/srv/m"
    assert settings.health_port == 9101


def test_every_type_from_variables():
    settings = parse(
        [],
        {
            "FD2_PORT": " 9000 ",
            "FD2_WORKERS": "3",
            "FD2_REDIS_TIMEOUT": "0.2",
            "FD2_ACCESS_LOG": "yes",
            "FD2_VAULT_VERIFY": "off",
            "FD2_LOG_LEVEL": "WARNING",
            "FD2_MANIFEST_ENV_ALLOW": "ACME_*, REGION",
            "FD2_CONTROL_TOWER_SECRET_REF": "env:CT_SECRET",
        },
    )
    assert settings.port == 9000 and settings.workers == 3
    assert settings.redis_timeout == 0.2
    assert settings.access_log is True and settings.vault_verify is False
    assert settings.log_level == "warning"
    assert settings.manifest_env_allow == ("ACME_*", "REGION")
    assert settings.control_tower_secret_ref == "env:CT_SECRET"


@pytest.mark.parametrize(
    ("word", "value"),
    [(w, True) for w in ("true", "True", "1", "yes", "on")]
    + [(w, False) for w in ("false", "FALSE", "0", "no", "off")],
)
def test_boolean_variables_take_the_usual_words(word, value):
    assert parse([], {"FD2_ACCESS_LOG": word}).access_log is value


def test_an_empty_value_unsets_an_optional_setting():
    # FD2_MANIFESTS="" is how the image serves the Control Tower's projects alone.
    settings = parse([], {"FD2_MANIFESTS": "", "FD2_HEALTH_PORT": " ", "FD2_MODULE_PACKAGES": ""})
    assert settings.manifests is None and settings.health_port is None
    assert settings.module_packages == ()
    assert parse(["--manifests", ""], {"FD2_MANIFESTS": "/m"}).manifests is None


def test_flags_win_over_variables_which_win_over_defaults():
    environ = {"FD2_PORT": "9000", "FD2_WORKERS": "3", "FD2_ACCESS_LOG": "true"}
    settings = parse(["--port", "9100", "--no-access-log"], environ)
    assert settings.port == 9100  # flag
    assert settings.workers == 3  # variable
    assert settings.access_log is False  # a switch's "no" is a value, and it wins
    assert settings.shutdown_timeout == 30  # default


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "abc"], "--port: expected an integer, got 'abc'"),
        (["--port", "70000"], "--port: expected an integer from 0 to 65535, got '70000'"),
        (["--port", "1.5"], "--port: expected an integer, got '1.5'"),
        (["--workers", "0"], "--workers: expected an integer of at least 1, got '0'"),
        (["--body-timeout", "0"], "--body-timeout: expected a positive number, got '0'"),
        (["--body-timeout", "nan"], "--body-timeout: expected a number, got 'nan'"),
        (["--manifest-max-stale", "-1"], "--manifest-max-stale: expected a number of at least 0"),
        (["--max-header-bytes", "100"], "--max-header-bytes: expected an integer of at least 1024"),
        (["--log-level", "loud"], "--log-level: expected one of debug, info, warning, error"),
        (["--default-auth", "open"], "--default-auth: expected one of api_key, none, got 'open'"),
        (["--http", "2"], "--http: expected one of 1, auto, got '2'"),
        (["--host", ""], "--host: expected a value, got ''"),
    ],
)
def test_flag_errors_name_the_flag_and_what_was_expected(argv, message):
    with pytest.raises(SettingsError) as raised:
        parse(argv)
    assert str(raised.value).startswith(message)
    assert "$." not in str(raised.value)  # never msgspec's internal field path


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FD2_PORT": "abc"}, "FD2_PORT: expected an integer, got 'abc'"),
        ({"FD2_ACCESS_LOG": "maybe"}, "FD2_ACCESS_LOG: expected true or false"),
        ({"FD2_UNKNOWN_PROJECT_RATE": "0"}, "FD2_UNKNOWN_PROJECT_RATE: expected a positive"),
        ({"FD2_CONTROL_TOWER_RETRIES": "-1"}, "FD2_CONTROL_TOWER_RETRIES: expected an integer"),
    ],
)
def test_variable_errors_name_the_variable(environ, message):
    with pytest.raises(SettingsError, match=f"^{message}"):
        parse([], environ)
    with pytest.raises(SettingsError, match=f"^{message}"):
        settings_from_environment(environ)  # the workers' parser is the same one


def test_a_long_bad_value_is_shown_cut():
    with pytest.raises(SettingsError) as raised:
        parse([], {"FD2_PORT": "9" * 500})
    assert len(str(raised.value)) < 150


def test_only_the_settings_a_command_reads_come_from_the_environment():
    settings = parse([], {"FD2_PORT": "not a port", "FD2_DEFAULT_AUTH": "none"}, {"default_auth"})
    assert settings.default_auth == "none" and settings.port == 8080


def test_workers_read_back_what_serve_packed():
    settings = parse(["--port", "9200", "--manifests", "/m", "--access-log"])
    packed = {SETTINGS_ENV: msgspec.json.encode(settings).decode()}
    assert settings_from_environment(packed) == settings


def test_workers_fall_back_to_fd2_variables():
    settings = settings_from_environment({"FD2_PORT": "9300", "FD2_MODULE_PACKAGES": "a,b"})
    assert settings.port == 9300 and settings.module_packages == ("a", "b")


def test_settings_built_in_python_are_checked_by_the_same_table():
    with pytest.raises(ValueError, match=r"^port: expected an integer from 0 to 65535, got 70000"):
        Settings(port=70000)
    with pytest.raises(ValueError, match=r"^default_auth: expected one of api_key, none"):
        Settings(default_auth="open")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^access_log: expected true or false"):
        Settings(access_log="yes")  # type: ignore[arg-type]
    assert Settings(body_timeout=5).body_timeout == 5  # an int is a number


def test_packed_settings_are_checked_when_decoded():
    with pytest.raises(msgspec.ValidationError):
        settings_from_environment({SETTINGS_ENV: '{"port": 70000}'})


def test_every_setting_has_help_a_group_and_a_shown_default():
    titles = {group.title for group in GROUPS}
    for spec in field_specs(Settings):
        assert spec.help and not spec.help.endswith("."), spec.name
        assert spec.group in titles, spec.name
        shown = shown_default(spec)
        assert shown is None or shown == shown.strip(), spec.name
        assert shown not in ("None", "()", "True", "False"), spec.name


def test_grouped_help(monkeypatch):
    text = serve_help(monkeypatch)
    assert text.startswith("usage: fd2 serve [options]\n")
    # Groups in their order, each flag in its own group.
    positions = [text.index(f"\n{group.title}:\n") for group in GROUPS]
    assert positions == sorted(positions)
    for spec in field_specs(Settings):
        index = [group.title for group in GROUPS].index(spec.group)
        start = positions[index]
        end = positions[index + 1] if index + 1 < len(positions) else len(text)
        assert f"  {spec.flag}" in text[start:end], spec.name
        assert spec.variable in text[start:end], spec.name
    for title in (
        "serving",
        "connections and hardening",
        "manifests and Control Tower",
        "secrets and Vault",
        "auth and limits",
        "Redis",
        "upstream",
        "logging",
    ):
        assert f"\n{title}:\n" in text


def help_entries(text: str) -> dict[str, str]:
    """Flag → its help entry on one line (argparse wraps long ones onto the next lines)."""
    entries: dict[str, str] = {}
    flag = ""
    for line in text.splitlines():
        if line.startswith("  --"):
            flag = line.split()[0].rstrip(",")
            entries[flag] = line.strip()
        elif flag and line.startswith("      "):
            entries[flag] += " " + line.strip()
        else:
            flag = ""
    return entries


def test_help_shows_defaults_as_written(monkeypatch):
    lines = help_entries(serve_help(monkeypatch))
    assert lines["--port"].endswith("[FD2_PORT; default 8080]")
    assert lines["--max-body-bytes"].endswith("[FD2_MAX_BODY_BYTES; default 10485760]")
    assert lines["--body-timeout"].endswith("[FD2_BODY_TIMEOUT; default 60]")
    assert lines["--redis-timeout"].endswith("[FD2_REDIS_TIMEOUT; default 0.05]")
    assert lines["--manifests"].endswith("[FD2_MANIFESTS]")
    assert lines["--default-auth"].startswith("--default-auth {api_key,none} ")
    assert lines["--default-auth"].endswith("[FD2_DEFAULT_AUTH; default api_key]")
    assert lines["--module-packages"].startswith("--module-packages PACKAGE,... ")
    assert lines["--access-log"].startswith("--access-log, --no-access-log ")
    assert lines["--access-log"].endswith("[FD2_ACCESS_LOG=true|false; default off]")
    assert lines["--vault-verify"].endswith("[FD2_VAULT_VERIFY=true|false; default on]")
    text = "\n".join(lines.values())
    for repr_like in ("default None", "default ()", "default True", "default False", ".0]"):
        assert repr_like not in text


def test_a_value_after_a_switch_is_explained(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--access-log", "true"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "fd2 serve: error: unrecognized arguments: true" in error
    assert "--access-log is a switch: write --access-log or --no-access-log" in error
    assert "FD2_ACCESS_LOG takes true or false" in error


def test_serve_reports_a_bad_flag_by_name(capsys, monkeypatch):
    monkeypatch.delenv("FD2_SETTINGS_JSON", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "abc"])
    assert exited.value.code == 2
    assert "fd2 serve: error: --port: expected an integer, got 'abc'" in capsys.readouterr().err


def test_the_table_refuses_fields_it_cannot_describe():
    group = Group("things", "for a test")

    class Undescribed(msgspec.Struct):
        plain: int = 1

    class Unsupported(msgspec.Struct):
        mapping: Annotated[dict[str, int], group("a map")] = msgspec.field(default_factory=dict)

    with pytest.raises(TypeError, match="plain"):
        field_specs(Undescribed)
    with pytest.raises(TypeError, match="mapping"):
        field_specs(Unsupported)


def test_a_rule_across_fields_is_reported_without_internal_paths():
    group = Group("things", "for a test")

    class Window(msgspec.Struct, kw_only=True):
        low: Annotated[int, group("low end")] = 1
        high: Annotated[int, group("high end")] = 2

        def __post_init__(self) -> None:
            if self.low > self.high:
                raise ValueError("--low must not exceed --high")

    with pytest.raises(SettingsError, match=r"^--low must not exceed --high$"):
        from_sources(Window, {"low": "5"}, {})


def test_operations_docs_list_every_flag_with_its_variable_and_default():
    docs = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    rows = {
        line.split("|")[1].strip(): line for line in docs.splitlines() if line.startswith("| `--")
    }
    for spec in field_specs(Settings):
        flag = f"`{spec.flag}`, `--no-{spec.flag[2:]}`" if spec.kind == "bool" else f"`{spec.flag}`"
        assert flag in rows, spec.name
        cells = [cell.strip() for cell in rows[flag].split("|")]
        assert cells[2] == f"`{spec.variable}`", spec.name
        assert cells[3] == (shown_default(spec) or "—"), spec.name
