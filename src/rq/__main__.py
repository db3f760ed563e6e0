"""`python -m rq`: the same command line as the `rq` script."""

from rq.cli.launch import main

main()
