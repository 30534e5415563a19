import msgspec
import pytest

from fd2.cli import _parser, settings_from
from fd2.config import SETTINGS_ENV, Settings, settings_from_environment


def parse(argv, environ=None):
    args = _parser().parse_args(["serve", *argv])
    return settings_from(args, environ or {})


def test_defaults():
    settings = parse([])
    assert settings.port == 8080 and settings.workers == 1
    assert settings.default_env == "development"
    assert settings.max_body_bytes == 10 * 1024 * 1024


def test_every_flag_has_an_environment_variable_and_flags_win():
    environ = {
        "FD2_PORT": "9000",
        "FD2_WORKERS": "3",
        "FD2_MANIFESTS": "/srv/manifests",
        "FD2_CONTROL_TOWER": "http://ct:8000",
        "FD2_CONTROL_TOWER_SECRET_REF": "env:CT_SECRET",
        "FD2_DEFAULT_ENV": "staging",
        "FD2_MODULE_PACKAGES": "acme_modules, other",
    }
    settings = parse(["--port", "9100"], environ)
    assert settings.port == 9100
    assert settings.workers == 3
    assert settings.manifests == "/srv/manifests"
    assert settings.control_tower == "http://ct:8000"
    assert settings.control_tower_secret_ref == "env:CT_SECRET"
    assert settings.default_env == "staging"
    assert settings.module_packages == ("acme_modules", "other")


def test_every_settings_field_is_a_flag():
    help_text = _parser()._subparsers._group_actions[0].choices["serve"].format_help()
    for field in msgspec.structs.fields(Settings):
        assert "--" + field.name.replace("_", "-") in help_text
        assert "FD2_" + field.name.upper() in help_text


@pytest.mark.parametrize(
    "argv", [["--port", "x"], ["--port", "70000"], ["--workers", "0"], ["--log-level", "loud"]]
)
def test_bad_values_are_refused(argv):
    with pytest.raises(msgspec.ValidationError):
        parse(argv)


def test_workers_read_back_what_serve_packed():
    settings = parse(["--port", "9200", "--manifests", "/m"])
    packed = {SETTINGS_ENV: msgspec.json.encode(settings).decode()}
    assert settings_from_environment(packed) == settings


def test_workers_fall_back_to_fd2_variables():
    settings = settings_from_environment({"FD2_PORT": "9300", "FD2_MODULE_PACKAGES": "a,b"})
    assert settings.port == 9300 and settings.module_packages == ("a", "b")


def test_manifest_cache_and_admin_settings_come_from_flags_and_variables():
    environ = {
        "FD2_MANIFEST_TTL": "30",
        "FD2_MANIFEST_MAX_STALE": "600",
        "FD2_MANIFEST_NEGATIVE_TTL": "2.5",
        "FD2_UNKNOWN_PROJECT_RATE": "7",
        "FD2_ADMIN_TOKEN_REF": "env:ADMIN_TOKEN",
        "FD2_REDIS_URL": "redis://127.0.0.1:6379/0",
        "FD2_CONTROL_TOWER_CA": "/etc/ct-ca.pem",
    }
    settings = parse(["--manifest-max-stale", "900", "--control-tower-retries", "0"], environ)
    assert settings.manifest_ttl == 30 and settings.manifest_max_stale == 900
    assert settings.manifest_negative_ttl == 2.5 and settings.unknown_project_rate == 7
    assert settings.admin_token_ref == "env:ADMIN_TOKEN"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.control_tower_ca == "/etc/ct-ca.pem"
    assert settings.control_tower_retries == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["--manifest-max-stale", "-1"],
        ["--control-tower-retries", "-1"],
        ["--unknown-project-rate", "0"],
        ["--manifest-negative-ttl", "0"],
    ],
)
def test_bad_cache_settings_are_refused(argv):
    with pytest.raises(msgspec.ValidationError):
        parse(argv)
