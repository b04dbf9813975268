"""`python -m distill.cli …`, the same as the `distill` console script."""

from distill.cli import main

main()
