"""Session binding at HQ: challenges, bound session tokens, proofs and the verify decision."""
