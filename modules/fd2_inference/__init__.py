"""fd2's inference module (types `inference_endpoint`, and `inference_openai`, its former name)."""

from fd2_inference.module import InferenceModule

__all__ = ["InferenceModule"]
