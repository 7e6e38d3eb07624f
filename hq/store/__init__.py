"""Plain, keyword-only database functions; routes and the CLI call these, never raw SQL."""
