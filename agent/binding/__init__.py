"""Session binding on the agent side: staff sign-in, bound tokens and per-request proofs."""
