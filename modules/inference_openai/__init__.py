"""fd2's OpenAI-compatible inference module (types `inference_endpoint`, `inference_openai`)."""

from inference_openai.module import InferenceOpenAIModule

__all__ = ["InferenceOpenAIModule"]
