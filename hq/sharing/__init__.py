"""Credential-sharing detection: small rules over verify decisions, sign-ins and device posture."""
