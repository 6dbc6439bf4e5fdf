"""python -m bpcli."""

from bpcli.cli import main

main()
