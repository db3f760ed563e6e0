"""rq: search and mine a Markdown reading queue."""

__version__ = "0.1.0"
