"""hpo: hyperparameter optimization with every trial in a database.

import hpo
study = hpo.create_study(space=[{"name": "x", "type": "float", "low": -5, "high": 5}])
study.optimize(lambda trial: (trial.params["x"] - 1) ** 2, n_trials=50)
study.best_params
"""

from __future__ import annotations

from hpo.comparison import compare
from hpo.direction import Direction
from hpo.errors import (
    DuplicateStudyError,
    HpoError,
    NoCompletedTrialsError,
    ObjectiveError,
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
)
from hpo.plots import plot
from hpo.records import FrozenTrial, TrialState
from hpo.reports import report
from hpo.runner import resume, run, worker
from hpo.space import Space
from hpo.storage import Storage, StudyInfo, StudySummary
from hpo.study import Study, create_study, delete_study, load_study, studies
from hpo.trial import Trial

__version__ = "0.1.0"

__all__ = [
    "Direction",
    "DuplicateStudyError",
    "FrozenTrial",
    "HpoError",
    "NoCompletedTrialsError",
    "ObjectiveError",
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
    "__version__",
    "compare",
    "create_study",
    "delete_study",
    "load_study",
    "plot",
    "report",
    "resume",
    "run",
    "studies",
    "worker",
]
