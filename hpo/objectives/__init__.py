"""Objectives: the built-in ones by name, and user functions by reference.

A reference is ``package.module:function`` (imported with the current
directory on the path) or ``path/to/file.py:function``. The function takes
a ``hpo.Trial`` and returns the number to minimize or maximize; options
given in the study file are passed to it as keyword arguments.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from hpo.errors import ObjectiveError, did_you_mean
from hpo.objectives import synthetic
from hpo.trial import Trial

ObjectiveFn = Callable[[Trial], float]


@dataclass(frozen=True)
class Objective:
    """A loaded objective and, for built-ins, what it knows about itself."""

    ref: str  # what the study stores: a built-in name or an absolute reference
    fn: ObjectiveFn
    space: list[dict[str, Any]] | None = None  # a built-in's default space spec
    direction: str | None = None
    optimum: float | None = None  # the known best value, for regret
    # a bundled objective of several values: each one's direction and name
    directions: tuple[str, ...] | None = None
    names: tuple[str, ...] | None = None


def _synthetic(name: str) -> Callable[..., Objective]:
    problem = synthetic.PROBLEMS[name]

    def make() -> Objective:
        fn = problem["fn"]
        return Objective(
            name, lambda trial: fn(trial.params), problem["space"], "minimize", problem["optimum"]
        )

    return make


def _network(
    name: str, module: str, space: str = "SPACE", minimized: tuple[str, ...] | None = None
) -> Callable[..., Objective]:
    """A bundled network objective: `module` defines the space named `space` and a
    function `name`; `minimized`: the names of its values when it returns several
    (each minimized)."""

    def make(**options: Any) -> Objective:
        loaded = importlib.import_module(f"hpo.objectives.{module}")  # numpy work: on demand
        fn = getattr(loaded, name)
        _check_accepts(fn, options, f"objective {name!r}", takes_trial=True)
        return Objective(
            name,
            functools.partial(fn, **options),
            getattr(loaded, space),
            None if minimized else "minimize",
            directions=("minimize",) * len(minimized) if minimized else None,
            names=minimized,
        )

    make.__doc__ = f"The bundled {name!r} network objective (hpo/objectives/{module}.py)."
    return make


BUILTIN: dict[str, Callable[..., Objective]] = {
    **{name: _synthetic(name) for name in synthetic.PROBLEMS},
    "mnist_mlp": _network("mnist_mlp", "mnist"),
    "boston": _network("boston", "boston"),
    "sofm": _network("sofm", "sofm"),
    # two objectives: the trade-off between error and size
    "mnist_tradeoff": _network(
        "mnist_tradeoff", "mnist", "TRADEOFF_SPACE", ("validation error", "weights")
    ),
    "boston_tradeoff": _network(
        "boston_tradeoff", "boston", "TRADEOFF_SPACE", ("held-out MSE", "hidden units")
    ),
}


def load_objective(
    ref: str,
    options: Mapping[str, Any] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Objective:
    """Resolve a built-in name or a reference; relative file paths from `base_dir`."""
    options = dict(options or {})
    if not isinstance(ref, str) or not ref.strip():
        raise ObjectiveError(f"objective must be a name or module:function, got {ref!r}")
    if ref in BUILTIN:  # (a network's factory checks its options itself)
        return _call_with_options(BUILTIN[ref], options, f"objective {ref!r}")
    if ":" not in ref:
        raise ObjectiveError(
            f"unknown objective {ref!r}{did_you_mean(ref, BUILTIN)}; "
            f"built-in: {', '.join(BUILTIN)}; or give "
            "module:function or path/to/file.py:function"
        )
    location, _, func_name = ref.rpartition(":")
    if not location or not func_name:
        raise ObjectiveError(
            f"objective reference {ref!r} must look like module:function "
            "or path/to/file.py:function"
        )
    if location.endswith(".py") or "/" in location or os.sep in location:
        path = Path(location)
        if not path.is_absolute():
            path = Path(base_dir or ".") / path
        module, stored = _import_file(path), f"{path.resolve()}:{func_name}"
    else:
        module, stored = _import_module(location), ref
    fn = getattr(module, func_name, None)
    if fn is None or not callable(fn):
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        what = "no function" if fn is None else "a non-callable"
        raise ObjectiveError(f"{location} has {what} {func_name!r}{did_you_mean(func_name, names)}")
    if options:
        _check_accepts(fn, options, f"objective {ref!r}", takes_trial=True)
        fn = functools.partial(fn, **options)
    return Objective(stored, fn)


def _call_with_options(
    factory: Callable[..., Objective], options: dict[str, Any], what: str
) -> Objective:
    _check_accepts(factory, options, what, takes_trial=False)
    return factory(**options)


def _check_accepts(
    fn: Callable[..., Any], options: Mapping[str, Any], what: str, takes_trial: bool
) -> None:
    """Every option must be a keyword parameter of fn (other than the trial)."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return
    names = [
        n for n, p in parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    positional = [
        n for n, p in parameters.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if takes_trial and positional and positional[0] in names:
        names.remove(positional[0])  # the trial itself, not an option
    for key in options:
        if key not in names:
            accepted = ", ".join(n for n in names if n != "trial") or "none"
            raise ObjectiveError(
                f"{what} has no option {key!r}{did_you_mean(key, names)}; its options: {accepted}"
            )


def _import_module(name: str) -> ModuleType:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would, for the user's own modules
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise ObjectiveError(
                f"cannot import objective module {name!r}: no module named {exc.name!r}"
            ) from None
        raise ObjectiveError(_import_failure(name, exc, _module_file(name))) from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - anything the user's module does
        raise ObjectiveError(_import_failure(name, exc, _module_file(name))) from None


def _module_file(name: str) -> Path | None:
    """Where module `name` lives, to point at the user's line in an import error."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin).resolve() if spec and spec.origin else None


def _import_file(path: Path) -> ModuleType:
    resolved = path.resolve()
    if not path.is_file():
        where = "" if path.is_absolute() else f" (looked for {str(resolved)!r})"
        raise ObjectiveError(f"objective file {str(path)!r} not found{where}")
    module_name = f"hpo_objective_{resolved.stem}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ObjectiveError(f"cannot load objective file {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the file can import its neighbours
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - anything the user's file does
        del sys.modules[module_name]
        raise ObjectiveError(_import_failure(str(path), exc, resolved)) from None
    return module


def _import_failure(what: str, exc: BaseException, path: Path | None) -> str:
    """One line: the exception and the line of the user's code that raised it."""
    where = ""
    if isinstance(exc, SyntaxError):
        message = exc.msg or ""
        if exc.lineno:
            where = f" ({Path(exc.filename or what).name}, line {exc.lineno})"
    else:
        message = str(exc).splitlines()[0] if str(exc) else ""
        frames = traceback.extract_tb(exc.__traceback__)
        own = [f for f in frames if path is None or Path(f.filename).resolve() == path]
        if own:
            where = f" ({Path(own[-1].filename).name}, line {own[-1].lineno})"
    return f"error while importing {what}: {type(exc).__name__}: {message}{where}"


def objective_names() -> list[str]:
    return list(BUILTIN)
