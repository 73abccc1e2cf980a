"""`python -m citywatch`: the CLI (the demo starts the worker this way)."""

from citywatch.cli import main

main()
