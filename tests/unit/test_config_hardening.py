"""The hardening settings (issue 19): defaults, validation, lists, and the connection cap."""

import resource

import pytest

from fd2.cli.main import build_parser, connection_cap
from fd2.cli.settings import settings_from_args
from fd2.config import Settings, settings_from_environment
from fd2.settings_table import SettingsError


def parse(argv, environ=None):
    return settings_from_args(build_parser().parse_args(["serve", *argv]), environ or {})


def test_safe_defaults():
    settings = parse([])
    assert settings.http == "1"  # HTTP/2's protocol detection has no time limit: opt-in only
    assert settings.header_timeout == 30
    assert settings.max_connections == 16384
    assert settings.max_header_bytes == 65536
    assert settings.max_headers == 100
    assert settings.redis_timeout == 0.05
    assert settings.manifest_env_allow == ()
    assert settings.health_port is None


def test_allow_list_from_flag_and_variable():
    assert parse([], {"FD2_MANIFEST_ENV_ALLOW": "ACME_*, REGION"}).manifest_env_allow == (
        "ACME_*",
        "REGION",
    )
    assert parse(["--manifest-env-allow", "X"]).manifest_env_allow == ("X",)
    workers = settings_from_environment({"FD2_MANIFEST_ENV_ALLOW": "A,B*"})
    assert workers.manifest_env_allow == ("A", "B*")


@pytest.mark.parametrize(
    "argv",
    [
        ["--http", "2"],
        ["--header-timeout", "0"],
        ["--redis-timeout", "-1"],
        ["--max-connections", "0"],
        ["--max-header-bytes", "100"],
        ["--max-headers", "0"],
        ["--health-port", "70000"],
    ],
)
def test_invalid_values_are_refused(argv):
    with pytest.raises(SettingsError, match=f"^{argv[0]}: expected "):
        parse(argv)


def test_the_cap_fits_the_file_descriptor_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        settings = Settings(max_connections=10_000_000, upstream_max_connections=100)
        cap = connection_cap(settings)
        now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert now >= soft  # raised to the hard limit where it could be
        assert cap <= now - 100
        assert connection_cap(Settings(max_connections=64)) == 64
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
