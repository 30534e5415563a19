"""Modules that are not OpenAI-shaped, served by a real fd2 in the metering tests.

`PYTHONPATH=tests/e2e/metering_modules` and `--module-packages meter_probe` let a manifest name
them (`runtime.implementation`). They answer by themselves (no upstream): what matters is what
they tell the core through the metering contract (fd2.metering).
"""

from meter_probe.anthropic_shaped import AnthropicShaped
from meter_probe.silent import Silent

__all__ = ["AnthropicShaped", "Silent"]
