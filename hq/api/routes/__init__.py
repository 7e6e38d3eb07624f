"""One module per wire endpoint."""
