"""``python -m ritz``: the command line."""

from .runtime.cli import main

main()
