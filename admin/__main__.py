"""Entry point for ``python -m admin``."""
from .cli import main

main()
