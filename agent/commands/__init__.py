"""One module per agent CLI command; `agent.cli` only parses and dispatches."""
