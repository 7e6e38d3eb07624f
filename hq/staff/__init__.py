"""The staff directory: outlet employees, their password hashes, lockout and suspension."""
