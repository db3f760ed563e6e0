"""`rq serve`: one warm engine for a queue and its index, with a web app and an HTTP API.

Nothing is imported here: ``rq.serve.client`` is what `rq search` loads to ask a running
engine, and it must stay as light as the standard library.
"""
