"""`fd2 keys new` prints a key once and the record that verifies it."""

import hashlib
import hmac
import json

import pytest

from fd2.cli.main import main


def test_keys_new_prints_a_key_and_its_hmac(capsys, monkeypatch):
    monkeypatch.setenv("TEST_PEPPER", "pepper-value")
    main(
        [
            "keys",
            "new",
            "--project",
            "acme",
            "--id",
            "ci",
            "--models",
            "gpt-4o-mini, gpt-4o",
            "--requests-per-minute",
            "60",
            "--pepper-ref",
            "env:TEST_PEPPER",
        ]
    )
    out = capsys.readouterr().out
    key = out.splitlines()[0].rsplit(" ", 1)[1]
    record = json.loads(out[out.index("{") :])
    assert key.startswith("fd2_")
    assert record["hash"] == hmac.new(b"pepper-value", key.encode(), hashlib.sha256).hexdigest()
    assert record["project"] == "acme" and record["id"] == "ci"
    assert record["models"] == ["gpt-4o-mini", "gpt-4o"]
    assert record["limits"] == {"requests_per_minute": 60}
    assert "pepper-value" not in out


def test_an_unresolvable_pepper_is_an_error_not_an_empty_pepper(monkeypatch):
    monkeypatch.delenv("NO_SUCH_PEPPER", raising=False)
    with pytest.raises(SystemExit, match="NO_SUCH_PEPPER"):
        main(["keys", "new", "--project", "a", "--id", "b", "--pepper-ref", "env:NO_SUCH_PEPPER"])
