"""hpo: hyperparameter optimization with every trial in a database.

    import hpo
    study = hpo.create_study(space=[{"name": "x", "type": "float", "low": -5, "high": 5}])
    study.optimize(lambda trial: (trial.params["x"] - 1) ** 2, n_trials=50)
    study.best_params

The names below are loaded when first used (PEP 562), so that `import hpo`
and `hpo --help` do not pay for NumPy, SQLAlchemy, SciPy or matplotlib
before they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hpo.errors import (
    BudgetMet,
    DuplicateStudyError,
    HpoError,
    InvalidValueError,
    NoCompletedTrialsError,
    ObjectiveError,
    PrunerError,
    SamplerError,
    SamplerExhausted,
    SchemaVersionError,
    SpaceError,
    StorageError,
    StudyConfigError,
    StudyFileError,
    StudyNotFoundError,
    TransientStorageError,
    TrialPruned,
    TrialStateError,
)

if TYPE_CHECKING:
    from hpo.catalog import create_study, delete_study, load_study, studies
    from hpo.comparison import compare
    from hpo.direction import Direction
    from hpo.optuna_export import export_optuna
    from hpo.optuna_io import ImportedStudy, import_optuna
    from hpo.plots import plot
    from hpo.records import FrozenTrial, TrialState
    from hpo.remote import connect
    from hpo.reports import report
    from hpo.runner import create, resume, run, worker
    from hpo.space import Space
    from hpo.storage import Storage, StudyInfo, StudySummary
    from hpo.study import Study
    from hpo.trial import Trial

__version__ = "0.1.0"

_LAZY = {
    "compare": "hpo.comparison",
    "Direction": "hpo.direction",
    "export_optuna": "hpo.optuna_export",
    "ImportedStudy": "hpo.optuna_io",
    "import_optuna": "hpo.optuna_io",
    "plot": "hpo.plots",
    "FrozenTrial": "hpo.records",
    "TrialState": "hpo.records",
    "connect": "hpo.remote",
    "report": "hpo.reports",
    "resume": "hpo.runner",
    "run": "hpo.runner",
    "create": "hpo.runner",
    "worker": "hpo.runner",
    "Space": "hpo.space",
    "Storage": "hpo.storage",
    "StudyInfo": "hpo.records",
    "StudySummary": "hpo.records",
    "Study": "hpo.study",
    "create_study": "hpo.catalog",
    "delete_study": "hpo.catalog",
    "load_study": "hpo.catalog",
    "studies": "hpo.catalog",
    "Trial": "hpo.trial",
    "create_trial": "hpo.trial",
}


# submodules a driver written for Optuna reaches as attributes (optuna.samplers.X, ...)
_SUBMODULES = frozenset({"distributions", "logging", "pruners", "samplers", "trial"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"hpo.{name}")
    if name not in _LAZY:
        raise AttributeError(f"module 'hpo' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BudgetMet",
    "Direction",
    "DuplicateStudyError",
    "FrozenTrial",
    "HpoError",
    "ImportedStudy",
    "InvalidValueError",
    "NoCompletedTrialsError",
    "ObjectiveError",
    "PrunerError",
    "SamplerError",
    "SamplerExhausted",
    "SchemaVersionError",
    "Space",
    "SpaceError",
    "Storage",
    "StorageError",
    "Study",
    "StudyConfigError",
    "StudyFileError",
    "StudyInfo",
    "StudyNotFoundError",
    "StudySummary",
    "TransientStorageError",
    "Trial",
    "TrialPruned",
    "TrialState",
    "TrialStateError",
    "__version__",
    "compare",
    "connect",
    "create",
    "create_study",
    "create_trial",
    "delete_study",
    "export_optuna",
    "import_optuna",
    "load_study",
    "plot",
    "report",
    "resume",
    "run",
    "studies",
    "worker",
]
