"""The module harness of test_module.py (a real loopback upstream, a recording `send`) for the
other test files of the inference module."""

from .test_module import make, session, upstream  # noqa: F401  # fixtures
