"""Terminal Guard agent: the background service on an outlet PC (no Qt imports here)."""

__version__ = "0.1.0"
