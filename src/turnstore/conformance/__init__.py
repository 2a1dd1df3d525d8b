"""The conformance suite, shipped: the tests every backend of this package passes.

Run it against any store URL, a third-party scheme included:

    python -m turnstore.conformance memory://
    python -m turnstore.conformance dynamodb://... -x -q

The tests are the modules `test_session_contract`, `test_store_contract` and
`test_lock_contract`; they ask a `harness.Backend` (the `backend` fixture) for sessions.
"""
