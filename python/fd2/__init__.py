"""fd2: the front door of an enterprise AI platform."""

__version__ = "0.1.0"
