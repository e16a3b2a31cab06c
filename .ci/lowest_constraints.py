"""Print pip constraints that pin every dependency pyproject.toml declares to its floor.

    python3 .ci/lowest_constraints.py > lowest.txt
    PIP_CONSTRAINT=lowest.txt pip install -e '.[dev]'

Every `name>=X` (runtime, each extra, and the build system's) becomes `name==X`,
so a floor that lies (code that needs a newer release) fails the tests. The
environment variable, unlike `-c`, also reaches pip's isolated build of the
package, where setuptools' floor is checked.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

FLOOR = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)")


def floors(pyproject: dict) -> dict[str, str]:
    """Package name -> lowest declared version, over every requirement list."""
    project = pyproject["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    requirements += pyproject.get("build-system", {}).get("requires", [])
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = FLOOR.match(requirement)
        if match is None:
            sys.exit(f"no floor (name>=version) in requirement {requirement!r}")
        name, version = match.group(1).lower(), match.group(2)
        if pins.get(name, version) != version:
            sys.exit(f"{name} has two floors: {pins[name]} and {version}")
        pins[name] = version
    return pins


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    for name, version in sorted(floors(pyproject).items()):
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
