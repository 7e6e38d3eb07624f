"""Terminal Guard headquarters server."""
