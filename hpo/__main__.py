"""`python -m hpo`: the `hpo` command (what `hpo run --workers N` starts its workers with)."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    """Load the command and run it; Ctrl-C while it is still loading ends it quietly
    (nothing has started that would need storing)."""
    try:
        from hpo.cli import main as cli_main
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    cli_main()


if __name__ == "__main__":
    main()
