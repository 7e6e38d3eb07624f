"""One module per group of console pages."""
