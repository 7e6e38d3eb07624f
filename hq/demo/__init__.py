"""A runnable demo: a tiny waybill-lookup app behind a gateway that asks HQ to verify each request.

    python -m hq.demo --hq https://127.0.0.1:8443 --ca hq-data/ca.pem --gateway-key-file gw.key --port 8600

Used by the end-to-end tests and the binding benchmark; see docs/binding.md.
"""
