"""What several benchmark scripts share: the problem files, the samplers this machine
can make, and an ask timer.

The scripts run as `python bench/NAME.py`, so this folder is on their path.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import hpo
from hpo.errors import SamplerError
from hpo.samplers import make_sampler

HERE = Path(__file__).resolve().parent


def load_problems(file_name: str = "problems.py") -> dict[str, dict[str, Any]]:
    """PROBLEMS of a problem file beside this one (problems.py: one objective,
    mo_problems.py: several), in the neutral space format."""
    path = HERE / file_name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    problems: dict[str, dict[str, Any]] = module.PROBLEMS
    return problems


def available(samplers: list[str]) -> list[str]:
    """The samplers that can be made here; each other one skipped with a line saying why
    (a reference sampler whose library is not installed)."""
    kept = []
    for name in samplers:
        try:
            make_sampler(name)
        except SamplerError as exc:
            print(f"skipped {name}: {exc}", file=sys.stderr)
            continue
        kept.append(name)
    return kept


class TimedSampler:
    """Wraps a study's sampler to record the seconds of each ask."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds = inner, []

    def check(self, space: hpo.Space) -> None:
        self.inner.check(space)

    def ask(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        start = time.perf_counter()
        params = self.inner.ask(*args, **kwargs)
        self.seconds.append(time.perf_counter() - start)
        return params
