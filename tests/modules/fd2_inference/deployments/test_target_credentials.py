"""A Bedrock target of a deployment signs its calls with its own AWS credentials, given by
reference like every credential of a deployment; literals are refused."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.control.secrets import Secret
from fd2.module import Timeouts
from fd2.serving.errors import ConfigError
from fd2_inference.deployments.config import BreakerSpec, load_deployments
from fd2_inference.deployments.target import Target


def _config(**credentials: Any) -> dict[str, Any]:
    target = {
        "base_url": "http://127.0.0.1:9/bedrock",
        "provider": "bedrock",
        "region": "us-east-1",
        "model": "anthropic.claude-3-haiku",
        **credentials,
    }
    return {"deployments": {"claude": {"targets": [target]}}}


def test_a_bedrock_target_signs_with_its_own_credentials() -> None:
    spec, _ = load_deployments(
        _config(
            aws_access_key_id=Secret("AKIDTARGET0000000001", "env:KEY_ID"),
            aws_secret_access_key=Secret("target-secret", "env:SECRET"),
        ),
        {},
    )
    target = Target(
        "claude", 0, spec.deployments["claude"].targets[0], None, Timeouts(), BreakerSpec()
    )
    assert target.provider is not None and target.provider.name == "bedrock"
    call = target.provider.chat_call(
        {"model": "anthropic.claude-3-haiku", "messages": [{"role": "user", "content": "hi"}]},
        stream=False,
    )
    authorization = dict(call.headers)["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDTARGET0000000001/")
    assert "target-secret" not in authorization


def test_a_literal_aws_credential_is_refused_without_being_shown() -> None:
    with pytest.raises(ConfigError) as refused:
        load_deployments(_config(aws_secret_access_key="literal-secret-value"), {})
    assert "aws_secret_access_key must be a secret reference" in str(refused.value)
    assert "literal-secret-value" not in str(refused.value)
