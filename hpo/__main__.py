"""`python -m hpo`: the `hpo` command (what `hpo run --workers N` starts its workers with)."""

from hpo.cli import main

main()
