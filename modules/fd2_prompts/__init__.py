"""The `structured_prompt` module type: `POST /v1/analyze` and `/v1/analyze/batch`."""

from fd2_prompts.module import StructuredPromptModule

__all__ = ["StructuredPromptModule"]
