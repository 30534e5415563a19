"""AWS Bedrock: chat over Converse / ConverseStream, embeddings over Titan's InvokeModel, every
call signed with SigV4 (botocore's signer; see bedrock_signing).

Settings: `region` (required: the signing scope and the default base URL
`https://bedrock-runtime.{region}.amazonaws.com`, which an explicit endpoint replaces, e.g. for
a stand-in), the secrets `aws_access_key_id`, `aws_secret_access_key` (required) and
`aws_session_token` (temporary credentials), `unsupported_params`. The request's `model` is the
Bedrock model id (or inference profile / ARN), percent-encoded into the path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import orjson
import yarl

from fd2.serving.errors import BadRequest, ConfigError
from fd2_inference.providers.base import (
    Framing,
    ProviderCall,
    ProviderFailure,
    ProviderSettings,
    UnsupportedParameter,
    path_segment,
)
from fd2_inference.providers.bedrock_answer import (
    chat_completion,
    embeddings_list,
    titan_body,
)
from fd2_inference.providers.bedrock_errors import http_failure
from fd2_inference.providers.bedrock_request import PROVIDER, Policy, converse_body
from fd2_inference.providers.bedrock_signing import Clock, SigV4Signer, utc_now
from fd2_inference.providers.bedrock_stream import ConverseStreamTranslator

JSON: Final = "application/json"
EVENTSTREAM: Final = "application/vnd.amazon.eventstream"
EMBEDDINGS_HANDLED: Final = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


def default_base_url(region: str) -> str:
    return f"https://bedrock-runtime.{region}.amazonaws.com"


class BedrockProvider:
    name: ClassVar[str] = PROVIDER
    framing: ClassVar[Framing] = "eventstream"
    passthrough: ClassVar[bool] = False

    def __init__(self, settings: ProviderSettings, *, clock: Clock = utc_now) -> None:
        region = (settings.region or "").strip()
        if not region:
            raise ConfigError("the bedrock provider needs a `region` setting")
        credentials = settings.credentials
        access_key = credentials.get("aws_access_key_id")
        secret_key = credentials.get("aws_secret_access_key")
        if not access_key or not secret_key:
            raise ConfigError(
                "the bedrock provider needs the secrets aws_access_key_id and aws_secret_access_key"
            )
        self._base_url = (settings.base_url or default_base_url(region)).rstrip("/")
        self._signer = SigV4Signer(
            endpoint=self._base_url,
            access_key_id=access_key,
            secret_access_key=secret_key,
            session_token=credentials.get("aws_session_token"),
            region=region,
            clock=clock,
        )
        self._mode = settings.unsupported_params
        self._default_model = settings.model

    def __repr__(self) -> str:
        return f"BedrockProvider(base_url={self._base_url!r}, region={self._signer.region!r})"

    # --- calls

    def _model_path(self, model: Any, action: str) -> str:
        if not isinstance(model, str) or not model:
            model = self._default_model
        if not model:
            raise UnsupportedParameter("model", PROVIDER, ": a Bedrock model id is required")
        # Model ids hold ':' (`...-v1:0`), ARNs also '/': encoded as boto3 does, then in the form
        # aiohttp (yarl) sends, since the signature must be computed over the path as sent.
        segment = path_segment(model)
        if segment is None:
            raise BadRequest("'model' is not a valid Bedrock model id.", param="model")
        path = f"/model/{segment}/{action}"
        return yarl.URL(path).raw_path

    def _signed(
        self, path: str, body: bytes, *, accept: str, stream: bool, dropped: list[str]
    ) -> ProviderCall:
        headers = [("content-type", JSON)]
        signed = self._signer.sign("POST", path, headers, body)
        # `accept` is left out of the signature: nothing in it needs protecting.
        return ProviderCall(
            "POST",
            path,
            [*headers, ("accept", accept), *signed],
            body,
            stream=stream,
            dropped=tuple(dropped),
        )

    def chat_call(self, body: Mapping[str, Any], *, stream: bool) -> ProviderCall:
        path = self._model_path(body.get("model"), "converse-stream" if stream else "converse")
        policy = Policy(self._mode)
        payload = orjson.dumps(converse_body(body, policy))
        accept = EVENTSTREAM if stream else JSON
        return self._signed(path, payload, accept=accept, stream=stream, dropped=policy.dropped)

    def chat_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return chat_completion(payload, model=model)

    def chat_stream(self, *, model: str, include_usage: bool) -> ConverseStreamTranslator:
        return ConverseStreamTranslator(model=model, include_usage=include_usage)

    # --- embeddings: Titan takes one text per call

    def _embedding_inputs(self, body: Mapping[str, Any], policy: Policy) -> list[str]:
        for key, value in body.items():
            if key not in EMBEDDINGS_HANDLED and value is not None:
                policy.unsupported(key, "Titan embeddings have no such parameter")
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not inputs:
            raise UnsupportedParameter("input", PROVIDER, ": a text or a list of texts")
        if not all(isinstance(text, str) for text in inputs):
            raise UnsupportedParameter("input", PROVIDER, ": Titan embeds text, not token ids")
        return inputs

    def embeddings_calls(self, body: Mapping[str, Any]) -> list[ProviderCall]:
        """One InvokeModel call per input (Titan embeds one text per call), in input order;
        `embeddings_merge` makes one OpenAI list of their answers."""
        path = self._model_path(body.get("model"), "invoke")
        policy = Policy(self._mode)
        texts = self._embedding_inputs(body, policy)
        return [
            self._signed(
                path, titan_body(text, body), accept=JSON, stream=False, dropped=policy.dropped
            )
            for text in texts
        ]

    def embeddings_merge(self, payloads: Sequence[bytes], *, model: str) -> Mapping[str, Any]:
        return embeddings_list(payloads, model=model)

    def embeddings_call(self, body: Mapping[str, Any]) -> ProviderCall:
        """One input: its call. Several: refused with `input` (the seam sends one call per
        request; `embeddings_calls` is there for a relay that fans out)."""
        calls = self.embeddings_calls(body)
        if len(calls) != 1:
            raise UnsupportedParameter(
                "input", PROVIDER, ": Titan embeds one text per request; send one input"
            )
        return calls[0]

    def embeddings_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return embeddings_list([payload], model=model)

    # --- errors

    def failure(self, status: int, headers: Mapping[str, str], payload: bytes) -> ProviderFailure:
        return http_failure(status, headers, payload)
